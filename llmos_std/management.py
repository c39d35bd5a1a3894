"""Model lifecycle on installed models: versions, their states and the transitions between them.

Load, unload and activate are asynchronous: the server answers 202 with the version resource and
clients poll it until it is ``ready`` (or ``installed`` after unload) or ``failed``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmos_std.errors import ErrorDetail
from llmos_std.models import DIGEST_PATTERN, NAME_PATTERN, VersionState
from pydantic import ConfigDict

from llmos_std.wire import OpenWireModel, optional_in_schema

LifecycleAction = Literal["load", "unload", "activate", "delete"]

ALLOWED_FROM: dict[LifecycleAction, frozenset[VersionState]] = {
    "load": frozenset({"installed", "failed"}),
    "unload": frozenset({"ready"}),
    "activate": frozenset({"installed", "ready", "failed"}),
    "delete": frozenset({"installed", "failed"}),
}
"""States a version must be in for each action; anything else is 409 ``state_conflict``.
Deleting the active version is also a conflict while the model has other versions: activate another one
first. The last version of a model can be deleted once unloaded, which removes the model."""

TRANSITIONS: dict[VersionState, frozenset[VersionState]] = {
    "installed": frozenset({"loading"}),
    "loading": frozenset({"ready", "failed"}),
    "ready": frozenset({"unloading"}),
    "unloading": frozenset({"installed"}),
    "failed": frozenset({"loading"}),
}
"""Every state change a client may observe between two polls of a version."""

SETTLED_STATES: frozenset[VersionState] = frozenset({"installed", "ready", "failed"})


class ModelVersion(OpenWireModel):
    """One installed version of a model; the resource lifecycle operations answer with."""

    model_config = ConfigDict(json_schema_extra=optional_in_schema("error"))

    object: Literal["llmos.model_version"] = "llmos.model_version"
    name: str = Field(pattern=f"^{NAME_PATTERN}$")
    version: str
    digest: str = Field(pattern=f"^{DIGEST_PATTERN}$")
    state: VersionState
    active: bool
    """Whether requests naming the bare model name are served by this version."""
    installed_at: int
    state_changed_at: int
    owner: str
    """The principal that installed it."""
    error: ErrorDetail | None = None
    """Why the last load failed, when ``state`` is ``failed``."""


class ActivationRecord(OpenWireModel):
    version: str
    digest: str = Field(pattern=f"^{DIGEST_PATTERN}$")
    activated_at: int


class ManagedModel(OpenWireModel):
    """A model name with all its installed versions and its activation history (newest last)."""

    object: Literal["llmos.model"] = "llmos.model"
    name: str = Field(pattern=f"^{NAME_PATTERN}$")
    active_version: str | None
    versions: list[ModelVersion]
    history: list[ActivationRecord]


class ManagedModelList(OpenWireModel):
    object: Literal["list"] = "list"
    data: list[ManagedModel]


class DeletedObject(OpenWireModel):
    id: str
    object: str
    deleted: bool
