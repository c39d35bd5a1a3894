"""Hostile manifests are refused naming the field; the package digest ignores only signatures."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from llmos_std.manifest import PackageManifest, manifest_digest

DIGEST = "sha256:" + "ab" * 32


def good() -> dict[str, Any]:
    return {
        "schema_version": "1",
        "name": "tiny-llama",
        "version": "1.2.3-rc.1+build.5",
        "kind": "causal-lm",
        "architecture": "LlamaForCausalLM",
        "format": "safetensors",
        "files": [
            {"path": "model.safetensors", "digest": DIGEST, "size": 10, "role": "weights"},
            {"path": "tokenizer/tokenizer.json", "digest": DIGEST, "size": 3, "role": "tokenizer"},
        ],
        "capabilities": ["text-generation", "chat"],
        "context_length": {"value": 512, "source": "config"},
        "license": "(MIT OR Apache-2.0) AND BSD-3-Clause",
        "base_model": [{"name": "base", "version": "1.0.0", "relation": "finetune"}],
    }


def test_a_good_manifest_validates() -> None:
    manifest = PackageManifest.model_validate_json(json.dumps(good()))
    assert manifest.digest() == manifest_digest(manifest.model_dump(mode="json"))


def _loc(error: ValidationError) -> str:
    return ".".join(str(part) for part in error.errors()[0]["loc"])


# Each row: a hostile change and the field the refusal must name.
@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("files", 0, "path"), "../escape.safetensors", "files.0.path"),  # traversal
        (("files", 0, "path"), "/etc/passwd", "files.0.path"),  # absolute
        (("files", 0, "path"), "C:/weights.bin", "files.0.path"),  # drive letter
        (("files", 0, "path"), "a\\b.safetensors", "files.0.path"),  # backslash
        (("files", 0, "path"), "a//b", "files.0.path"),  # empty segment
        (("files", 0, "path"), "./a", "files.0.path"),  # dot segment
        (("files", 0, "digest"), "sha256:XYZ", "files.0.digest"),  # bad digest
        (("files", 0, "digest"), "md5:" + "a" * 32, "files.0.digest"),  # wrong algorithm
        (("files", 0, "role"), "executable", "files.0.role"),  # unknown role
        (("files", 0, "size"), -1, "files.0.size"),  # negative size
        (("version",), "1.0", "version"),  # not SemVer
        (("version",), "01.0.0", "version"),  # leading zero
        (("license",), "MIT OR", "license"),  # dangling operator
        (("license",), "MIT Apache-2.0", "license"),  # missing operator
        (("license",), "(MIT", "license"),  # unbalanced
        (("name",), "Tiny Llama", "name"),  # not a model name
        (("format",), "pickle", "format"),  # unknown format
        (("capabilities",), ["mind-reading"], "capabilities.0"),  # unknown capability
        (("context_length", "value"), 0, "context_length.value"),  # non-positive
    ],
)
def test_hostile_manifests_are_refused_naming_the_field(path: tuple[Any, ...], value: Any, field: str) -> None:
    document = good()
    node: Any = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ValidationError) as info:
        PackageManifest.model_validate_json(json.dumps(document))
    assert _loc(info.value) == field


def test_duplicate_paths_are_refused_case_insensitively() -> None:
    document = good()
    document["files"][1]["path"] = "MODEL.safetensors"
    with pytest.raises(ValidationError, match="duplicate path"):
        PackageManifest.model_validate_json(json.dumps(document))


def test_a_package_without_weights_is_refused() -> None:
    document = good()
    document["files"] = [document["files"][1]]
    with pytest.raises(ValidationError, match="weights"):
        PackageManifest.model_validate_json(json.dumps(document))


def test_unknown_fields_are_refused() -> None:
    document = good()
    document["auto_run"] = "rm -rf /"
    with pytest.raises(ValidationError) as info:
        PackageManifest.model_validate_json(json.dumps(document))
    assert _loc(info.value) == "auto_run"


def test_digest_ignores_signatures() -> None:
    unsigned = good()
    signed = copy.deepcopy(unsigned)
    signed["signatures"] = [{"media_type": "application/vnd.dev.sigstore.bundle.v0.3+json", "key_id": "k1", "bundle": {"sig": "AA=="}}]
    assert manifest_digest(unsigned) == manifest_digest(signed)


def test_digest_ignores_key_order_and_whitespace() -> None:
    document = good()
    reordered = json.loads(json.dumps(dict(reversed(list(document.items()))), indent=4))
    assert manifest_digest(document) == manifest_digest(reordered)


# Any change to any field other than signatures changes the identity.
@given(
    st.sampled_from(["name", "version", "architecture", "license", "kind", "description"]),
    st.data(),
)
def test_digest_changes_with_any_other_field(field: str, data: st.DataObject) -> None:
    document = good()
    replacements = {
        "name": st.sampled_from(["other", "tiny-llama2"]),
        "version": st.sampled_from(["1.2.4", "2.0.0"]),
        "architecture": st.sampled_from(["GPT2LMHeadModel", "llama"]),
        "license": st.sampled_from(["MIT", "Apache-2.0"]),
        "kind": st.sampled_from(["seq2seq-lm", "embedding"]),
        "description": st.text(min_size=1, max_size=20),
    }
    changed = copy.deepcopy(document)
    changed[field] = data.draw(replacements[field])
    assert manifest_digest(changed) != manifest_digest(document)


@given(st.integers(min_value=0, max_value=1))
def test_digest_changes_with_any_file_digest(index: int) -> None:
    document = good()
    changed = copy.deepcopy(document)
    changed["files"][index]["digest"] = "sha256:" + "cd" * 32
    assert manifest_digest(changed) != manifest_digest(document)
