"""The model package format: a manifest naming every file by digest, and the package's identity.

A package is identified by the sha256 of its RFC 8785 canonical manifest with ``signatures``
removed, so signing a package never changes which package it is.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Literal

from pydantic import Field, JsonValue, field_validator, model_validator

from llmos_std.canonical import canonicalize, sha256_digest
from llmos_std.models import DIGEST_PATTERN, NAME_PATTERN
from llmos_std.parameters import Capability
from llmos_std.semver import SEMVER_PATTERN, is_semver
from llmos_std.tasks import TaskName
from llmos_std.wire import WireModel

MANIFEST_SCHEMA_VERSION = "1"

WeightsFormat = Literal["safetensors", "gguf", "onnx", "pytorch-pickle"]
"""``pytorch-pickle`` is declared so that servers can refuse it: unpickling runs code."""

FileRole = Literal["weights", "config", "tokenizer", "chat-template", "generation-config", "doc", "adapter"]
ModelKind = Literal["causal-lm", "seq2seq-lm", "embedding"]
BaseRelation = Literal["adapter", "merge", "quantized", "finetune"]
ContextLengthSource = Literal["config", "gguf", "declared"]

_SPDX_TOKEN = re.compile(r"\(|\)|[A-Za-z0-9.+-]+(?::[A-Za-z0-9.+-]+)?")
MAX_PATH_LENGTH = 1024


def check_package_path(path: str) -> str:
    """Reject any path that could escape the package directory or name two files the same way."""
    if not path or len(path) > MAX_PATH_LENGTH:
        raise ValueError("path must be 1 to 1024 characters")
    if "\\" in path or "\x00" in path or any(ord(c) < 0x20 for c in path):
        raise ValueError("path must be POSIX, without backslashes or control characters")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise ValueError("path must be relative")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError("path must be normalised: no empty, '.' or '..' segments")
    if posixpath.normpath(path) != path:
        raise ValueError("path must be normalised")
    return path


def check_spdx_expression(expr: str) -> str:
    """A structural check of an SPDX license expression: ids joined by AND/OR/WITH, balanced parentheses."""
    tokens = _SPDX_TOKEN.findall(expr)
    if not tokens or "".join(tokens) != expr.replace(" ", ""):
        raise ValueError(f"{expr!r} is not an SPDX license expression")
    depth = 0
    expect_operand = True
    for token in tokens:
        if token == "(":
            if not expect_operand:
                raise ValueError(f"{expr!r}: '(' where an operator was expected")
            depth += 1
        elif token == ")":
            depth -= 1
            if depth < 0 or expect_operand:
                raise ValueError(f"{expr!r}: unbalanced ')'")
        elif token in ("AND", "OR", "WITH"):
            if expect_operand:
                raise ValueError(f"{expr!r}: operator {token} without a left operand")
            expect_operand = True
        else:
            if not expect_operand:
                raise ValueError(f"{expr!r}: two license ids without AND/OR between them")
            expect_operand = False
    if depth != 0 or expect_operand:
        raise ValueError(f"{expr!r}: incomplete expression")
    return expr


class PackageFile(WireModel):
    path: str = Field(min_length=1, max_length=MAX_PATH_LENGTH)
    """Relative, normalised POSIX path inside the package."""
    digest: str = Field(pattern=f"^{DIGEST_PATTERN}$")
    """``sha256:`` and 64 lowercase hex digits of the file's bytes."""
    size: int = Field(ge=0)
    role: FileRole

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return check_package_path(value)


class ContextLength(WireModel):
    value: int = Field(ge=1)
    source: ContextLengthSource
    """Where the value came from: the model config, GGUF metadata, or declared by the packager."""


class BaseModelRef(WireModel):
    name: str = Field(pattern=f"^{NAME_PATTERN}$")
    version: str | None = None
    digest: str | None = Field(default=None, pattern=f"^{DIGEST_PATTERN}$")
    relation: BaseRelation


class Quantization(WireModel):
    method: str = Field(min_length=1)
    """For example ``Q4_1`` (GGUF), ``int8``, ``awq``."""
    bits: float | None = Field(default=None, gt=0)


class GenerationDefaults(WireModel):
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    stop: list[str] | None = None


class TaskTemplate(WireModel):
    """How the package's model runs one standard task; an empty object takes the standard's defaults."""

    prompt: str | None = Field(default=None, min_length=1, max_length=16384)
    """A template with ``{input}`` and the task's fields (``{target_language}``...); the standard's own when absent."""
    output_prefix: str | None = Field(default=None, min_length=1, max_length=256)
    """Ends a prompt for a model without chat, and is removed from an output that repeats it."""
    stop: list[str] = Field(default_factory=list, max_length=4)
    """Delimiters: the output is cut at the first one generated."""
    max_tokens: int | None = Field(default=None, ge=1)


class SignatureBundle(WireModel):
    """A detached signature in the ``model-signing`` format, binding the manifest and file digests."""

    media_type: str = Field(min_length=1)
    key_id: str = Field(min_length=1)
    """Identifies the signer's public key; trust comes from server configuration, never from here."""
    bundle: JsonValue


class PackageManifest(WireModel):
    """``llmos-package.json``: what a model package contains and how to run it."""

    schema_version: Literal["1"]
    name: str = Field(pattern=f"^{NAME_PATTERN}$")
    version: str = Field(pattern=f"^{SEMVER_PATTERN}$")
    """SemVer 2.0.0."""
    kind: ModelKind
    architecture: str = Field(min_length=1, max_length=128)
    """The model architecture, e.g. ``LlamaForCausalLM`` or GGUF's ``llama``."""
    format: WeightsFormat
    files: list[PackageFile] = Field(min_length=1)
    capabilities: list[Capability] = Field(min_length=1)
    context_length: ContextLength
    license: str
    """An SPDX license expression."""
    base_model: list[BaseModelRef] = Field(default_factory=list)
    quantization: Quantization | None = None
    generation_defaults: GenerationDefaults | None = None
    task_templates: dict[TaskName, TaskTemplate] = Field(default_factory=dict)
    """The standard tasks this model runs (see the tasks profile), each with its template."""
    description: str | None = Field(default=None, max_length=4096)
    signatures: list[SignatureBundle] = Field(default_factory=list)
    """Detached signatures; excluded from the package digest."""

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not is_semver(value):
            raise ValueError(f"{value!r} is not a SemVer 2.0.0 version")
        return value

    @field_validator("license")
    @classmethod
    def _license(cls, value: str) -> str:
        return check_spdx_expression(value)

    @model_validator(mode="after")
    def _files(self) -> PackageManifest:
        seen: set[str] = set()
        for entry in self.files:
            folded = entry.path.casefold()
            if folded in seen:
                raise ValueError(f"files: duplicate path {entry.path!r} (paths are compared case-insensitively)")
            seen.add(folded)
        if not any(entry.role == "weights" for entry in self.files):
            raise ValueError("files: a package needs at least one file with role 'weights'")
        return self

    def digest(self) -> str:
        """The package digest of this manifest serialised with every field present, as ``pack`` writes it.

        Identity is defined on the JSON as uploaded: a manifest that omits defaulted fields has the
        digest of that JSON (:func:`manifest_digest`), which servers keep and serve back unchanged.
        """
        return manifest_digest(self.model_dump(mode="json"))


def manifest_digest(manifest: Mapping[str, JsonValue]) -> str:
    """The package identity of a manifest JSON object: sha256 of its canonical form without signatures."""
    unsigned = {key: value for key, value in manifest.items() if key != "signatures"}
    return sha256_digest(canonicalize(unsigned))
