"""`llmos-ref serve --api-key K`: every scoped operation needs the bearer key; discovery and health do not."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from reference_impl.settings import Settings
from tests.support.server import running_server

KEY = "sk-llmos-test-key"
CHAT = {"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def test_a_configured_key_guards_every_scoped_operation(tmp_path: Path, tiny_llama_dir: Path) -> None:
    with running_server(Settings(data_dir=tmp_path / "data", models=[tiny_llama_dir], api_keys=[KEY])) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=60) as http:
        assert http.get("/.well-known/llmos").json()["auth"] == ["bearer"]
        assert http.get("/llmos/v1/health/ready").status_code == 200

        missing = http.post("/v1/chat/completions", json=CHAT)
        assert (missing.status_code, missing.json()["error"]["code"]) == (401, "missing_api_key")
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = http.post("/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {KEY}x"})
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "invalid_api_key")
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        assert KEY not in wrong.text

        bearer = {"Authorization": f"Bearer {KEY}"}
        assert http.post("/v1/chat/completions", json=CHAT, headers=bearer).status_code == 200
        assert http.get("/llmos/v1/models", headers=bearer).status_code == 200
        assert http.get("/llmos/v1/models").status_code == 401


def test_the_scheme_is_case_insensitive_and_the_principal_readable(tmp_path: Path, tiny_llama_dir: Path) -> None:
    with running_server(Settings(data_dir=tmp_path / "data", models=[tiny_llama_dir], api_keys=[KEY])) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=60) as http:
        for scheme in ("Bearer", "bearer", "BEARER"):
            assert http.get("/v1/models", headers={"Authorization": f"{scheme} {KEY}"}).status_code == 200, scheme
        principal = http.get("/llmos/v1/principal", headers={"Authorization": f"Bearer {KEY}"}).json()
        assert principal == {"id": "prn_admin", "object": "llmos.principal", "scopes": ["admin"]}
        discovery = http.get("/.well-known/llmos").json()
        assert "security-baseline" in discovery["profiles"] and discovery["auth"] == ["bearer"]


def test_keys_are_stored_as_hashes_and_created_once(tmp_path: Path) -> None:
    from reference_impl.keys import KeyStore

    store = KeyStore(tmp_path / "keys.json", [])
    secret = store.ensure_admin_key()
    assert secret is not None and secret.startswith("llmos-")
    text = (tmp_path / "keys.json").read_text()
    assert secret not in text and secret[:-1] not in text and '"hash": "sha256:' in text
    assert (tmp_path / "keys.json").stat().st_mode & 0o077 == 0  # readable by the server's user only
    again = KeyStore(tmp_path / "keys.json", [])
    assert again.ensure_admin_key() is None  # a second start creates nothing
    assert again.verify(secret) is not None
    for wrong in (secret[:-1], secret + "x", secret.swapcase(), " " + secret):
        assert again.verify(wrong) is None


def test_no_key_and_no_insecure_local_refuses_to_start(tmp_path: Path) -> None:
    import pytest

    from reference_impl.app import create_app

    with pytest.raises(ValueError, match="no API key"):
        create_app(Settings(data_dir=tmp_path))


def test_the_served_openapi_document_says_what_this_server_needs(tmp_path: Path, tiny_llama_dir: Path) -> None:
    bearer = {"Authorization": f"Bearer {KEY}"}
    with running_server(Settings(data_dir=tmp_path / "keyed", models=[tiny_llama_dir], api_keys=[KEY])) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=60) as http:
        assert http.get("/llmos/v1/openapi.json").status_code == 401
        keyed = http.get("/llmos/v1/openapi.json", headers=bearer).json()
    assert keyed["paths"]["/v1/chat/completions"]["post"]["security"] == [{"bearer": []}]
    assert keyed["servers"] == [{"url": srv.base_url}]
    with running_server(Settings(insecure_local=True, data_dir=tmp_path / "local", models=[tiny_llama_dir])) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=60) as http:
        discovery = http.get("/.well-known/llmos").json()
        local = http.get("/llmos/v1/openapi.json").json()
    assert discovery["auth"] == ["none"] and not any(p.startswith("security") for p in discovery["profiles"])
    operations = [op for item in local["paths"].values() for op in item.values()]
    assert all(op["security"] == [] and "401" not in op["responses"] for op in operations)
    assert "securitySchemes" not in local["components"]


def test_cors_answers_configured_origins_only(tmp_path: Path, tiny_llama_dir: Path) -> None:
    allowed = "https://app.example"
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    with running_server(Settings(data_dir=tmp_path / "data", models=[tiny_llama_dir], api_keys=[KEY], cors_origins=[allowed])) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=60) as http:
        ok = http.options("/v1/chat/completions", headers={"Origin": allowed, **preflight})
        assert ok.headers["access-control-allow-origin"] == allowed
        other = http.options("/v1/chat/completions", headers={"Origin": "https://attacker.example", **preflight})
        assert other.headers.get("access-control-allow-origin") not in ("*", "https://attacker.example")


def test_no_presented_credential_reaches_the_log(tmp_path: Path, tiny_llama_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    wrong = "llmos-wrong-key-should-never-be-logged"
    caplog.set_level(logging.DEBUG)
    with running_server(Settings(data_dir=tmp_path / "data", models=[tiny_llama_dir], api_keys=[KEY])) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=60) as http:
        http.get("/v1/models", headers={"Authorization": f"Bearer {wrong}"})
        http.post("/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {KEY}"})
        http.post("/llmos/v1/keys", json={"name": "k", "scopes": ["models:read"]}, headers={"Authorization": f"Bearer {KEY}"})
        http.get("/llmos/v1/keys", headers={"Authorization": f"Bearer {wrong[:-1]}"})
    assert caplog.records, "the server logged nothing at all: the check would prove nothing"
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert wrong not in text and wrong[:-1] not in text and KEY not in text
