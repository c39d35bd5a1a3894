"""A replica on another node pulls a package from the front by digest, verifies every byte, and loads it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from llmos_std.manifest import PackageManifest
from reference_impl.engine import ModelLoadError, SamplingParams, load_text_model
from reference_impl.replicas import PackageSource, pull_package
from reference_impl.settings import Settings
from tests.reference_impl.test_engine import run
from tests.support.server import running_server


def _active_digest(base: str) -> str:
    data = httpx.get(f"{base}/llmos/v1/models", timeout=30).json()["data"]
    return str(next(v["digest"] for m in data for v in m["versions"] if v["active"]))


def test_a_pulled_package_matches_its_manifest_and_serves(tmp_path: Path, tiny_llama_dir: Path) -> None:
    with running_server(Settings(insecure_local=True, data_dir=tmp_path / "front", models=[tiny_llama_dir])) as srv:
        digest = _active_digest(srv.base_url)
        package = pull_package(PackageSource(srv.base_url), digest, tmp_path / "cache")
    manifest = PackageManifest.model_validate_json((package / "manifest.json").read_bytes())
    assert manifest.digest() == digest
    for entry in manifest.files:
        assert f"sha256:{hashlib.sha256((package / entry.path).read_bytes()).hexdigest()}" == entry.digest
    assert pull_package(PackageSource("http://127.0.0.1:9"), digest, tmp_path / "cache") == package  # cached: no fetch
    model = load_text_model(package)
    try:
        assert run(model, "Hello", SamplingParams(max_tokens=3, temperature=0))[-1].completion_tokens >= 1
    finally:
        model.close()


def test_a_corrupted_blob_is_refused_and_leaves_nothing_behind(tmp_path: Path, tiny_llama_dir: Path) -> None:
    with running_server(Settings(insecure_local=True, data_dir=tmp_path / "front", models=[tiny_llama_dir])) as srv:
        digest = _active_digest(srv.base_url)
        manifest = PackageManifest.model_validate_json(httpx.get(f"{srv.base_url}/llmos/v1/packages/{digest}").content)
        weights = next(f for f in manifest.files if f.role == "weights")
        blob = tmp_path / "front" / "registry" / "blobs" / "sha256" / weights.digest.removeprefix("sha256:")
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.write_bytes(bytes(data))
        with pytest.raises(ModelLoadError, match="do not match"):
            pull_package(PackageSource(srv.base_url), digest, tmp_path / "cache")
        with pytest.raises(httpx.HTTPStatusError):
            pull_package(PackageSource(srv.base_url), "sha256:" + "0" * 64, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []
