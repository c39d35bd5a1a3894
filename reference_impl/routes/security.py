"""security-standard: key lifecycle for the caller's own principal, and the audit log (list, verify)."""

from __future__ import annotations

import time

from starlette.responses import Response

from llmos_std.errors import LLMOSError
from llmos_std.management import DeletedObject
from llmos_std.security import ApiKey, ApiKeyList, ApiKeyWithSecret, AuditEventList, KeyCreateRequest

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
    if body.expires_at is not None and body.expires_at <= time.time():
        raise LLMOSError("invalid_value", "expires_at is in the past", param="expires_at")
    record, secret = ctx.state.keys.create(body.name, tuple(dict.fromkeys(body.scopes)), ctx.principal,
                                           expires_at=body.expires_at, rate_limit_per_minute=body.rate_limit_per_minute)
    shown = ApiKeyWithSecret(**_public(record).model_dump(), secret=secret)
    return wire_json(shown, status=201, headers={"Cache-Control": "no-store"})


async def list_keys(ctx: Context) -> Response:
    return wire_json(ApiKeyList(data=[_public(r) for r in ctx.state.keys.of(ctx.principal)]))


async def revoke_key(ctx: Context) -> Response:
    record = ctx.state.keys.revoke(ctx.path("key_id"), ctx.principal)
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


HANDLERS: dict[str, Handler] = {
    "create_key": create_key,
    "list_keys": list_keys,
    "revoke_key": revoke_key,
    "list_audit_events": list_audit_events,
    "verify_audit_chain": verify_audit_chain,
}
