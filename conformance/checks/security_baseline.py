"""security-baseline: keys on every operation and side route, exact keys, no echo, size, Host, fetch, CORS, absurd limits.

Every request here is hostile; after each one the target must still answer ``/llmos/v1/health/ready``
with 200 (LLMOS-SEC-009 says so for all of them, and each check holds its own requests to it).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from llmos_std.operations import LLMOS_BASE, OPERATIONS, Operation

from conformance.bodies import CAPABILITY_OF, PATH_OF, minimal_body
from conformance.context import Context
from conformance.judging import expect_error, expect_status
from conformance.registry import check
from conformance.traffic import available_ops, first_op, still_ready
from conformance.verdicts import CheckFailed, CheckOutcome, Failures, Skip
from conformance.wire import Exchange

SIDE_ROUTES: tuple[tuple[str, str], ...] = (
    ("POST", "/invocations"), ("POST", "/tokenize"), ("POST", "/detokenize"), ("GET", "/metrics"), ("GET", "/slots"),
    ("GET", "/props"), ("GET", "/docs"), ("GET", "/redoc"), ("GET", "/openapi.json"), ("GET", "/api/tags"), ("POST", "/api/generate"),
    ("POST", "/api/chat"), ("GET", "/api/ps"), ("POST", "/v1/responses"), ("GET", "/v1/models/{model}"), ("GET", "/version"),
    ("GET", "/server_info"), ("GET", "/stats"), ("POST", "/generate"), ("POST", "/v1/rerank"), ("POST", "/score"),
    ("GET", f"{LLMOS_BASE}/openapi.json"), ("POST", "/v1/audio/transcriptions"), ("POST", "/v1/images/generations"),
)
"""Routes LLM servers commonly answer besides the standard's operations (vLLM, llama.cpp, Ollama, TGI, SGLang...)."""

PATH_VALUES = {"version": "1.0.0", "digest": "sha256:" + "0" * 64, "task": "summarize"}


def _path(ctx: Context, op: Operation) -> str:
    path = op.path
    for name in op.path_params:
        path = path.replace("{" + name + "}", PATH_VALUES.get(name, ctx.name("absent")))
    return path


def _challenge(exchange: Exchange, *, invalid_token: bool) -> None:
    challenge = exchange.headers.get("www-authenticate")
    if challenge is None or challenge.split(" ", 1)[0].lower() != "bearer":
        raise CheckFailed("a WWW-Authenticate challenge with the Bearer scheme (RFC 6750)", repr(challenge), exchange=exchange)
    if invalid_token and 'error="invalid_token"' not in challenge:
        raise CheckFailed('the challenge carrying error="invalid_token" for a key that does not match', repr(challenge), exchange=exchange)


def _keyed(ctx: Context) -> str:
    key = ctx.wire.api_key
    if not key:
        raise Skip("needs a valid key to compare against: give --api-key")
    return key


def _claimed_ops(ctx: Context) -> list[Operation]:
    return [op for op in OPERATIONS if op.profile in ctx.plan.claimed and op.scope is not None]


@check("auth_required_everywhere")
def auth_required_everywhere(ctx: Context) -> CheckOutcome:
    ops = _claimed_ops(ctx)
    with Failures() as failures:
        for op in ops:
            with failures.each():
                body = b"{}" if op.request_body == "json" else (b"x" if op.request_body == "bytes" else None)
                kind = "application/json" if op.request_body == "json" else ("application/octet-stream" if body else None)
                exchange = ctx.wire.request(op.method, _path(ctx, op), content=body, content_type=kind, auth=None)
                if op.method == "HEAD":
                    expect_status(exchange, 401)
                else:
                    expect_error(exchange, ("missing_api_key",))
                _challenge(exchange, invalid_token=False)
                still_ready(ctx, exchange)
    return CheckOutcome(examples=len(ops), triggered=len(ops))


@check("side_routes_need_keys")
def side_routes_need_keys(ctx: Context) -> CheckOutcome:
    model = next((str(m["id"]) for m in ctx.plan.model_list), ctx.name("absent"))
    with Failures() as failures:
        for method, path in SIDE_ROUTES:
            with failures.each():
                path = path.replace("{model}", model)
                body = {"model": model, "prompt": "hi", "input": "hi", "text": "hi"} if method == "POST" else None
                exchange = ctx.wire.request(method, path, json_body=body, auth=None)
                if exchange.status not in (401, 404, 405):
                    raise CheckFailed(f"401 without a key (or 404/405: nothing served) on {method} {path}", f"{exchange.status}: {exchange.body[:160]!r}", exchange=exchange)
                if exchange.status == 401:
                    _challenge(exchange, invalid_token=False)
                still_ready(ctx, exchange)
    return CheckOutcome(examples=len(SIDE_ROUTES), triggered=len(SIDE_ROUTES), notes=[f"{len(SIDE_ROUTES)} side routes probed without a key"])


def _variants(key: str) -> list[tuple[str, str]]:
    """(description, presented key): each must be refused; none is ever printed (they are derived from the key)."""
    half = len(key) // 2
    out = [("truncated by one character", key[:-1]), ("extended by one character", key + "0"),
           ("split by a space in the middle", key[:half] + " " + key[half:]), ("with one character changed", key[:-1] + ("A" if key[-1] != "A" else "B")),
           ("the first half alone", key[:half])]
    if key.swapcase() != key:
        out.append(("in another letter case", key.swapcase()))
    return out


@check("key_compared_exactly")
def key_compared_exactly(ctx: Context) -> CheckOutcome:
    key = _keyed(ctx)
    variants = _variants(key)
    ctx.wire.also_redact(*(v for _, v in variants))
    count = 0
    with Failures() as failures:
        for what, presented in variants:
            count += 1
            with failures.each():
                exchange = ctx.wire.request("GET", "/v1/models", auth=None, headers={"Authorization": f"Bearer {presented}"})
                if exchange.status != 401:
                    raise CheckFailed(f"401 invalid_api_key for the key {what}", f"{exchange.status}", exchange=exchange)
                expect_error(exchange, ("invalid_api_key",))
                _challenge(exchange, invalid_token=True)
                still_ready(ctx, exchange)
        for scheme in ("bearer", "BEARER", "BeArEr"):
            count += 1
            with failures.each():
                exchange = ctx.wire.request("GET", "/v1/models", auth=None, headers={"Authorization": f"{scheme} {key}"})
                if exchange.status != 200:
                    raise CheckFailed(f"the valid key accepted with the scheme written {scheme!r} (schemes are case-insensitive, RFC 9110 11.1)", f"{exchange.status}: {exchange.body[:160]!r}", exchange=exchange)
    return CheckOutcome(examples=count, triggered=count)


@check("no_credential_echo")
def no_credential_echo(ctx: Context) -> CheckOutcome:
    key = _keyed(ctx)
    canary = "llmos-canary-" + ctx.run_id + "-not-a-key-0123456789"
    ctx.wire.also_redact(canary)
    presented = [key, canary, key[:-1]]
    ctx.wire.also_redact(key[:-1])
    op = first_op(ctx)
    model = ctx.model(CAPABILITY_OF[op])["id"]
    probes: list[tuple[str, str, Any, dict[str, str]]] = [
        ("GET", "/v1/models", None, {"Authorization": f"Bearer {canary}"}),
        ("GET", "/v1/models", None, {"Authorization": f"Bearer {key[:-1]}"}),
        ("POST", PATH_OF[op], {"model": ctx.name("absent")}, {"Authorization": f"Bearer {key}"}),
        ("POST", PATH_OF[op], {**minimal_body(op, model), "frobnicate": 1}, {"Authorization": f"Bearer {key}"}),
        ("POST", PATH_OF[op], minimal_body(op, model), {"Authorization": f"Basic {canary}"}),
        ("GET", f"/v1/{ctx.name('absent-route')}", None, {"Authorization": f"Bearer {canary}"}),
        ("GET", "/v1/models", None, {"Authorization": f"Bearer {key}", "X-Api-Key": canary}),
    ]
    with Failures() as failures:
        for method, path, body, headers in probes:
            with failures.each():
                exchange = ctx.wire.request(method, path, json_body=body, auth=None, headers=headers)
                seen = exchange.body.decode("utf-8", errors="replace") + "\n" + "\n".join(f"{k}: {v}" for k, v in exchange.headers.items())
                for secret in presented:
                    if secret in seen or secret.lower() in seen.lower():
                        raise CheckFailed("no presented credential in the response", f"a credential echoed in the {exchange.status} response to {method} {path}", exchange=exchange)
                still_ready(ctx, exchange)
    return CheckOutcome(examples=len(probes), triggered=len(probes))


@check("body_limit_413")
def body_limit_413(ctx: Context) -> CheckOutcome:
    size = ctx.limit("max_body_bytes")
    if size is None:
        raise Skip("the target declares no max_body_bytes")
    if size > 64 * 1024 * 1024:
        raise Skip(f"max_body_bytes is {size}: larger than the kit sends (64 MiB)")
    ops = available_ops(ctx)
    if not ops:
        raise Skip("no claimed inference or embeddings operation to send a body to")
    op = ops[0]
    body = json.dumps({**minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"]), "user": "x" * (size + 1)}).encode()
    with Failures() as failures:
        for chunked in (False, True):
            with failures.each():
                exchange = ctx.wire.request("POST", PATH_OF[op], content=body, content_type="application/json", chunked=chunked)
                expect_error(exchange, ("payload_too_large",))
                still_ready(ctx, exchange)
    return CheckOutcome(examples=2, triggered=2)


@check("host_allowlist")
def host_allowlist(ctx: Context) -> CheckOutcome:
    probes = [("GET", "/.well-known/llmos", None), ("GET", "/v1/models", "api"), ("GET", f"{LLMOS_BASE}/health/ready", None)]
    hosts = ["attacker.example", "attacker.example:8400", "127.0.0.1.attacker.example"]
    with Failures() as failures:
        for method, path, auth in probes:
            for host in hosts:
                with failures.each():
                    exchange = ctx.wire.request(method, path, auth=auth, headers={"Host": host})
                    expect_error(exchange, ("host_not_allowed",))
                    still_ready(ctx, exchange)
    return CheckOutcome(examples=len(probes) * len(hosts), triggered=len(probes) * len(hosts))


class Canary:
    """A TCP listener at the callback URL that counts connections (the target must make none)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_server((parts.hostname or "127.0.0.1", parts.port or 80))
        self.sock.settimeout(0.2)
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


@check("no_server_side_fetch")
def no_server_side_fetch(ctx: Context) -> CheckOutcome:
    url = ctx.settings.callback_url
    if url is None:
        raise Skip("needs --callback-url, a URL on this machine the target can reach: without a listener nobody sees a fetch, so this is never passed blind")
    try:
        canary = Canary(url)
    except OSError as exc:
        raise Skip(f"cannot listen at --callback-url {url}: {exc.strerror}") from None
    target = url.rstrip("/") + f"/llmos-canary-{ctx.run_id}"
    sent = 0
    try:
        for op in available_ops(ctx, generation_only=True):
            model = ctx.model(CAPABILITY_OF[op])["id"]
            bodies: list[dict[str, Any]] = [minimal_body(op, model, prompt=f"Summarise {target}")]
            if op == "create_chat_completion":
                bodies += [
                    {**minimal_body(op, model), "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": target}}]}]},
                    {**minimal_body(op, model), "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "file", "file": {"file_id": target}}]}]},
                    {**minimal_body(op, model), "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"$ref": target}}}},
                ]
            for body in bodies:
                exchange = ctx.wire.request("POST", PATH_OF[op], json_body=body)
                sent += 1
                still_ready(ctx, exchange)
        if "model-packages" in ctx.plan.claimed:
            manifest = {"schema_version": "1", "name": ctx.name("fetch"), "version": "1.0.0", "files": [{"path": target, "digest": "sha256:" + "0" * 64, "size": 1, "role": "weights"}]}
            ctx.wire.request("POST", f"{LLMOS_BASE}/packages", json_body=manifest, auth="admin")
            sent += 1
        time.sleep(1.0)  # a fetch the server queued for later still has to arrive
    finally:
        canary.close()
    if not sent:
        raise Skip("no claimed operation takes a field that could carry a URL")
    if canary.connections:
        raise CheckFailed("no connection to a URL the client supplied", f"{canary.connections} connection(s) to {url} after {sent} requests carrying it")
    return CheckOutcome(examples=sent, triggered=sent)


@check("cors_not_wildcard_with_credentials")
def cors_not_wildcard_with_credentials(ctx: Context) -> CheckOutcome:
    origin = "https://attacker.example"
    op = first_op(ctx)
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type"}
    probes = [("OPTIONS", PATH_OF[op], preflight, None), ("GET", "/v1/models", {"Origin": origin}, "api"), ("GET", "/.well-known/llmos", {"Origin": origin}, None)]
    with Failures() as failures:
        for method, path, headers, auth in probes:
            with failures.each():
                exchange = ctx.wire.request(method, path, auth=auth, headers=headers)
                allow = exchange.headers.get("access-control-allow-origin")
                credentials = exchange.headers.get("access-control-allow-credentials", "").lower() == "true"
                if allow == "*" and credentials:
                    raise CheckFailed("never Access-Control-Allow-Origin: * with credentials", "* with Access-Control-Allow-Credentials: true", exchange=exchange)
                if allow == origin:
                    raise CheckFailed(f"an unlisted origin not reflected ({method} {path})", f"Access-Control-Allow-Origin: {allow}", exchange=exchange)
                still_ready(ctx, exchange)
    return CheckOutcome(examples=len(probes), triggered=len(probes))


ABSURD: tuple[tuple[str, Any], ...] = (("2^63", 2**63), ("negative", -1), ("fractional", 1.5), ("a numeric string", "12"), ("2^64 + 1", 2**64 + 1))


@check("limits_absurd_values")
def limits_absurd_values(ctx: Context) -> CheckOutcome:
    gen = available_ops(ctx, generation_only=True)
    if not gen:
        raise Skip("no claimed generation operation to send bounded fields to")
    op = gen[0]
    base = minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"])
    fields = [f for f, limit in (("max_tokens", "max_tokens"), ("n", "max_n")) if ctx.limit(limit) is not None]
    if not fields:
        raise Skip("the target declares neither max_tokens nor max_n")
    count = 0
    with Failures() as failures:
        for field in fields:
            for _, value in ABSURD:
                count += 1
                with failures.each():
                    exchange = ctx.wire.request("POST", PATH_OF[op], json_body={**base, field: value})
                    expect_error(exchange, ("invalid_value", "limit_exceeded"), param=field)
                    still_ready(ctx, exchange)
    return CheckOutcome(examples=count, triggered=count)
