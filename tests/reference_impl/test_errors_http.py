"""Every rejected request gets the envelope, the right status and code, no internals, and the server stays ready."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema
import pytest

from llmos_std.errors import ERROR_CODES
from llmos_std.export import schema_files

ENVELOPE = jsonschema.Draft202012Validator(schema_files()["ErrorEnvelope.json"])
LEAKS = ("Traceback", "File \"", ".py", "Error:", "Exception", "/work/", "site-packages")


def _chat(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, **extra}


# Each row: a bad request, the status, code and param it must get.
CASES: list[tuple[str, str, Any, dict[str, str], int, str, str | None]] = [
    ("unknown model", "/v1/chat/completions", {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}, {}, 404, "model_not_found", "model"),
    ("bad model id", "/v1/chat/completions", {"model": "Bad Model!", "messages": [{"role": "user", "content": "hi"}]}, {}, 400, "invalid_model_id", "model"),
    ("malformed json", "/v1/chat/completions", b'{"model": ', {}, 400, "invalid_json", None),
    ("deeply nested", "/v1/chat/completions", b'{"model": "CHAT", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", {}, 400, "invalid_json", None),
    ("not an object", "/v1/chat/completions", b"[1, 2]", {}, 400, "invalid_request", None),
    ("wrong content type", "/v1/chat/completions", b"model=x", {"content-type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type", None),
    ("missing messages", "/v1/chat/completions", {"model": "CHAT"}, {}, 400, "missing_required_parameter", "messages"),
    ("wrong type", "/v1/chat/completions", _chat("CHAT", max_tokens="5"), {}, 400, "invalid_value", "max_tokens"),
    ("out of range", "/v1/chat/completions", _chat("CHAT", temperature=7), {}, 400, "invalid_value", "temperature"),
    ("bad role", "/v1/chat/completions", {"model": "CHAT", "messages": [{"role": "wizard", "content": "x"}]}, {}, 400, "invalid_value", "messages.0"),
    ("unknown field", "/v1/chat/completions", _chat("CHAT", reasoning_effort="high"), {}, 400, "unsupported_parameter", "reasoning_effort"),
    ("gated field", "/v1/chat/completions", _chat("CHAT", logit_bias={"1": 1.0}), {}, 400, "unsupported_parameter", "logit_bias"),
    ("gated penalty", "/v1/chat/completions", _chat("CHAT", presence_penalty=1.5), {}, 400, "unsupported_parameter", "presence_penalty"),
    ("n over limit", "/v1/chat/completions", _chat("CHAT", n=99), {}, 400, "limit_exceeded", "n"),
    ("too many stops", "/v1/chat/completions", _chat("CHAT", stop=["a", "b", "c", "d", "e"]), {}, 400, "limit_exceeded", "stop"),
    ("context exceeded", "/v1/chat/completions", _chat("CHAT", max_tokens=2000), {}, 400, "context_length_exceeded", "max_tokens"),
    ("chat on embedder", "/v1/chat/completions", _chat("EMB"), {}, 400, "capability_not_supported", "model"),
    ("dimensions not claimed", "/v1/embeddings", {"model": "EMB", "input": "x", "dimensions": 8}, {}, 400, "unsupported_parameter", "dimensions"),
    ("empty input", "/v1/embeddings", {"model": "EMB", "input": ""}, {}, 400, "invalid_value", "input"),
    ("bad encoding", "/v1/embeddings", {"model": "EMB", "input": "x", "encoding_format": "hex"}, {}, 400, "invalid_value", "encoding_format"),
]


@pytest.mark.parametrize(("label", "path", "body", "headers", "status", "code", "param"), CASES, ids=[c[0] for c in CASES])
def test_bad_requests_get_the_envelope(client: httpx.Client, model_ids: dict[str, str], label: str, path: str, body: Any, headers: dict[str, str], status: int, code: str, param: str | None) -> None:
    if isinstance(body, dict):
        body = {**body, "model": {"CHAT": model_ids["chat"], "EMB": model_ids["embeddings"]}.get(body["model"], body["model"])}
        response = client.post(path, json=body, headers=headers)
    else:
        response = client.post(path, content=body, headers=headers or {"content-type": "application/json"})
    assert response.status_code == status, response.text
    envelope = response.json()
    ENVELOPE.validate(envelope)
    assert envelope["error"]["code"] == code
    assert ERROR_CODES[code].status == status
    if param is not None:
        assert envelope["error"]["param"] == param
    assert not any(leak in envelope["error"]["message"] for leak in LEAKS), envelope
    assert response.headers["llmos-version"] == "1.0"
    assert client.get("/llmos/v1/health/ready").status_code == 200


def test_unknown_routes_and_methods_get_the_envelope(client: httpx.Client) -> None:
    missing = client.get("/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = client.delete("/v1/chat/completions")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


def test_body_over_the_limit_is_413(client: httpx.Client) -> None:
    limit = client.get("/.well-known/llmos").json()["limits"]["max_body_bytes"]
    response = client.post("/v1/chat/completions", content=b"x" * (limit + 1), headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


def test_foreign_host_header_is_refused(client: httpx.Client) -> None:
    response = client.get("/v1/models", headers={"host": "evil.example"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "host_not_allowed"


def test_discovery_health_and_models_are_valid(client: httpx.Client) -> None:
    files = schema_files()
    discovery = client.get("/.well-known/llmos")
    jsonschema.Draft202012Validator(files["DiscoveryDocument.json"]).validate(discovery.json())
    assert set(discovery.json()["profiles"]) == {"core", "inference", "embeddings", "responses", "tasks", "model-management", "model-packages", "data-management"}
    for path in ("/llmos/v1/health/live", "/llmos/v1/health/ready"):
        health = client.get(path)
        assert health.status_code == 200 and health.json()["status"] == "ok"
    models = client.get("/v1/models").json()
    jsonschema.Draft202012Validator(files["ModelList.json"]).validate(models)
    assert {m["state"] for m in models["data"]} == {"ready"}
    assert all(m["determinism"] == "sequential" for m in models["data"])
