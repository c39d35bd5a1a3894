"""Models as clients see them: ``GET /v1/models`` objects with LLMOS fields, and the model-id syntax."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from llmos_std.parameters import Capability
from llmos_std.semver import SEMVER_PATTERN
from pydantic import ConfigDict

from llmos_std.wire import OpenWireModel, optional_in_schema

Determinism = Literal["none", "sequential", "batch_invariant"]
"""``sequential``: identical requests sent one at a time give identical output (seed included).
``batch_invariant``: also when batched with other requests."""

VersionState = Literal["installed", "loading", "ready", "unloading", "failed"]
"""Lifecycle state of one installed model version."""

NAME_PATTERN = r"[a-z0-9](?:[a-z0-9._-]{0,126}[a-z0-9])?"
"""A package (and managed-model) name: one lowercase URL path segment, since it appears in LLMOS paths."""
DIGEST_PATTERN = r"sha256:[0-9a-f]{64}"
_SEGMENT = r"[A-Za-z0-9](?:[A-Za-z0-9._:-]*[A-Za-z0-9])?"
MODEL_NAME_PATTERN = rf"{_SEGMENT}(?:/{_SEGMENT})*"
"""A served model name as the ecosystem writes it: ``org/name``, ``name:tag``, dots, upper case.

Segments are separated by ``/`` and start and end with a letter or digit (so no empty, ``.`` or
``..`` segment); ``@`` is reserved for version selection and never part of a name.
"""
MAX_MODEL_ID_LENGTH = 256
MODEL_ID_PATTERN = rf"^{MODEL_NAME_PATTERN}(?:@(?:{DIGEST_PATTERN}|{SEMVER_PATTERN}))?$"
_MODEL_ID = re.compile(MODEL_ID_PATTERN)


@dataclass(frozen=True)
class ModelRef:
    """A parsed request ``model``: a name, pinned to a version or a digest, or neither (the active version)."""

    name: str
    version: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        if len(text) > MAX_MODEL_ID_LENGTH or _MODEL_ID.match(text) is None:
            raise ValueError(f"{text!r} is not a model id (name, name@<semver> or name@sha256:<64 hex>)")
        name, _, pin = text.partition("@")
        if not pin:
            return cls(name)
        if pin.startswith("sha256:"):
            return cls(name, digest=pin)
        return cls(name, version=pin)

    def __str__(self) -> str:
        pin = self.digest or self.version
        return f"{self.name}@{pin}" if pin else self.name


def is_model_id(text: str) -> bool:
    return len(text) <= MAX_MODEL_ID_LENGTH and _MODEL_ID.match(text) is not None


class ModelObject(OpenWireModel):
    """One entry of ``GET /v1/models`` per model name (its active version): OpenAI's four fields plus the LLMOS fields."""

    model_config = ConfigDict(json_schema_extra=optional_in_schema("max_n", "dimensions", "tasks"))

    id: str
    """The model name (its active version serves requests that name it)."""
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    capabilities: list[Capability]
    context_length: int = Field(ge=1)
    version: str
    """SemVer of the active (or listed) version."""
    digest: str = Field(pattern=f"^{DIGEST_PATTERN}$")
    """The package identity: sha256 of the canonical manifest without signatures."""
    state: VersionState
    determinism: Determinism
    max_n: int | None = Field(default=None, ge=1)
    """Per-model cap on ``n`` (the server-wide ``max_n`` applies when null)."""
    dimensions: int | None = Field(default=None, ge=1)
    """Embedding dimensions, for embedding models."""
    tasks: list[Literal["translate", "summarize", "answer"]] = Field(default_factory=list)
    """The standard tasks (tasks profile) this model runs."""


class ModelList(OpenWireModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]
