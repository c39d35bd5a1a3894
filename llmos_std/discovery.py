"""The discovery document at ``/.well-known/llmos`` and the health resources: what a server claims."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from llmos_std.manifest import WeightsFormat
from llmos_std.models import DIGEST_PATTERN
from llmos_std.profiles import ProfileName
from llmos_std.security import AuthScheme
from llmos_std.wire import OpenWireModel, optional_in_schema


class Implementation(OpenWireModel):
    name: str
    version: str


class Limits(OpenWireModel):
    """Declared limits; a request over one is refused with 400 ``limit_exceeded`` (413 for the body)."""

    max_body_bytes: int = Field(ge=1)
    """Largest JSON request body."""
    max_blob_bytes: int = Field(ge=1)
    """Largest blob upload (model weights)."""
    max_tokens: int = Field(ge=1)
    max_n: int = Field(ge=1)
    max_stop: int = Field(ge=0)
    max_batch: int = Field(ge=1)
    """Most prompts or embedding inputs in one request."""
    max_prompt_tokens: int = Field(ge=1)
    max_concurrent: int = Field(ge=1)
    max_load_seconds: int = Field(ge=1)
    """Upper bound on the time a load or activate takes to settle."""


class DiscoveryDocument(OpenWireModel):
    object: Literal["llmos.discovery"] = "llmos.discovery"
    standard_version: str = Field(pattern=r"^\d+\.\d+$")
    implementation: Implementation
    openai_base: str
    """Where ``/v1/...`` lives: an absolute URL or a path relative to the origin."""
    llmos_base: str
    """Where ``/llmos/v{MAJOR}/...`` lives."""
    profiles: list[ProfileName]
    limits: Limits
    auth: list[AuthScheme]
    accepted_formats: list[WeightsFormat]
    architectures: list[str]
    trust_operations: list[str]
    """Operation ids of the trust-management operations the server offers."""


ReplicaState = Literal["ready", "starting", "restarting", "failed"]


class ReplicaHealth(OpenWireModel):
    """One engine replica of a server that runs several (scale-out)."""

    id: str = Field(min_length=1)
    """The replica's name, unique among the server's replicas."""
    state: ReplicaState
    """``ready``: serving the versions it holds; ``starting``: loading before it first became ready;
    ``restarting``: replaced after a crash, loading its versions again; ``failed``: down and not coming back."""
    models: list[Annotated[str, Field(pattern=f"^{DIGEST_PATTERN}$")]]
    """Package digests of the model versions the replica has loaded."""
    detail: str | None = None
    """Why the replica is not ready, or what it is doing."""


class Health(OpenWireModel):
    model_config = ConfigDict(json_schema_extra=optional_in_schema("replicas"))

    object: Literal["llmos.health"] = "llmos.health"
    status: Literal["ok", "unavailable"]
    detail: str | None = None
    replicas: list[ReplicaHealth] | None = None
    """Present when the server runs several engine replicas (scale-out): each replica with its state and the
    versions it has loaded. Such a server is ready when every replica is ``ready``, or ``restarting`` with at
    least one other ``ready``."""
