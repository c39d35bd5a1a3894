"""The registry: verified blobs, atomic installs with every refusal leaving it unchanged, history, delete, crashes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from llmos_std.errors import LLMOSError
from llmos_std.manifest import manifest_digest
from reference_impl.engine import runnable_architecture
from reference_impl.registry import InstalledVersion, Registry

REPO = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).with_name("registry_crash_helper.py")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _safetensors() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    return struct.pack("<Q", len(header)) + header + struct.pack("<2f", 1.0, 2.0)


def _config(**extra: Any) -> bytes:
    return json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama", **extra}).encode()


FILES = {"model.safetensors": _safetensors(), "config.json": _config()}


def _manifest(files: dict[str, bytes], *, version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    roles = {".safetensors": "weights", ".gguf": "weights", ".json": "config"}
    return {
        "schema_version": "1",
        "name": "tiny",
        "version": version,
        "kind": "causal-lm",
        "architecture": "LlamaForCausalLM",
        "format": "safetensors",
        "files": [
            {"path": path, "digest": _digest(data), "size": len(data), "role": roles.get(Path(path).suffix, "doc")}
            for path, data in files.items()
        ],
        "capabilities": ["text-generation"],
        "context_length": {"value": 128, "source": "declared"},
        "license": "MIT",
        **extra,
    }


@pytest.fixture()
def registry(tmp_path: Path) -> Iterator[Registry]:
    with Registry(tmp_path / "reg", clock=lambda: 1_700_000_000.0, runnable=runnable_architecture) as reg:
        yield reg


def _upload(registry: Registry, files: dict[str, bytes]) -> None:
    for data in files.values():
        registry.put_blob(_digest(data), [data])


def _tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def _snapshot(registry: Registry) -> tuple[object, ...]:
    root = registry.root
    rows = [(v.name, v.version, v.digest, v.owner) for v in registry.versions()]
    return rows, _tree(root / "packages"), _tree(root / "blobs"), _tree(root / "tmp")


def _install(registry: Registry, files: dict[str, bytes] = FILES, **extra: Any) -> dict[str, Any]:
    _upload(registry, files)
    manifest = _manifest(files, **extra)
    registry.install(manifest, owner="alice")
    return manifest


# ---------------------------------------------------------------- blobs


def test_put_blob_stores_verified_content_once(registry: Registry) -> None:
    data = bytes(range(256)) * 4
    digest = _digest(data)
    info, created = registry.put_blob(digest, (data[i : i + 1] for i in range(len(data))))  # 1024 one-byte chunks
    assert (info.digest, info.size, created) == (digest, len(data), True)
    assert (registry.root / "blobs" / "sha256" / digest[7:]).read_bytes() == data
    assert registry.has_blob(digest) and registry.blob_size(digest) == len(data)
    again, created = registry.put_blob(digest, [data])
    assert (again, created) == (info, False)
    assert _tree(registry.root / "tmp") == []


def test_put_blob_refuses_content_that_does_not_hash_to_the_digest(registry: Registry) -> None:
    with pytest.raises(LLMOSError) as caught:
        registry.put_blob(_digest(b"expected"), [b"something ", b"else"])
    assert caught.value.code == "digest_invalid"
    assert _tree(registry.root / "blobs") == ["sha256"] and _tree(registry.root / "tmp") == []
    assert not registry.has_blob(_digest(b"expected"))


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:" + "A" * 64,  # uppercase hex
        "sha256:" + "0" * 63,  # too short
        "md5:" + "0" * 32,  # another algorithm
        "sha256:../../" + "0" * 58,  # a path in disguise
    ],
)
def test_put_blob_checks_digest_syntax_before_reading(registry: Registry, digest: str) -> None:
    def body() -> Iterator[bytes]:
        raise AssertionError("the body must not be read")
        yield b""

    with pytest.raises(LLMOSError) as caught:
        registry.put_blob(digest, body())
    assert (caught.value.code, caught.value.param) == ("digest_invalid", "digest")
    assert not registry.has_blob(digest) and registry.blob_size(digest) is None


def test_put_blob_enforces_max_bytes(registry: Registry) -> None:
    data = b"x" * 100
    with pytest.raises(LLMOSError) as caught:
        registry.put_blob(_digest(data), [data[:60], data[60:]], max_bytes=99)
    assert caught.value.code == "payload_too_large"
    assert _tree(registry.root / "tmp") == [] and not registry.has_blob(_digest(data))
    assert registry.put_blob(_digest(data), [data], max_bytes=100)[1] is True


def test_put_blob_async_streams_a_request_body(registry: Registry) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several 1 MiB writes plus a tail

    async def body(payload: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 65536):
            yield payload[start : start + 65536]

    info, created = asyncio.run(registry.put_blob_async(_digest(data), body(data)))
    assert (info.size, created) == (len(data), True)
    assert (registry.root / "blobs" / "sha256" / _digest(data)[7:]).read_bytes() == data
    with pytest.raises(LLMOSError) as caught:
        asyncio.run(registry.put_blob_async(_digest(b"other"), body(data)))
    assert caught.value.code == "digest_invalid"
    with pytest.raises(LLMOSError) as caught:
        asyncio.run(registry.put_blob_async(_digest(data), body(data), max_bytes=1000))
    assert caught.value.code == "payload_too_large"
    assert _tree(registry.root / "tmp") == []


def test_open_blob_reads_every_byte_even_when_a_delete_collects_the_blob(registry: Registry) -> None:
    _install(registry)
    config = FILES["config.json"]
    blob = registry.open_blob(_digest(config))
    assert blob is not None
    with blob:
        registry.delete_version("tiny", "1.0.0")  # the version's blobs go with it
        assert not registry.has_blob(_digest(config))
        assert blob.read() == config  # a download that began ends whole
    assert registry.open_blob(_digest(config)) is None
    assert registry.open_blob("sha256:../../registry.sqlite3") is None  # never a path outside the blob store


# ---------------------------------------------------------------- install


def test_install_materialises_the_package(registry: Registry) -> None:
    _upload(registry, FILES)
    manifest = _manifest(FILES, description="a tiny test package")
    version, created = registry.install(manifest, owner="alice")
    assert created
    assert (version.name, version.version, version.owner, version.installed_at) == ("tiny", "1.0.0", "alice", 1_700_000_000)
    assert version.digest == manifest_digest(manifest)
    folder = registry.package_dir(version.digest)
    assert folder == registry.root / "packages" / version.digest[7:]
    for path, data in FILES.items():
        assert (folder / path).read_bytes() == data
    assert json.loads((folder / "llmos-package.json").read_text(encoding="utf-8")) == manifest
    assert _tree(folder) == ["config.json", "llmos-package.json", "model.safetensors"]
    assert registry.manifest(version.digest) == manifest
    assert registry.versions() == [version] and registry.names() == ["tiny"]
    assert registry.find("tiny", version="1.0.0") == version == registry.find("tiny", digest=version.digest)
    assert registry.find("tiny", version="2.0.0") is None and registry.manifest("sha256:" + "0" * 64) is None
    assert _tree(registry.root / "tmp") == []


def test_install_keeps_the_manifest_as_received(registry: Registry) -> None:
    _upload(registry, FILES)
    # Key order and a float that re-dumping could rewrite: the digest is over the object as received.
    manifest = dict(reversed(list(_manifest(FILES, generation_defaults={"temperature": 0.7}).items())))
    version, _ = registry.install(manifest, owner="alice")
    assert version.digest == manifest_digest(manifest)
    assert list(registry.manifest(version.digest) or {}) == list(manifest)


def test_install_nested_paths_and_gguf(tmp_path: Path) -> None:
    gguf = b"GGUF" + struct.pack("<IQQ", 3, 0, 0)
    files = {"weights/model.gguf": gguf, "docs/README.md": b"# tiny\n"}
    with Registry(tmp_path / "reg") as registry:
        _upload(registry, files)
        version, _ = registry.install(_manifest(files, format="gguf"), owner="alice")
        assert (registry.package_dir(version.digest) / "weights" / "model.gguf").read_bytes() == gguf


def test_install_is_idempotent_for_the_same_package(registry: Registry) -> None:
    manifest = _install(registry)
    first = registry.versions()[0]
    before = _snapshot(registry)
    assert registry.install(manifest, owner="bob") == (first, False)
    # Signatures are not part of the identity: the same package, signed, is still the same package.
    signed = {**manifest, "signatures": [{"media_type": "application/vnd.dev.sigstore.bundle+json", "key_id": "k", "bundle": {}}]}
    assert registry.install(signed, owner="bob") == (first, False)
    assert _snapshot(registry) == before


def _refusal_cases() -> list[tuple[str, dict[str, bytes], dict[str, Any], str, str | None]]:
    garbage = {"model.safetensors": b"\xff" * 64, "config.json": _config()}
    auto_map = {"model.safetensors": _safetensors(), "config.json": _config(auto_map={"AutoModel": "m.Model"})}
    code = {**FILES, "modeling.py": b"import os\n"}
    under_file = {**FILES, "config.json/inner": b"{}"}
    self_listing = {**FILES, "llmos-package.json": b"{}"}
    return [
        # (case id, files uploaded and listed, manifest overrides, code, param)
        ("bad-version", FILES, {"version": "one"}, "manifest_invalid", "version"),
        ("missing-field", FILES, {"license": None}, "manifest_invalid", "license"),
        ("unknown-field", FILES, {"colour": "blue"}, "manifest_invalid", "colour"),
        ("bad-file-size-type", FILES, {"files": "all"}, "manifest_invalid", "files"),
        ("traversal", FILES, {"path:0": "../x"}, "path_invalid", "files.0.path"),
        ("absolute", FILES, {"path:0": "/etc/passwd"}, "path_invalid", "files.0.path"),
        ("lists-itself", self_listing, {}, "path_invalid", "files.2.path"),
        ("file-under-file", under_file, {}, "path_invalid", "files.2.path"),
        ("blob-unknown", {**FILES, "README.md": b"never sent"}, {"upload": list(FILES)}, "manifest_blob_unknown", "files.2.digest"),
        ("size-mismatch", FILES, {"size:0": 7}, "size_invalid", "files.0.size"),
        ("garbage-weights", garbage, {}, "weights_malformed", "files.0.path"),
        ("garbage-gguf", {"model.gguf": b"GGML" + bytes(20)}, {"format": "gguf"}, "weights_malformed", "files.0.path"),
        ("onnx-not-accepted", FILES, {"format": "onnx"}, "format_forbidden", "format"),
        ("pickle-format", FILES, {"format": "pytorch-pickle"}, "format_forbidden", "format"),
        ("code-file", code, {}, "format_forbidden", "files.2.path"),
        ("auto-map", auto_map, {}, "format_forbidden", "files.1.path"),
        ("pickle-file", {**FILES, "training_args.bin": b"\x80\x04K\x01."}, {}, "format_forbidden", "files.2.path"),
        ("unknown-architecture", FILES, {"architecture": "LlmosNoSuchArchitectureForCausalLM"}, "architecture_unsupported", "architecture"),
        ("gguf-name-for-safetensors", FILES, {"architecture": "llama3000"}, "architecture_unsupported", "architecture"),
    ]


@pytest.mark.parametrize(("files", "changes", "code", "param"), [c[1:] for c in _refusal_cases()], ids=[c[0] for c in _refusal_cases()])
def test_every_refusal_leaves_the_registry_unchanged(
    registry: Registry, files: dict[str, bytes], changes: dict[str, Any], code: str, param: str | None
) -> None:
    _install(registry, version="0.9.0")  # something installed already, which must survive untouched
    changes = dict(changes)
    upload = changes.pop("upload", list(files))
    _upload(registry, {path: files[path] for path in upload})
    manifest = _manifest(files)
    for key in [k for k in changes if ":" in k]:
        field, index = key.split(":")
        manifest["files"][int(index)][field] = changes.pop(key)
    manifest.update(changes)
    if manifest.get("license") is None:
        del manifest["license"]
    before = _snapshot(registry)
    with pytest.raises(LLMOSError) as caught:
        registry.install(manifest, owner="mallory")
    assert (caught.value.code, caught.value.param) == (code, param)
    if code in ("manifest_invalid", "path_invalid"):
        assert f"{param}:" in caught.value.message  # names the field
    elif param is not None and param.startswith("files."):
        assert manifest["files"][int(param.split(".")[1])]["path"] in caught.value.message  # names the file
    assert _snapshot(registry) == before


def test_a_different_manifest_under_an_installed_version_is_a_conflict(registry: Registry) -> None:
    _install(registry)
    before = _snapshot(registry)
    with pytest.raises(LLMOSError) as caught:
        registry.install(_manifest(FILES, description="changed"), owner="alice")
    assert caught.value.code == "already_exists" and caught.value.status == 409
    assert _snapshot(registry) == before


def test_concurrent_installs_of_one_package_create_it_once(registry: Registry) -> None:
    _upload(registry, FILES)
    manifest = _manifest(FILES)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: registry.install(manifest, owner="alice"), range(8)))
    assert sorted(created for _, created in results) == [False] * 7 + [True]
    assert len({version.digest for version, _ in results}) == 1 and len(registry.versions()) == 1
    assert _tree(registry.root / "tmp") == [] and len(list((registry.root / "packages").iterdir())) == 1


# ---------------------------------------------------------------- activation


def _number(version: InstalledVersion | None) -> str | None:
    return None if version is None else version.version


def test_rollback_follows_history_not_semver(registry: Registry) -> None:
    _install(registry, version="1.0.0")
    _install(registry, version="2.0.0")
    assert registry.active_version("tiny") is None and registry.previous_version("tiny") is None
    registry.record_activation("tiny", "2.0.0")
    assert registry.previous_version("tiny") is None
    registry.record_activation("tiny", "1.0.0")
    assert _number(registry.active_version("tiny")) == "1.0.0"
    assert _number(registry.previous_version("tiny")) == "2.0.0"
    registry.record_activation("tiny", "1.0.0")  # re-activating the current version changes nothing
    assert _number(registry.previous_version("tiny")) == "2.0.0"
    assert [(r.version, r.activated_at) for r in registry.history("tiny")] == [
        ("2.0.0", 1_700_000_000), ("1.0.0", 1_700_000_000), ("1.0.0", 1_700_000_000)
    ]  # fmt: skip
    with pytest.raises(LLMOSError) as caught:
        registry.record_activation("tiny", "9.9.9")
    assert caught.value.code == "version_not_found"


def test_deleted_versions_drop_out_of_active_and_previous(registry: Registry) -> None:
    for version in ("1.0.0", "2.0.0", "3.0.0"):
        _install(registry, version=version)
    for version in ("1.0.0", "2.0.0", "3.0.0"):
        registry.record_activation("tiny", version)
    registry.delete_version("tiny", "2.0.0")
    assert _number(registry.previous_version("tiny")) == "1.0.0"
    registry.delete_version("tiny", "3.0.0")  # the active one: the registry falls back, the runtime forbids it
    assert _number(registry.active_version("tiny")) == "1.0.0"
    assert registry.previous_version("tiny") is None
    assert [r.version for r in registry.history("tiny")] == ["1.0.0", "2.0.0", "3.0.0"]


def test_deleting_the_last_version_ends_the_models_history(registry: Registry) -> None:
    _install(registry, version="1.0.0")
    registry.record_activation("tiny", "1.0.0")
    registry.delete_version("tiny", "1.0.0")
    assert registry.history("tiny") == []
    _install(registry, version="1.0.0")  # the same package again: installed, not silently active
    assert registry.active_version("tiny") is None and registry.history("tiny") == []


# ---------------------------------------------------------------- delete


def test_delete_removes_row_dir_and_unshared_blobs(registry: Registry) -> None:
    one = {"model.safetensors": _safetensors(), "config.json": _config(hidden_size=1)}
    two = {"model.safetensors": _safetensors(), "config.json": _config(hidden_size=2)}
    _install(registry, one, version="1.0.0")
    _install(registry, two, version="2.0.0")
    gone = registry.delete_version("tiny", "1.0.0")
    assert [v.version for v in registry.versions()] == ["2.0.0"]
    assert not registry.package_dir(gone.digest).exists() and registry.manifest(gone.digest) is None
    assert not registry.has_blob(_digest(one["config.json"]))
    assert registry.has_blob(_digest(_safetensors()))  # shared with 2.0.0
    kept = registry.versions()[0]
    assert (registry.package_dir(kept.digest) / "config.json").read_bytes() == two["config.json"]
    with pytest.raises(LLMOSError) as caught:
        registry.delete_version("tiny", "1.0.0")
    assert caught.value.code == "version_not_found"
    registry.delete_version("tiny", "2.0.0")
    assert registry.names() == [] and _tree(registry.root / "blobs") == ["sha256"]
    assert _tree(registry.root / "packages") == [] and _tree(registry.root / "tmp") == []


def test_reopen_keeps_state_and_collects_leftovers(tmp_path: Path) -> None:
    root = tmp_path / "reg"
    with Registry(root) as registry:
        _install(registry)
        registry.record_activation("tiny", "1.0.0")
        registry.put_blob(_digest(b"loose"), [b"loose"])  # uploaded, not yet installed: must survive
        digest = registry.versions()[0].digest
    (root / "tmp" / "half-written").write_bytes(b"x")
    (root / "packages" / ("f" * 64)).mkdir()
    with Registry(root) as registry:
        assert [v.digest for v in registry.versions()] == [digest]
        assert registry.active_version("tiny") == registry.versions()[0]
        assert _tree(root / "tmp") == [] and [p.name for p in (root / "packages").iterdir()] == [digest[7:]]
        assert registry.has_blob(_digest(b"loose"))


# ---------------------------------------------------------------- crashes


def _write_package(folder: Path, files: dict[str, bytes], version: str = "1.0.0") -> dict[str, Any]:
    folder.mkdir(parents=True)
    for path, data in files.items():
        (folder / path).write_bytes(data)
    manifest = _manifest(files, version=version)
    (folder / "llmos-package.json").write_text(json.dumps(manifest), encoding="utf-8")
    return manifest


def _helper(*args: str, kill: str = "") -> subprocess.Popen[str]:
    env = {**os.environ, "LLMOS_REGISTRY_KILL": kill, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(HELPER), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run_helper(*args: str, kill: str) -> None:
    with _helper(*args, kill=kill) as process:
        out, err = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, f"the injected kill never fired: {out}{err}"


def _assert_consistent(root: Path, expected: dict[str, dict[str, bytes]]) -> set[str]:
    """Reopen and check every invariant; returns the installed versions. ``expected``: each version's files."""
    with Registry(root) as registry:
        installed = {v.version: v for v in registry.versions()}
        assert set(installed) <= set(expected)
        assert _tree(root / "tmp") == []
        assert sorted(p.name for p in (root / "packages").iterdir()) == sorted(v.digest[7:] for v in installed.values())
        for number, version in installed.items():
            folder = registry.package_dir(version.digest)
            assert _tree(folder) == sorted(["llmos-package.json", *expected[number]])
            for path, data in expected[number].items():
                assert (folder / path).read_bytes() == data
                assert registry.has_blob(_digest(data))
        for blob in (root / "blobs" / "sha256").iterdir():
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
        return set(installed)


@pytest.mark.parametrize(
    ("kill", "installed"),
    [
        ("chunk:3", False),  # during the first blob's write
        ("replace:1:before", False),  # first blob written and fsynced in tmp/, not yet renamed into blobs/
        ("replace:2:after", False),  # every blob stored, install not begun
        ("replace:3:before", False),  # package folder staged in tmp/, not yet in packages/
        ("replace:3:after", False),  # package folder in place, its row not committed
        ("commit:1:before", False),  # the install transaction's COMMIT not yet run
        ("commit:1:after", True),  # COMMIT done, killed before install returns
    ],
)
def test_a_killed_install_leaves_all_or_nothing(tmp_path: Path, kill: str, installed: bool) -> None:
    _write_package(tmp_path / "pkg", FILES)
    _run_helper(str(tmp_path / "reg"), "install", str(tmp_path / "pkg"), kill=kill)
    assert _assert_consistent(tmp_path / "reg", {"1.0.0": FILES}) == ({"1.0.0"} if installed else set())


@pytest.mark.parametrize(
    ("kill", "deleted"),
    [
        ("commit:1:before", False),  # the delete transaction's COMMIT not yet run
        ("commit:1:after", True),  # row gone, folder and blobs still there
        ("replace:1:after", True),  # folder moved to tmp/, not yet removed
        ("commit:2:before", True),  # folder removed, blobs not yet collected
    ],
)
def test_a_killed_delete_leaves_all_or_nothing(tmp_path: Path, kill: str, deleted: bool) -> None:
    root = tmp_path / "reg"
    with Registry(root) as registry:
        _install(registry)
    _run_helper(str(root), "delete", "tiny", "1.0.0", kill=kill)
    assert _assert_consistent(root, {"1.0.0": FILES}) == (set() if deleted else {"1.0.0"})
    if deleted:  # the blobs the deleted version used are collected on open
        assert _tree(root / "blobs") == ["sha256"]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_kill_at_any_moment_leaves_the_registry_consistent(tmp_path: Path, seed: int) -> None:
    expected = {}
    for n in range(10):
        files = {"model.safetensors": _safetensors(), "config.json": _config(step=n)}
        version = f"1.0.{n}"
        _write_package(tmp_path / "pkgs" / f"{n:03d}", files, version)
        expected[version] = files
    with _helper(str(tmp_path / "reg"), "loop", str(tmp_path / "pkgs")) as process:
        assert process.stdout is not None and process.stdout.readline() == "open\n"
        assert process.stdout.readline().startswith("installed ")
        time.sleep(random.Random(seed).uniform(0.0, 0.2))  # the loop installs and deletes until killed
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    installed = _assert_consistent(tmp_path / "reg", expected)
    assert len(installed) <= 2  # the loop deletes each version once the next is in


def test_the_engine_knows_transformers_classes_and_gguf_architectures() -> None:
    assert runnable_architecture("MistralForCausalLM", "safetensors") and runnable_architecture("qwen2", "gguf")
    assert not runnable_architecture("qwen2", "safetensors") and not runnable_architecture("MistralForCausalLM", "gguf")
