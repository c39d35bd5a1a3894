"""`llmos-ref serve --api-key K`: every scoped operation needs the bearer key; discovery and health do not."""

from __future__ import annotations

from pathlib import Path

import httpx

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
