"""validate and verify: streaming hashes, every broken file named, hostile manifests refused naming the field."""

from __future__ import annotations

import copy
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from llmos_std.errors import ERROR_CODES
from llmos_std.manifest import PackageManifest
from llmos_std.packing import pack, write_manifest
from llmos_std.verification import CHUNK_SIZE, MANIFEST_NAME, PackageError, PackageErrorCode, hash_file, validate, verify


def _pack(source: Path, out: Path, **kwargs: Any) -> PackageManifest:
    kwargs.setdefault("license", "MIT")
    return pack(source, name="tiny", version="1.0.0", out=out, **kwargs)


def _problems(package: Path) -> list[tuple[str, str]]:
    return [(p.code, p.path) for p in verify(package).problems]


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------- hashing


def test_hash_file_matches_hashlib_across_chunk_boundaries(tmp_path: Path) -> None:
    data = random.Random(7).randbytes(2 * CHUNK_SIZE + 12345)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert hash_file(path) == ("sha256:" + hashlib.sha256(data).hexdigest(), len(data))


def test_hash_file_of_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert hash_file(path) == ("sha256:" + hashlib.sha256(b"").hexdigest(), 0)


def test_package_error_codes_are_standard_codes() -> None:
    assert set(PackageErrorCode.__args__) <= set(ERROR_CODES)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- verify


@pytest.fixture
def package(tiny_llama_dir: Path, tmp_path: Path) -> Path:
    _pack(tiny_llama_dir, tmp_path / "pkg")
    return tmp_path / "pkg"


def test_one_flipped_byte_fails_naming_exactly_that_file(package: Path) -> None:
    _flip_last_byte(package / "model.safetensors")
    assert _problems(package) == [("digest_invalid", "model.safetensors")]


def test_truncated_file_is_a_size_problem(package: Path) -> None:
    path = package / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-10])
    assert _problems(package) == [("size_invalid", "model.safetensors")]


def test_extra_file_is_reported(package: Path) -> None:
    (package / "sub").mkdir()
    (package / "sub" / "notes.txt").write_text("not listed")
    assert _problems(package) == [("path_invalid", "sub/notes.txt")]


def test_missing_file_is_reported(package: Path) -> None:
    (package / "tokenizer.json").unlink()
    assert _problems(package) == [("manifest_blob_unknown", "tokenizer.json")]


def test_symlink_in_package_is_refused(package: Path, tiny_llama_dir: Path) -> None:
    (package / "tokenizer.json").unlink()
    (package / "tokenizer.json").symlink_to(tiny_llama_dir / "tokenizer.json")
    assert _problems(package) == [("path_invalid", "tokenizer.json")]


def test_every_problem_is_listed(package: Path) -> None:
    _flip_last_byte(package / "model.safetensors")
    (package / "config.json").write_text("{}")
    (package / "extra.bin").write_bytes(b"\x80\x04")
    assert sorted(_problems(package)) == [
        ("digest_invalid", "model.safetensors"),
        ("path_invalid", "extra.bin"),
        ("size_invalid", "config.json"),
    ]


def test_malformed_safetensors_with_matching_digest(package: Path) -> None:
    # A manifest can describe garbage faithfully; the header check still catches it.
    weights = package / "model.safetensors"
    weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    manifest = validate(package)
    digest, size = hash_file(weights)
    for entry in manifest.files:
        if entry.path == "model.safetensors":
            entry.digest, entry.size = digest, size
    write_manifest(manifest, package / MANIFEST_NAME)
    assert _problems(package) == [("weights_malformed", "model.safetensors")]


def test_safetensors_extent_past_the_data_is_malformed(package: Path) -> None:
    weights = package / "model.safetensors"
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    weights.write_bytes(len(header).to_bytes(8, "little") + header + b"\x00" * 8)
    manifest = validate(package)
    digest, size = hash_file(weights)
    for entry in manifest.files:
        if entry.path == "model.safetensors":
            entry.digest, entry.size = digest, size
    write_manifest(manifest, package / MANIFEST_NAME)
    problems = verify(package).problems
    assert [(p.code, p.path) for p in problems] == [("weights_malformed", "model.safetensors")]
    assert "data_offsets" in problems[0].message


def test_verify_raises_on_an_invalid_manifest(package: Path) -> None:
    (package / MANIFEST_NAME).write_text("{")
    with pytest.raises(PackageError) as caught:
        verify(package)
    assert caught.value.code == "manifest_invalid"


# ---------------------------------------------------------------- validate: hostile manifests

_DIGEST = "sha256:" + "ab" * 32
_VALID: dict[str, Any] = {
    "schema_version": "1",
    "name": "tiny",
    "version": "1.0.0",
    "kind": "causal-lm",
    "architecture": "LlamaForCausalLM",
    "format": "safetensors",
    "files": [
        {"path": "model.safetensors", "digest": _DIGEST, "size": 10, "role": "weights"},
        {"path": "config.json", "digest": _DIGEST, "size": 2, "role": "config"},
    ],
    "capabilities": ["text-generation"],
    "context_length": {"value": 512, "source": "config"},
    "license": "MIT",
}


def _write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / MANIFEST_NAME
    path.write_text(json.dumps(document))
    return path


def _with(field: str, value: object) -> dict[str, Any]:
    document = copy.deepcopy(_VALID)
    target: Any = document
    *parents, last = field.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    target[int(last) if last.isdigit() else last] = value
    return document


def test_valid_manifest_validates_as_file_and_as_directory(tmp_path: Path) -> None:
    path = _write(tmp_path, _VALID)
    assert validate(path) == validate(tmp_path)
    assert validate(path).name == "tiny"


@pytest.mark.parametrize(
    ("field", "value", "named", "code"),
    [
        ("files.0.path", "../x", "files.0.path:", "path_invalid"),  # escapes the package
        ("files.0.path", "/etc/passwd", "files.0.path:", "path_invalid"),  # absolute
        ("files.0.path", "weights\\model.safetensors", "files.0.path:", "path_invalid"),  # Windows separator
        ("files.1.path", "Model.safetensors", "files: duplicate path", "manifest_invalid"),  # same file on macOS/Windows
        ("files.0.digest", "sha256:XYZ", "files.0.digest:", "digest_invalid"),  # not 64 lowercase hex digits
        ("files.0.digest", "md5:" + "ab" * 16, "files.0.digest:", "digest_invalid"),  # only sha256 names a blob
        ("files.0.size", -1, "files.0.size:", "manifest_invalid"),  # negative size
        ("version", "1.0", "version:", "manifest_invalid"),  # not SemVer
        ("version", "01.0.0", "version:", "manifest_invalid"),  # SemVer forbids leading zeros
        ("files.0.role", "script", "files.0.role:", "manifest_invalid"),  # no such role
        ("license", "MIT OR", "license:", "manifest_invalid"),  # dangling operator
        ("format", "pickle", "format:", "manifest_invalid"),  # pickle must be declared as pytorch-pickle
        ("files.1.path", MANIFEST_NAME, "files.1.path:", "path_invalid"),  # a manifest cannot hash itself
        ("context_length.value", 0, "context_length.value:", "manifest_invalid"),  # positive only
    ],
)
def test_hostile_manifest_names_the_field(tmp_path: Path, field: str, value: object, named: str, code: str) -> None:
    with pytest.raises(PackageError) as caught:
        validate(_write(tmp_path, _with(field, value)))
    assert any(problem.startswith(named) for problem in caught.value.problems), caught.value.problems
    assert caught.value.code == code


def test_unknown_field_is_named(tmp_path: Path) -> None:
    with pytest.raises(PackageError) as caught:
        validate(_write(tmp_path, {**_VALID, "run_this": "rm -rf /"}))
    assert any(problem.startswith("run_this:") for problem in caught.value.problems)


def test_every_failing_field_is_listed(tmp_path: Path) -> None:
    document = _with("version", "x")
    document["license"] = "MIT OR"
    with pytest.raises(PackageError) as caught:
        validate(_write(tmp_path, document))
    assert sorted(problem.split(":")[0] for problem in caught.value.problems) == ["license", "version"]


@pytest.mark.parametrize(
    "text",
    [
        "{",  # truncated
        '{"name": "a", "name": "b"}',  # duplicate keys make the digest ambiguous
        '{"size": NaN}',  # not JSON
        "\udcff",  # not UTF-8 once written with surrogateescape
    ],
)
def test_bad_json_is_named_as_such(tmp_path: Path, text: str) -> None:
    path = tmp_path / MANIFEST_NAME
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(PackageError, match="not valid JSON") as caught:
        validate(path)
    assert caught.value.code == "manifest_invalid"


def test_missing_manifest_is_named(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match=MANIFEST_NAME):
        validate(tmp_path)


@pytest.mark.parametrize("module", ["packing", "verification", "weightfiles"])
def test_package_tools_import_no_ml_framework(module: str) -> None:
    source = (Path(__file__).parents[2] / "llmos_std" / f"{module}.py").read_text()
    for framework in ("torch", "transformers", "safetensors", "gguf", "numpy"):
        assert f"import {framework}" not in source and f"from {framework}" not in source
