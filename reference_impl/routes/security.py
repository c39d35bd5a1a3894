"""security-standard: key lifecycle for the caller's own principal, and the audit log (list, verify)."""

from __future__ import annotations

import time

from starlette.responses import Response

from llmos_std.errors import LLMOSError
from llmos_std.management import DeletedObject
from llmos_std.security import ApiKey, ApiKeyList, ApiKeyWithSecret, AuditEventList, KeyCreateRequest, SignerCreateRequest, TrustedSignerList

from reference_impl.audit import PAGE_DEFAULT, PAGE_MAX
from reference_impl.http import Context, Handler, wire_json
from reference_impl.keys import KeyRecord


def _public(record: KeyRecord) -> ApiKey:
    return ApiKey(id=record.id, name=record.name, owner=record.principal, scopes=list(record.scopes), created=record.created,
                  expires_at=record.expires_at, revoked=record.revoked, rate_limit_per_minute=record.rate_limit_per_minute, prefix=record.prefix)


async def create_key(ctx: Context) -> Response:
    body = ctx.body
    if not isinstance(body, KeyCreateRequest):
        raise TypeError("create_key is bound to KeyCreateRequest")
    if "admin" not in ctx.scopes and not set(body.scopes) <= set(ctx.scopes):
        raise LLMOSError("insufficient_scope", "a key can be given only scopes its creator holds", param="scopes")
    owner = body.principal or ctx.principal
    if owner != ctx.principal and "admin" not in ctx.scopes:
        raise LLMOSError("insufficient_scope", "only admin creates keys for another principal", param="principal")
    if body.expires_at is not None and body.expires_at <= time.time():
        raise LLMOSError("invalid_value", "expires_at is in the past", param="expires_at")
    record, secret = ctx.state.keys.create(body.name, tuple(dict.fromkeys(body.scopes)), owner,
                                           expires_at=body.expires_at, rate_limit_per_minute=body.rate_limit_per_minute)
    shown = ApiKeyWithSecret(**_public(record).model_dump(), secret=secret)
    return wire_json(shown, status=201, headers={"Cache-Control": "no-store"})


async def list_keys(ctx: Context) -> Response:
    return wire_json(ApiKeyList(data=[_public(r) for r in ctx.state.keys.of(ctx.principal)]))


async def revoke_key(ctx: Context) -> Response:
    # An admin key may revoke any key (a leaked key must be stoppable); others only their own.
    record = ctx.state.keys.revoke(ctx.path("key_id"), None if "admin" in ctx.scopes else ctx.principal)
    if record is None:
        raise LLMOSError("key_not_found", "no key with this id belongs to the caller", param="key_id")
    return wire_json(DeletedObject(id=record.id, object="llmos.api_key", deleted=True))


async def list_audit_events(ctx: Context) -> Response:
    raw_limit = ctx.request.query_params.get("limit", str(PAGE_DEFAULT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= PAGE_MAX:
        raise LLMOSError("invalid_value", f"limit must be an integer from 1 to {PAGE_MAX}", param="limit")
    events, cursor = ctx.state.audit.page(ctx.request.query_params.get("cursor"), int(raw_limit))
    return wire_json(AuditEventList(data=events, next_cursor=cursor))


async def verify_audit_chain(ctx: Context) -> Response:
    return wire_json(ctx.state.audit.verify())


async def list_trusted_signers(ctx: Context) -> Response:
    return wire_json(TrustedSignerList(data=ctx.state.trust.signers()))


async def add_trusted_signer(ctx: Context) -> Response:
    body = ctx.body
    if not isinstance(body, SignerCreateRequest):
        raise TypeError("add_trusted_signer is bound to SignerCreateRequest")
    return wire_json(ctx.state.trust.add(body.key_id, body.public_key, body.note), status=201)


async def remove_trusted_signer(ctx: Context) -> Response:
    signer = ctx.state.trust.remove(ctx.path("signer_id"))
    if signer is None:
        raise LLMOSError("signer_not_found", "no signer with this id was added through the API", param="signer_id")
    return wire_json(DeletedObject(id=signer.id, object="llmos.trusted_signer", deleted=True))


HANDLERS: dict[str, Handler] = {
    "list_trusted_signers": list_trusted_signers,
    "add_trusted_signer": add_trusted_signer,
    "remove_trusted_signer": remove_trusted_signer,
    "create_key": create_key,
    "list_keys": list_keys,
    "revoke_key": revoke_key,
    "list_audit_events": list_audit_events,
    "verify_audit_chain": verify_audit_chain,
}
