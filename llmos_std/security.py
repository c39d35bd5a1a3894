"""Principals, keys, scopes, audit events and trusted signers: the nouns of the security profiles."""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import Field, JsonValue

from llmos_std.canonical import canonicalize
from llmos_std.wire import OpenWireModel, WireModel

GENESIS_HASH = "0" * 64
"""The ``prev_hash`` of the first audit event."""


def audit_event_hash(event: dict[str, JsonValue]) -> str:
    """The chain link of one event: hex SHA-256 of its ``prev_hash`` followed by the RFC 8785
    canonical JSON of the event without its ``hash`` member (``prev_hash`` included)."""
    body = {k: v for k, v in event.items() if k != "hash"}
    prev = str(event.get("prev_hash", ""))
    return hashlib.sha256(prev.encode("ascii") + canonicalize(body)).hexdigest()

Scope = Literal[
    "models:read",
    "inference",
    "tasks",
    "models:manage",
    "packages:write",
    "data:read",
    "data:write",
    "keys:manage",
    "audit:read",
    "admin",
]
"""``admin`` implies every other scope."""

AuthScheme = Literal["bearer", "none"]


class Principal(OpenWireModel):
    id: str
    object: Literal["llmos.principal"] = "llmos.principal"
    scopes: list[Scope]


class KeyCreateRequest(WireModel):
    name: str = Field(min_length=1, max_length=128)
    scopes: list[Scope] = Field(min_length=1, max_length=16)
    """Must be a subset of the caller's own scopes."""
    expires_at: int | None = Field(default=None, ge=0, le=2**53)
    """Unix seconds; null means no expiry."""
    rate_limit_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    principal: str | None = Field(default=None, pattern=r"^prn_[A-Za-z0-9_-]{1,64}$")
    """Whom the key is for: the caller when null; another principal (created on first use) needs ``admin``."""


class ApiKey(OpenWireModel):
    id: str
    object: Literal["llmos.api_key"] = "llmos.api_key"
    name: str
    owner: str
    scopes: list[Scope]
    created: int
    expires_at: int | None
    revoked: bool
    rate_limit_per_minute: int | None = None
    prefix: str
    """The first characters of the secret, to recognise a key; never the secret."""


class ApiKeyWithSecret(ApiKey):
    secret: str
    """Shown exactly once, in the response that creates the key."""


class ApiKeyList(OpenWireModel):
    object: Literal["list"] = "list"
    data: list[ApiKey]


class AuditEvent(OpenWireModel):
    id: str
    object: Literal["llmos.audit_event"] = "llmos.audit_event"
    seq: int = Field(ge=0)
    time: int
    actor: str
    """The principal that made the call (``anonymous`` when no valid key was presented)."""
    key_id: str | None = None
    """The id of the key the call was made with, never its secret."""
    request_id: str
    operation: str
    """The operation id from the operation table."""
    target: str | None = None
    outcome: Literal["success", "failure"]
    status: int
    prev_hash: str
    """Hash of the previous event (chain); the first event's is 64 zeros."""
    hash: str


class AuditEventList(OpenWireModel):
    object: Literal["list"] = "list"
    data: list[AuditEvent]
    next_cursor: str | None


class AuditVerification(OpenWireModel):
    object: Literal["llmos.audit_verification"] = "llmos.audit_verification"
    valid: bool
    events: int
    first_bad_seq: int | None = None


class SignerCreateRequest(WireModel):
    key_id: str = Field(pattern="^[0-9a-f]{64}$")
    """The lowercase hex SHA-256 of the key's SubjectPublicKeyInfo PEM (it must match ``public_key``)."""
    public_key: str = Field(min_length=1)
    """PEM-encoded public key."""
    note: str | None = None


class TrustedSigner(OpenWireModel):
    id: str
    object: Literal["llmos.trusted_signer"] = "llmos.trusted_signer"
    key_id: str
    public_key: str
    created: int
    source: Literal["configuration", "api"]
    note: str | None = None


class TrustedSignerList(OpenWireModel):
    object: Literal["list"] = "list"
    data: list[TrustedSigner]


