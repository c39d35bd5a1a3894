"""The HTTP edge: binds operations from the table, validates bodies, and turns errors into envelopes.

Every route goes through :func:`bind`, so authentication, content type, body limits and
validation are the same for all of them, and the one place errors become responses is here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmos_std import STANDARD_VERSION
from llmos_std.data import JSONL_MEDIA_TYPES
from llmos_std.errors import LLMOSError
from llmos_std.operations import REQUEST_ID_HEADER, VERSION_HEADER, Operation, allowed_methods
from llmos_std.security import Scope as KeyScope
from llmos_std.validation import error_from_validation, validate_json_body

from reference_impl.keys import KeyRecord

log = logging.getLogger("llmos.http")



@dataclass
class Context:
    """What a handler gets: the raw request, its validated body and the app's state."""

    request: Request
    operation: Operation
    body: BaseModel | None
    raw: dict[str, Any] | None
    principal: str
    scopes: tuple[KeyScope, ...] = ("admin",)

    @property
    def state(self) -> Any:
        return self.request.app.state

    def path(self, name: str) -> str:
        return str(self.request.path_params[name])


Handler = Callable[[Context], Awaitable[Response]]


def wire_json(model: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(model.model_dump_json(), status_code=status, media_type="application/json", headers=headers)


def error_response(error: LLMOSError) -> JSONResponse:
    headers = dict(error.headers)
    if error.status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="llmos"' + (', error="invalid_token"' if error.code == "invalid_api_key" else ""))
    return JSONResponse(error.envelope().model_dump(mode="json"), status_code=error.status, headers=headers)


@dataclass(frozen=True)
class Caller:
    principal: str
    scopes: tuple[KeyScope, ...]
    key: KeyRecord | None = None


LOCAL = Caller("local", ("admin",))


def _authenticate(request: Request, op: Operation) -> Caller:
    if op.scope is None or request.app.state.settings.insecure_local:
        return LOCAL
    header = request.headers.get("authorization", "")
    # RFC 9110 11.1: the scheme is case-insensitive; RFC 6750: one or more spaces before the token.
    scheme, _, token = header.partition(" ")
    token = token.lstrip(" ")
    if scheme.lower() != "bearer" or not token:
        raise LLMOSError("missing_api_key", "this operation needs a bearer API key")
    record = request.app.state.keys.verify(token)
    if record is None:
        raise LLMOSError("invalid_api_key", "the API key is not valid")
    if op.scope not in record.scopes and "admin" not in record.scopes:
        raise LLMOSError("insufficient_scope", f"this operation needs the {op.scope!r} scope",
                         headers={"WWW-Authenticate": f'Bearer realm="llmos", error="insufficient_scope", scope="{op.scope}"'})
    return Caller(record.principal, record.scopes, record)


def _rate_limit(request: Request, caller: Caller) -> dict[str, str]:
    """Spend one of the key's tokens; over the limit -> 429 with Retry-After. Returns the RateLimit-* headers."""
    key = caller.key
    if key is None or key.rate_limit_per_minute is None:
        return {}
    decision = request.app.state.rate_limiter.take(key.id, key.rate_limit_per_minute)
    headers = {"RateLimit-Limit": str(decision.limit), "RateLimit-Remaining": str(decision.remaining), "RateLimit-Reset": str(decision.reset_seconds)}
    if not decision.allowed:
        raise LLMOSError("rate_limited", f"rate limit of {decision.limit} requests per minute exceeded",
                         headers={**headers, "Retry-After": str(decision.retry_after)})
    return headers


async def _json_body(request: Request, op: Operation) -> tuple[BaseModel | None, dict[str, Any] | None]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if op.request_jsonl and content_type in JSONL_MEDIA_TYPES:
        return None, None  # the handler reads the lines itself
    if content_type != "application/json":
        raise LLMOSError("unsupported_media_type", f"{op.method} {op.path} takes application/json")
    data = await request.body()
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise LLMOSError("invalid_json", "the body is not valid JSON") from None
    except RecursionError:  # JSON nested deeper than the parser's stack: refused, not a crash
        raise LLMOSError("invalid_json", "the body is nested too deeply") from None
    if not isinstance(raw, dict):
        raise LLMOSError("invalid_request", "the body must be a JSON object")
    if op.request is None or op.body_error_code is not None:
        return None, raw
    try:
        return validate_json_body(op.request, raw, data), raw
    except ValidationError as exc:
        raise error_from_validation(exc) from None


def bind(op: Operation, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        caller: Caller | None = None
        status = 500
        try:
            caller = _authenticate(request, op)
            limits = _rate_limit(request, caller)
            body: BaseModel | None = None
            raw: dict[str, Any] | None = None
            if op.request_body == "json":
                body, raw = await _json_body(request, op)
            response = await handler(Context(request, op, body, raw, caller.principal, caller.scopes))
            response.headers.update(limits)
            status = response.status_code
            return response
        except LLMOSError as exc:
            status = exc.status
            raise
        except ClientDisconnect:
            # The client left mid-body (an aborted upload): handlers already discarded what arrived,
            # and there is nobody to answer, so this is an event for the log, not a server error.
            log.info("client disconnected during %s %s (request %s)", op.method, op.path, request.scope.get("llmos.request_id"))
            status = 400
            return Response(status_code=400)
        finally:
            if op.mutating:
                _audit(request, op, caller, status)

    endpoint.__name__ = op.id
    return endpoint


def _audit(request: Request, op: Operation, caller: Caller | None, status: int) -> None:
    """Every mutating call, allowed or denied, leaves an event (actor, key id, target, outcome, request id)."""
    target = "/".join(str(request.path_params[p]) for p in op.path_params) or None
    request.app.state.audit.record(
        actor=caller.principal if caller else "anonymous", key_id=caller.key.id if caller and caller.key else None,
        operation=op.id, target=target, status=status, request_id=str(request.scope.get("llmos.request_id", "")),
    )


async def llmos_error_handler(request: Request, exc: Exception) -> Response:
    if isinstance(exc, LLMOSError):
        return error_response(exc)
    return await unexpected_error_handler(request, exc)


async def unexpected_error_handler(request: Request, exc: Exception) -> Response:
    request_id = request.scope.get("llmos.request_id", "unknown")
    log.error("unhandled error in %s %s (request %s)", request.method, request.url.path, request_id, exc_info=exc)
    return error_response(LLMOSError("internal_error", f"internal error; request id {request_id}"))


async def not_found_handler(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    if status == 405:
        # From the operation table, not the router: Starlette names only the first route that matched the path.
        allow = ", ".join(allowed_methods(request.url.path)) or (getattr(exc, "headers", None) or {}).get("Allow")
        return error_response(LLMOSError("method_not_allowed", f"{request.method} is not allowed on {request.url.path}",
                                         headers={"Allow": allow} if allow else None))
    return error_response(LLMOSError("not_found", f"no operation at {request.url.path}"))


class EdgeMiddleware:
    """Host allowlist, body-size limit, request ids, the ``LLMOS-Version`` header and the concurrency gate.

    ``max_concurrent`` model-serving requests run at once (a stream holds its place until its last
    byte); later ones wait their turn rather than pile more rows onto the engine than discovery states.
    """

    def __init__(
        self, app: ASGIApp, *, allowed_hosts: list[str], max_body_bytes: int, blob_paths: tuple[str, ...], max_blob_bytes: int,
        gated_paths: frozenset[str], max_concurrent: int,
    ) -> None:
        self.app = app
        self.allowed_hosts = {h.lower() for h in allowed_hosts}
        self.max_body_bytes = max_body_bytes
        self.blob_paths = blob_paths
        self.max_blob_bytes = max_blob_bytes
        self.gated_paths = gated_paths
        self.gate = asyncio.Semaphore(max_concurrent)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        sent_id = headers.get(REQUEST_ID_HEADER.lower(), "")
        request_id = sent_id if 0 < len(sent_id) <= 128 and sent_id.isascii() and sent_id.isprintable() else secrets.token_hex(12)
        scope["llmos.request_id"] = request_id

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(VERSION_HEADER.lower().encode(), STANDARD_VERSION.encode()), (REQUEST_ID_HEADER.lower().encode(), request_id.encode())]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        host = headers.get("host", "")
        hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
        if "*" not in self.allowed_hosts and hostname.lower() not in self.allowed_hosts:
            await _send_error(LLMOSError("host_not_allowed", "the Host header is not allowed"), send_with_headers)
            return
        limit = self.max_blob_bytes if scope["path"].startswith(self.blob_paths) else self.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_error(LLMOSError("payload_too_large", f"the body exceeds {limit} bytes"), send_with_headers)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise LLMOSError("payload_too_large", f"the body exceeds {limit} bytes")
            return message

        if scope["path"] in self.gated_paths:
            async with self.gate:
                await self.app(scope, limited_receive, send_with_headers)
        else:
            await self.app(scope, limited_receive, send_with_headers)


async def _send_error(error: LLMOSError, send: Send) -> None:
    response = error_response(error)
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})
