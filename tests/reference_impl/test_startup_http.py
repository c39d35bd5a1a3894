"""Start-up installs local models as ordinary packages, and a restart finds them instead of re-packing."""

from __future__ import annotations

from pathlib import Path

import httpx

from llmos_std.packing import pack
from reference_impl.settings import Settings
from tests.support.server import running_server


def _versions(http: httpx.Client, name: str) -> list[dict[str, object]]:
    response = http.get(f"/llmos/v1/models/{name}")
    assert response.status_code == 200, response.text
    versions: list[dict[str, object]] = response.json()["versions"]
    return versions


def test_a_local_model_becomes_a_package_and_survives_a_restart(tmp_path: Path, tiny_llama_dir: Path) -> None:
    settings = Settings(insecure_local=True, data_dir=tmp_path / "data", models=[tiny_llama_dir])
    with running_server(settings) as srv, httpx.Client(base_url=srv.base_url, timeout=60) as http:
        first = _versions(http, "tiny-llama")
        assert [(v["version"], v["state"], v["active"]) for v in first] == [("1.0.0", "ready", True)]
        manifest = http.get(f"/llmos/v1/packages/{first[0]['digest']}").json()
        # The tiny model names no license; the packager asserts none rather than inventing one.
        assert manifest["license"] == "NOASSERTION"
        assert {f["role"] for f in manifest["files"]} >= {"weights", "config", "tokenizer"}
    with running_server(settings) as srv, httpx.Client(base_url=srv.base_url, timeout=60) as http:
        again = _versions(http, "tiny-llama")
        assert [(v["digest"], v["state"], v["active"]) for v in again] == [(first[0]["digest"], "ready", True)]
        chat = http.post("/v1/chat/completions", json={"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})
        assert chat.status_code == 200 and chat.headers["llmos-model-digest"] == first[0]["digest"]


def test_a_package_directory_is_served_under_its_own_name_and_version(tmp_path: Path, tiny_llama_dir: Path) -> None:
    manifest = pack(tiny_llama_dir, name="packed-llama", version="2.1.0", out=tmp_path / "package", license="MIT")
    with running_server(Settings(insecure_local=True, data_dir=tmp_path / "data", models=[tmp_path / "package"])) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=60) as http:
        versions = _versions(http, "packed-llama")
        assert [(v["version"], v["digest"], v["state"]) for v in versions] == [("2.1.0", manifest.digest(), "ready")]
        chat = http.post("/v1/chat/completions", json={"model": "packed-llama@2.1.0", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
        assert chat.status_code == 200 and chat.headers["llmos-model-digest"] == manifest.digest()
