"""Model lifecycle and packages over HTTP: upload, install, activate, failed load, rollback, drain, delete."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmos_std.client import APIError, LLMOSClient
from llmos_std.manifest import manifest_digest
from llmos_std.packing import pack
from reference_impl.app import engine_loader
from reference_impl.registry import InstalledVersion, Registry
from reference_impl.runtime import Closable, Loader
from reference_impl.settings import Settings
from tests.support.server import running_server


def _chat(http: httpx.Client, model: str) -> httpx.Response:
    return http.post("/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})


def _broken_copy(source: Path, dest: Path) -> Path:
    """Same weights, config claiming another width: installs (the weights parse) but cannot load."""
    shutil.copytree(source, dest)
    config = json.loads((dest / "config.json").read_text())
    config["hidden_size"] = config["hidden_size"] * 2
    (dest / "config.json").write_text(json.dumps(config))
    return dest


def test_full_lifecycle(tmp_path: Path, tiny_llama_dir: Path) -> None:
    with running_server(Settings(insecure_local=True, data_dir=tmp_path / "data", models=[tiny_llama_dir])) as srv, \
            LLMOSClient(srv.base_url) as api, httpx.Client(base_url=srv.base_url, timeout=120) as http:
        name = api.list_models().data[0].id
        v1 = api.get_managed_model(name).versions[0]
        assert v1.active and v1.state == "ready"

        pack(tiny_llama_dir, name=name, version="2.0.0", out=tmp_path / "p2", license="MIT")
        v2 = api.upload_package(tmp_path / "p2")
        assert (v2.version, v2.state, v2.active) == ("2.0.0", "installed", False)
        assert api.upload_package(tmp_path / "p2").digest == v2.digest  # idempotent

        pack(_broken_copy(tiny_llama_dir, tmp_path / "broken"), name=name, version="3.0.0", out=tmp_path / "p3", license="MIT")
        api.upload_package(tmp_path / "p3")
        started = api.activate(name, "3.0.0")
        assert started.state == "loading"
        failed = api.wait_for_version(name, "3.0.0", timeout=60)
        assert failed.state == "failed" and failed.error is not None
        assert not any(leak in failed.error.message for leak in ("Error", "Exception", "Traceback", "/", ".py")), failed.error
        assert api.get_managed_model(name).active_version == v1.version
        assert _chat(http, name).headers["llmos-model-digest"] == v1.digest

        api.activate(name, "2.0.0")
        assert api.wait_for_version(name, "2.0.0", timeout=60).state == "ready"
        assert _chat(http, name).headers["llmos-model-digest"] == v2.digest

        with pytest.raises(APIError) as conflict:
            api.load(name, "2.0.0")
        assert (conflict.value.status, conflict.value.code) == (409, "state_conflict")
        with pytest.raises(APIError) as active_delete:
            api.delete_version(name, "2.0.0")
        assert active_delete.value.code == "state_conflict"

        back = api.rollback(name)
        assert back.version == v1.version
        assert api.get_managed_model(name).active_version == v1.version
        assert _chat(http, name).headers["llmos-model-digest"] == v1.digest
        history = [h.version for h in api.get_managed_model(name).history]
        assert history[-2:] == ["2.0.0", v1.version]

        api.unload(name, "2.0.0")
        assert api.wait_for_version(name, "2.0.0", timeout=60).state == "installed"
        pinned = _chat(http, f"{name}@2.0.0")
        assert (pinned.status_code, pinned.json()["error"]["code"]) == (409, "model_not_loaded")

        api.delete_version(name, "2.0.0")
        assert [v.version for v in api.get_managed_model(name).versions] == [v1.version, "3.0.0"]
        with pytest.raises(APIError) as gone:
            api.get_model_version(name, "2.0.0")
        assert (gone.value.status, gone.value.code) == (404, "version_not_found")
        with pytest.raises(APIError) as unknown:
            api.get_managed_model("no-such-model")
        assert unknown.value.code == "model_not_found"

        # The active version is protected while others exist; the last one goes once unloaded, with the model.
        api.delete_version(name, "3.0.0")
        with pytest.raises(APIError) as loaded:
            api.delete_version(name, v1.version)
        assert loaded.value.code == "state_conflict"
        api.unload(name, v1.version)
        assert api.wait_for_version(name, v1.version, timeout=60).state == "installed"
        api.delete_version(name, v1.version)
        with pytest.raises(APIError) as removed:
            api.get_managed_model(name)
        assert removed.value.code == "model_not_found"


def test_unload_drains_in_flight_streams(tmp_path: Path, tiny_llama_dir: Path) -> None:
    with running_server(Settings(insecure_local=True, data_dir=tmp_path / "data", models=[tiny_llama_dir])) as srv, \
            LLMOSClient(srv.base_url) as api, httpx.Client(base_url=srv.base_url, timeout=120) as http:
        name = api.list_models().data[0].id
        version = api.get_managed_model(name).versions[0].version
        body = {"model": name, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 200, "stream": True}
        seen: list[bytes] = []
        first_chunk = threading.Event()

        def consume() -> None:
            with http.stream("POST", "/v1/chat/completions", json=body) as response:
                for raw in response.iter_raw():
                    seen.append(raw)
                    first_chunk.set()

        reader = threading.Thread(target=consume)
        reader.start()
        assert first_chunk.wait(30)
        assert api.unload(name, version).state == "unloading"
        reader.join(60)
        text = b"".join(seen)
        assert text.endswith(b"data: [DONE]\n\n") and b'"finish_reason":"length"' in text
        assert api.wait_for_version(name, version, timeout=60).state == "installed"


def test_install_refusals_leave_the_registry_unchanged(tmp_path: Path, tiny_llama_dir: Path) -> None:
    with running_server(Settings(insecure_local=True, data_dir=tmp_path / "data", models=[tiny_llama_dir])) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=60) as http:
        before = http.get("/llmos/v1/models").json()
        wrong = http.put("/llmos/v1/blobs/sha256:" + "0" * 64, content=b"not that", headers={"content-type": "application/octet-stream"})
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (400, "digest_invalid")
        assert http.head("/llmos/v1/blobs/sha256:" + "0" * 64).status_code == 404

        manifest = pack(tiny_llama_dir, name="other", version="1.0.0", out=tmp_path / "pk", license="MIT").model_dump(mode="json")
        # The server already holds every blob of this model; a file it has never received is unknown.
        never_sent = {**manifest, "files": [*manifest["files"], {"path": "extra/notes.txt", "role": "doc",
                      "digest": "sha256:" + hashlib.sha256(b"never uploaded").hexdigest(), "size": 14}]}
        unknown_blob = http.post("/llmos/v1/packages", json=never_sent)
        assert (unknown_blob.status_code, unknown_blob.json()["error"]["code"]) == (400, "manifest_blob_unknown")
        traversal = json.loads(json.dumps(manifest))
        traversal["files"][0]["path"] = "../../etc/passwd"
        bad_path = http.post("/llmos/v1/packages", json=traversal)
        assert (bad_path.status_code, bad_path.json()["error"]["code"]) == (400, "path_invalid")
        invalid = http.post("/llmos/v1/packages", json={**manifest, "version": "one"})
        assert (invalid.status_code, invalid.json()["error"]["code"]) == (400, "manifest_invalid")
        pickle = http.post("/llmos/v1/packages", json={**manifest, "format": "pytorch-pickle"})
        assert (pickle.status_code, pickle.json()["error"]["code"]) == (400, "format_forbidden")
        assert http.get("/llmos/v1/models").json() == before


def test_a_minimal_manifest_is_served_back_as_uploaded(tmp_path: Path, tiny_llama_dir: Path) -> None:
    """The package digest covers the JSON as uploaded: omitted optional fields stay omitted."""
    with running_server(Settings(insecure_local=True, data_dir=tmp_path / "data", models=[tiny_llama_dir])) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=60) as http:
        full = pack(tiny_llama_dir, name="minimal", version="1.0.0", out=tmp_path / "pk", license="MIT").model_dump(mode="json")
        minimal = {key: value for key, value in full.items() if value not in ([], {}, None)}
        assert set(full) - set(minimal)  # something optional really is left out
        installed = http.post("/llmos/v1/packages", json=minimal)
        assert installed.status_code == 201, installed.text
        digest = installed.json()["digest"]
        assert digest == manifest_digest(minimal)
        served = http.get(f"/llmos/v1/packages/{digest}")
        assert served.status_code == 200 and served.json() == minimal
        assert manifest_digest(served.json()) == digest


def _slow_first_load(name: str, version: str, seconds: float) -> Any:
    """The real engine loader, except that the first load of name@version stalls for ``seconds``."""

    def make(registry: Registry, settings: Settings) -> Loader:
        real = engine_loader(registry, settings)
        stalled: list[str] = []

        def load(installed: InstalledVersion) -> Closable:
            if (installed.name, installed.version) == (name, version) and not stalled:
                stalled.append(installed.digest)
                time.sleep(seconds)
            return real(installed)

        return load

    return make


def test_a_load_past_max_load_seconds_fails_and_the_active_version_keeps_serving(tmp_path: Path, tiny_llama_dir: Path) -> None:
    settings = Settings(insecure_local=True, data_dir=tmp_path / "data", models=[tiny_llama_dir])
    settings.limits.max_load_seconds = 1
    with running_server(settings, loader=_slow_first_load("tiny-llama", "2.0.0", 3.0)) as srv, \
            LLMOSClient(srv.base_url) as api, httpx.Client(base_url=srv.base_url, timeout=60) as http:
        v1 = api.get_managed_model("tiny-llama").versions[0]
        pack(tiny_llama_dir, name="tiny-llama", version="2.0.0", out=tmp_path / "p2", license="MIT")
        api.upload_package(tmp_path / "p2")
        assert api.activate("tiny-llama", "2.0.0").state == "loading"
        late = api.wait_for_version("tiny-llama", "2.0.0", timeout=30)
        assert late.state == "failed" and late.error is not None and "max_load_seconds" in late.error.message
        assert _chat(http, "tiny-llama").headers["llmos-model-digest"] == v1.digest
        time.sleep(3)  # the stalled loader returns now; what it loaded is discarded, not served
        assert api.get_model_version("tiny-llama", "2.0.0").state == "failed"
        assert api.get_managed_model("tiny-llama").active_version == v1.version
        api.activate("tiny-llama", "2.0.0")  # a second try loads in time
        assert api.wait_for_version("tiny-llama", "2.0.0", timeout=30).state == "ready"
        assert api.get_managed_model("tiny-llama").active_version == "2.0.0"
