"""The discovery document at ``/.well-known/llmos`` and the health resources: what a server claims."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmos_std.manifest import WeightsFormat
from llmos_std.profiles import ProfileName
from llmos_std.security import AuthScheme
from llmos_std.wire import OpenWireModel


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


class Health(OpenWireModel):
    object: Literal["llmos.health"] = "llmos.health"
    status: Literal["ok", "unavailable"]
    detail: str | None = None
