"""Python stubs generated from spec/openapi.json by openapi-python-client and datamodel-code-generator:
clean generation, and a round trip against the reference server on tiny models (issue 11, item 4)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from reference_impl.settings import Settings
from tests.support.server import RunningServer, running_server

ROOT = Path(__file__).resolve().parent.parent
KEY = "llmos-stubs-key-0123456789abcdef"


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    out = tmp_path_factory.mktemp("stubs")
    generator = Path(sys.executable).parent / "openapi-python-client"
    result = subprocess.run(
        [str(generator), "generate", "--path", str(ROOT / "spec" / "openapi.json"), "--meta", "none",
         "--output-path", str(out / "llmos_client"), "--config", str(ROOT / "clients" / "python" / "openapi-python-client.yaml")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr  # nothing about the document
    sys.path.insert(0, str(out))
    try:
        yield "llmos_client"
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == "llmos_client" or m.startswith("llmos_client.")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def datamodels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """Pydantic models from datamodel-code-generator, which reads the same document."""
    out = tmp_path_factory.mktemp("datamodels")
    generator = Path(sys.executable).parent / "datamodel-codegen"
    result = subprocess.run(
        [str(generator), "--input", str(ROOT / "spec" / "openapi.json"), "--input-file-type", "openapi", "--output", str(out / "llmos_datamodels.py"),
         "--output-model-type", "pydantic_v2.BaseModel", "--target-python-version", "3.11", "--formatters", "builtin"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warn" not in (result.stdout + result.stderr).lower(), result.stdout + result.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("llmos_datamodels")
    finally:
        sys.path.remove(str(out))
        sys.modules.pop("llmos_datamodels", None)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, tiny_bert_dir: Path) -> Iterator[RunningServer]:
    with running_server(Settings(data_dir=tmp_path_factory.mktemp("stub-server"), models=[tiny_llama_dir, tiny_bert_dir], api_keys=[KEY])) as srv:
        yield srv


def _mod(package: str, name: str) -> ModuleType:
    return importlib.import_module(f"{package}.{name}")


def test_the_generated_client_round_trips(stubs: str, server: RunningServer) -> None:
    client_mod, models = _mod(stubs, "client"), _mod(stubs, "models")
    with client_mod.AuthenticatedClient(base_url=server.base_url, token=KEY, raise_on_unexpected_status=True) as client:
        _round_trip(stubs, models, client)


def test_datamodel_code_generator_models_validate_live_responses(datamodels: ModuleType, server: RunningServer) -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
        listed = datamodels.ModelList.model_validate_json(http.get("/v1/models").content)
        chat_id = next(m.id for m in listed.data if "chat" in [c.value for c in m.capabilities])
        exchanges: list[tuple[str, httpx.Response]] = [
            ("DiscoveryDocument", http.get("/.well-known/llmos")),
            ("ModelObject", http.get(f"/v1/models/{chat_id}")),
            ("ChatCompletionResponse", http.post("/v1/chat/completions", json={"model": chat_id, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})),
            ("CompletionResponse", http.post("/v1/completions", json={"model": chat_id, "prompt": [5, 6], "max_tokens": 2})),
            ("ManagedModelList", http.get("/llmos/v1/models")),
            ("Dataset", http.post("/llmos/v1/datasets", json={"name": "dm-check"})),
            ("ErrorEnvelope", http.get("/v1/models/acme/not-served")),
        ]
        for name, answer in exchanges:
            parsed = getattr(datamodels, name).model_validate_json(answer.content)
            assert parsed.model_dump(mode="json", exclude_unset=True, by_alias=True) == answer.json(), name  # nothing lost or retyped
        # The models are not lenient: a response missing a required field is refused.
        broken = {k: v for k, v in exchanges[2][1].json().items() if k != "choices"}
        with pytest.raises(ValueError):
            datamodels.ChatCompletionResponse.model_validate(broken)


def _round_trip(stubs: str, models: ModuleType, client: Any) -> None:
    listed = _mod(stubs, "api.core.list_models").sync(client=client)
    ids = {m.id: m for m in listed.data}
    chat_id = next(i for i, m in ids.items() if "chat" in [str(c) for c in m.capabilities])
    embed_id = next(i for i, m in ids.items() if "embeddings" in [str(c) for c in m.capabilities])
    assert _mod(stubs, "api.core.retrieve_model").sync(model=chat_id, client=client).id == chat_id

    chat = _mod(stubs, "api.inference.create_chat_completion").sync(
        client=client, body=models.ChatCompletionRequest.from_dict({"model": chat_id, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}))
    assert chat.choices[0].message.role == "assistant" and chat.usage.completion_tokens <= 3
    text = _mod(stubs, "api.inference.create_completion").sync(
        client=client, body=models.CompletionRequest.from_dict({"model": chat_id, "prompt": "once upon", "max_tokens": 3}))
    assert text.choices[0].finish_reason in ("stop", "length")
    vectors = _mod(stubs, "api.embeddings.create_embedding").sync(
        client=client, body=models.EmbeddingRequest.from_dict({"model": embed_id, "input": ["a", "b"]}))
    assert [d.index for d in vectors.data] == [0, 1]
    managed = _mod(stubs, "api.model_management.list_managed_models").sync(client=client)
    assert chat_id in {m.name for m in managed.data}
    dataset = _mod(stubs, "api.data_management.create_dataset").sync(client=client, body=models.DatasetCreateRequest.from_dict({"name": "stub-check"}))
    assert dataset.name == "stub-check" and dataset.version == 1

    # An error comes back as the typed envelope, code and param included.
    error = _mod(stubs, "api.inference.create_chat_completion").sync(
        client=client, body=models.ChatCompletionRequest.from_dict({"model": "acme/not-served", "messages": [{"role": "user", "content": "hi"}]}))
    assert isinstance(error, models.ErrorEnvelope) and error.error.code == "model_not_found"
