"""security-standard: scopes, the key lifecycle, per-key rate limits, audit events and request ids.

The kit mints the keys it needs with ``--admin-key`` (``POST /llmos/v1/keys``), names them
``llmos-conformance-<run>-*``, redacts their secrets like the admin key's, and revokes them at the end.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from llmos_std.canonical import sha256_digest
from llmos_std.operations import LLMOS_BASE, OPERATIONS_BY_ID, REQUEST_ID_HEADER

from conformance.bodies import CAPABILITY_OF, PATH_OF, minimal_body
from conformance.context import Context
from conformance.judging import expect_error, ok_json
from conformance.registry import check
from conformance.traffic import first_op, still_ready
from conformance.uploads import fresh_package, refused_install, weights_index, with_files
from conformance.verdicts import CheckFailed, CheckOutcome, Failures, Skip
from conformance.wire import Exchange

KEYS = f"{LLMOS_BASE}/keys"


@dataclass(frozen=True)
class Minted:
    id: str
    secret: str

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


def mint(ctx: Context, role: str, scopes: list[str], **extra: Any) -> tuple[Minted, Exchange]:
    """Create a key with the admin key; its secret is redacted from every report and it is revoked at the end."""
    if not ctx.wire.admin_key and not ctx.wire.api_key:
        raise Skip("needs --admin-key (a key with keys:manage) to mint the keys it tests with")
    exchange = ctx.wire.request("POST", KEYS, json_body={"name": ctx.name(role), "scopes": scopes, **extra}, auth="admin")
    body = ok_json(exchange, "ApiKeyWithSecret", status=201)
    key = Minted(str(body["id"]), str(body["secret"]))
    ctx.wire.also_redact(key.secret)
    ctx.cleanup.append(lambda: revoke(ctx, key.id))
    return key, exchange


def revoke(ctx: Context, key_id: str) -> None:
    ctx.wire.request("DELETE", f"{KEYS}/{key_id}", auth="admin")


def as_key(ctx: Context, key: Minted, method: str, path: str, body: Any = None, *, retry: bool = True, headers: dict[str, str] | None = None) -> Exchange:
    return ctx.wire.request(method, path, json_body=body, auth=None, headers={**key.bearer(), **(headers or {})}, retry=retry)


def _insufficient(exchange: Exchange) -> None:
    expect_error(exchange, ("insufficient_scope",))
    challenge = exchange.headers.get("www-authenticate", "")
    if challenge.split(" ", 1)[0].lower() != "bearer" or 'error="insufficient_scope"' not in challenge:
        raise CheckFailed('WWW-Authenticate: Bearer ... error="insufficient_scope" (RFC 6750 3.1)', repr(challenge or None), exchange=exchange)


@check("scope_enforced")
def scope_enforced(ctx: Context) -> CheckOutcome:
    reader, _ = mint(ctx, "scope-reader", ["models:read"])
    runner, _ = mint(ctx, "scope-inference", ["inference"])
    op = first_op(ctx)
    model = ctx.model(CAPABILITY_OF[op])["id"]
    absent = ctx.name("absent")
    refused: list[tuple[Minted, str, str, Any]] = [
        (reader, "POST", PATH_OF[op], minimal_body(op, model)),  # inference needs `inference`
        (runner, "GET", "/v1/models", None),  # listing needs `models:read`
        (reader, "POST", KEYS, {"name": ctx.name("nested"), "scopes": ["models:read"]}),  # key management has its own scope
        (runner, "GET", f"{LLMOS_BASE}/audit/events", None),  # and so has the audit log
    ]
    if "model-management" in ctx.plan.claimed:
        refused.append((reader, "POST", f"{LLMOS_BASE}/models/{absent}/versions/1.0.0/load", None))  # models:manage
    if "model-packages" in ctx.plan.claimed:
        refused.append((runner, "GET", f"{LLMOS_BASE}/blobs/sha256:{'0' * 64}", None))  # packages:write: inference keys never read weights
    allowed: list[tuple[Minted, str, str, Any]] = [(reader, "GET", "/v1/models", None), (runner, "POST", PATH_OF[op], minimal_body(op, model))]
    with Failures() as failures:
        for key, method, path, body in refused:
            with failures.each():
                _insufficient(as_key(ctx, key, method, path, body))
        for key, method, path, body in allowed:
            with failures.each():
                exchange = as_key(ctx, key, method, path, body)
                if exchange.status != 200:
                    raise CheckFailed(f"200 for {method} {path} with a key holding its scope", f"{exchange.status}: {exchange.body[:200]!r}", exchange=exchange)
    count = len(refused) + len(allowed)
    return CheckOutcome(examples=count, triggered=count)


@check("key_lifecycle")
def key_lifecycle(ctx: Context) -> CheckOutcome:
    key, created = mint(ctx, "lifecycle", ["models:read"])
    cache = created.headers.get("cache-control", "")
    if "no-store" not in cache.lower():
        raise CheckFailed("Cache-Control: no-store on the response that shows the secret", repr(cache or None), exchange=created)
    listing = ctx.wire.request("GET", KEYS, auth="admin")
    body = ok_json(listing, "ApiKeyList")
    if key.secret in listing.body.decode("utf-8", errors="replace"):
        raise CheckFailed("the secret absent from the key listing", "the secret is listed", exchange=listing)
    if key.id not in {k["id"] for k in body["data"]}:
        raise CheckFailed(f"the new key {key.id} in the caller's listing", "absent", exchange=listing)
    used = as_key(ctx, key, "GET", "/v1/models")
    if used.status != 200:
        raise CheckFailed("the new key accepted", f"{used.status}", exchange=used)
    revoked = ctx.wire.request("DELETE", f"{KEYS}/{key.id}", auth="admin")
    ok_json(revoked, "DeletedObject")
    expect_error(as_key(ctx, key, "GET", "/v1/models"), ("invalid_api_key",))
    expect_error(ctx.wire.request("DELETE", f"{KEYS}/key_{ctx.run_id}_absent", auth="admin"), ("key_not_found",))
    soon = int(time.time()) + 2
    short, _ = mint(ctx, "expiring", ["models:read"], expires_at=soon)
    before = as_key(ctx, short, "GET", "/v1/models")
    if before.status != 200:
        raise CheckFailed("a key accepted before its expiry time", f"{before.status}", exchange=before)
    time.sleep(max(0.0, soon - time.time()) + 1.1)
    expect_error(as_key(ctx, short, "GET", "/v1/models"), ("invalid_api_key",))
    return CheckOutcome(examples=6, triggered=6)


def _hammer(ctx: Context, key: Minted, times: int) -> list[Exchange]:
    return [as_key(ctx, key, "GET", "/v1/models", retry=False) for _ in range(times)]


@check("rate_limit_429")
def rate_limit_429(ctx: Context) -> CheckOutcome:
    limited, _ = mint(ctx, "limited", ["models:read"], rate_limit_per_minute=3)
    other, _ = mint(ctx, "unlimited", ["models:read"], rate_limit_per_minute=600)
    answers = _hammer(ctx, limited, 5)
    over = [e for e in answers if e.status == 429]
    if not over:
        raise CheckFailed("429 within 5 quick requests of a key limited to 3 a minute", f"statuses {[e.status for e in answers]}", exchange=answers[-1])
    with Failures() as failures:
        for exchange in over:
            with failures.each():
                expect_error(exchange, ("rate_limited",))
                retry = exchange.headers.get("retry-after", "")
                if not retry.isdigit() or int(retry) < 1:
                    raise CheckFailed("Retry-After in whole seconds, at least 1", repr(retry or None), exchange=exchange)
        with failures.each():
            neighbour = as_key(ctx, other, "GET", "/v1/models", retry=False)
            if neighbour.status != 200:
                raise CheckFailed("another key unaffected by the limited one", f"{neighbour.status}", exchange=neighbour)
    return CheckOutcome(examples=len(answers) + 1, triggered=len(over))


@check("rate_limit_headers")
def rate_limit_headers(ctx: Context) -> CheckOutcome:
    key, _ = mint(ctx, "ratelimit-headers", ["models:read"], rate_limit_per_minute=5)
    remaining: list[int] = []
    for exchange in _hammer(ctx, key, 3):
        values = {name: exchange.headers.get(name) for name in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")}
        if not all(v is not None and v.isdigit() for v in values.values()):
            raise CheckFailed("RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset as integers", repr(values), exchange=exchange)
        remaining.append(int(str(values["ratelimit-remaining"])))
    if remaining != sorted(remaining, reverse=True) or remaining[0] == remaining[-1]:
        raise CheckFailed("RateLimit-Remaining counting down as the key is used", repr(remaining))
    return CheckOutcome(examples=3, triggered=3)


def all_events(ctx: Context) -> tuple[list[dict[str, Any]], list[Exchange]]:
    events: list[dict[str, Any]] = []
    pages: list[Exchange] = []
    cursor: str | None = None
    for _ in range(10_000):
        path = f"{LLMOS_BASE}/audit/events?limit=200" + (f"&cursor={cursor}" if cursor else "")
        exchange = ctx.wire.request("GET", path, auth="admin")
        body = ok_json(exchange, "AuditEventList")
        pages.append(exchange)
        events += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return events, pages
    raise CheckFailed("the audit listing to end (next_cursor null)", "more than 10000 pages")


@check("audit_events_recorded")
def audit_events_recorded(ctx: Context) -> CheckOutcome:
    reader, _ = mint(ctx, "audit-reader", ["models:read"])
    allowed_id, denied_id, anon_id = (f"llmos-conformance-{ctx.run_id}-{role}-{int(time.time() * 1000)}" for role in ("allowed", "denied", "anonymous"))
    minted = ctx.wire.request("POST", KEYS, json_body={"name": ctx.name("audited"), "scopes": ["models:read"]}, auth="admin",
                              headers={REQUEST_ID_HEADER: allowed_id})
    secret = str(ok_json(minted, status=201)["secret"])
    ctx.wire.also_redact(secret)
    minted_id = str(json.loads(minted.body)["id"])
    ctx.cleanup.append(lambda: revoke(ctx, minted_id))
    as_key(ctx, reader, "POST", KEYS, {"name": ctx.name("denied"), "scopes": ["models:read"]}, headers={REQUEST_ID_HEADER: denied_id})
    ctx.wire.request("POST", KEYS, json_body={"name": ctx.name("anonymous"), "scopes": ["models:read"]}, auth=None, headers={REQUEST_ID_HEADER: anon_id})
    events, pages = all_events(ctx)
    by_request = {str(e.get("request_id")): e for e in events}
    expected = [(allowed_id, "success", 201), (denied_id, "failure", 403), (anon_id, "failure", 401)]
    with Failures() as failures:
        for request_id, outcome, status in expected:
            with failures.each():
                event = by_request.get(request_id)
                if event is None:
                    raise CheckFailed(f"an audit event for the create_key call with request id {request_id}", "none", exchange=pages[-1])
                seen = (event.get("operation"), event.get("outcome"), event.get("status"))
                if seen != ("create_key", outcome, status) or not event.get("actor"):
                    raise CheckFailed(f"operation create_key, outcome {outcome}, status {status} and an actor", repr({k: event.get(k) for k in ("operation", "outcome", "status", "actor")}), exchange=pages[-1])
        with failures.each():
            text = "\n".join(p.body.decode("utf-8", errors="replace") for p in pages)
            if any(s in text for s in (secret, reader.secret, *(k for k in ctx.wire.secrets if len(k) >= 16))):
                raise CheckFailed("no secret anywhere in the audit output", "a key secret appears in it", exchange=pages[-1])
    expect_error(ctx.wire.request("GET", f"{LLMOS_BASE}/audit/events?cursor=not-issued-{ctx.run_id}", auth="admin"), ("cursor_invalid",))
    seqs = [int(e.get("seq") or 0) for e in events]
    if seqs != sorted(seqs):
        raise CheckFailed("events oldest first", f"sequence numbers out of order around {seqs[:5]}")
    return CheckOutcome(examples=len(expected), triggered=len(expected), notes=[f"{len(events)} audit events read in {len(pages)} pages"])


REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


@check("request_id_header")
def request_id_header(ctx: Context) -> CheckOutcome:
    op = first_op(ctx)
    model = ctx.model(CAPABILITY_OF[op])["id"]
    mine = f"llmos-conformance-{ctx.run_id}-trace-0001"
    probes: list[tuple[str, str, Any, str | None, str]] = [
        ("GET", "/.well-known/llmos", None, None, "discovery"),
        ("GET", "/v1/models", None, mine, "echo"),
        ("POST", PATH_OF[op], minimal_body(op, model), mine, "echo"),
        ("POST", PATH_OF[op], {"model": ctx.name("absent")}, mine, "echo"),
        ("GET", f"/v1/{ctx.name('absent-route')}", None, None, "error"),
        ("GET", "/v1/models", None, "x" * 300, "replace"),
    ]
    if OPERATIONS_BY_ID["list_keys"].profile in ctx.plan.claimed:
        probes.append(("GET", KEYS, None, None, "keys"))
    seen_ids: set[str] = set()
    with Failures() as failures:
        for method, path, body, sent, kind in probes:
            with failures.each():
                exchange = ctx.wire.request(method, path, json_body=body, auth="admin", headers={REQUEST_ID_HEADER: sent} if sent else None)
                got = exchange.headers.get(REQUEST_ID_HEADER)
                if got is None or not REQUEST_ID.match(got):
                    raise CheckFailed(f"an X-Request-Id header on {method} {path} ({exchange.status})", repr(got), exchange=exchange)
                if kind == "echo" and got != sent:
                    raise CheckFailed("the client's well-formed X-Request-Id echoed", repr(got), exchange=exchange)
                if kind == "replace" and got == sent:
                    raise CheckFailed("an ill-formed X-Request-Id (300 characters) replaced by the server's own", "echoed as sent", exchange=exchange)
                if kind != "echo":
                    if got in seen_ids:
                        raise CheckFailed("a fresh id per request", f"{got!r} repeated", exchange=exchange)
                    seen_ids.add(got)
    return CheckOutcome(examples=len(probes), triggered=len(probes))


@check("upload_hardening")
def upload_hardening(ctx: Context) -> CheckOutcome:
    pkg = fresh_package(ctx, "hostile-upload")
    manifest = pkg.manifest
    weights = weights_index(manifest)
    junk = b"\xff" * 8 + b"{not a safetensors header"
    junk_digest = sha256_digest(junk)
    ctx.wire.request("PUT", f"{LLMOS_BASE}/blobs/{junk_digest}", content=junk, content_type="application/octet-stream", auth="admin")
    never = sha256_digest(f"{ctx.name('never-uploaded')}".encode())
    first = manifest["files"][0]
    installs: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
        ("traversal path", with_files(manifest, {"path": "../../etc/passwd"}), ("path_invalid", "manifest_invalid")),
        ("absolute path", with_files(manifest, {"path": "/etc/passwd"}), ("path_invalid", "manifest_invalid")),
        ("duplicate path", {**manifest, "files": [*manifest["files"], dict(first)]}, ("manifest_invalid", "path_invalid")),
        ("blob never uploaded", with_files(manifest, {"digest": never}, weights), ("manifest_blob_unknown",)),
        ("malformed digest in the manifest", with_files(manifest, {"digest": "sha256:XYZ"}, weights), ("manifest_invalid", "digest_invalid")),
        ("weights with a malformed header", with_files(manifest, {"digest": junk_digest, "size": len(junk)}, weights), ("weights_malformed",)),
    ]
    data = b"llmos-conformance hostile blob\n"
    blobs: list[tuple[str, str, tuple[int, ...]]] = [
        ("bytes that miss their digest", f"{LLMOS_BASE}/blobs/{sha256_digest(data + b'x')}", (400,)),
        ("an upper-case digest", f"{LLMOS_BASE}/blobs/sha256:{sha256_digest(data)[7:].upper()}", (400, 404)),
        ("another algorithm", f"{LLMOS_BASE}/blobs/sha512:{'0' * 128}", (400, 404)),
        ("a truncated digest", f"{LLMOS_BASE}/blobs/sha256:{'0' * 63}", (400, 404)),
    ]
    with Failures() as failures:
        for _what, body, codes in installs:
            with failures.each():
                refused_install(ctx, body, codes)
                still_ready(ctx, ctx.wire.last)
        for what, path, statuses in blobs:
            with failures.each():
                exchange = ctx.wire.request("PUT", path, content=data, content_type="application/octet-stream", auth="admin")
                if exchange.status not in statuses:
                    raise CheckFailed(f"{' or '.join(map(str, statuses))} for a blob upload with {what}", f"{exchange.status}", exchange=exchange)
                expect_error(exchange, ("digest_invalid", "not_found", "blob_unknown"))
                if ctx.wire.request("HEAD", f"{LLMOS_BASE}/blobs/{sha256_digest(data)}", auth="admin").status == 200:
                    raise CheckFailed(f"nothing stored after a blob upload with {what}", "the bytes are stored under their real digest", exchange=exchange)
                still_ready(ctx, exchange)
    count = len(installs) + len(blobs)
    return CheckOutcome(examples=count, triggered=count)
