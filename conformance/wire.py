"""An httpx wrapper that records every exchange, reads streams byte-exact and builds redacted curl lines.

Transport failures while talking to a reachable target become the target's :class:`CheckFailed`.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from llmos_std.operations import MODEL_DIGEST_HEADER
from llmos_std.sse import DataEvent, DoneEvent, SSEParser, StreamProtocolError

from conformance.verdicts import CheckFailed

REDACTED = "<redacted>"
MAX_RETRY_AFTER_S = 5.0
MAX_RETRIES = 2
MAX_INLINE_BODY = 64 * 1024
"""Request bodies up to this size are written into curl lines whole, so that the line reproduces."""


@dataclass
class Exchange:
    """One request and what came back, as raw as httpx allows."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int = 0
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    body: bytes = b""
    chunks: list[bytes] = field(default_factory=list)
    """Raw network chunks, for streams."""
    events: list[DataEvent | DoneEvent] = field(default_factory=list)
    stream_error: str | None = None
    """A violation of the SSE grammar, when the body was read as a stream."""
    chunked: bool = False
    """Whether the body went out with chunked transfer coding (no Content-Length)."""

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise CheckFailed("a JSON body", f"{self.status} with a body that is not JSON ({exc}): {self.body[:200]!r}", exchange=self) from None

    def request_json(self) -> Any:
        try:
            return json.loads(self.request_body)
        except ValueError:
            return self.request_body.decode("utf-8", errors="replace")[:500]

    @property
    def done(self) -> bool:
        return any(isinstance(e, DoneEvent) for e in self.events)

    @property
    def served_digest(self) -> str | None:
        """The ``LLMOS-Model-Digest`` header: the package that served the request, if the target says."""
        value = self.headers.get(MODEL_DIGEST_HEADER)
        return None if value is None else str(value)

    def data(self) -> list[Any]:
        return [json.loads(e.data) for e in self.events if isinstance(e, DataEvent)]

    def curl(self, secrets: tuple[str, ...] = ()) -> str:
        parts = ["curl", "-sS", "-X", self.method, self.url]
        if self.chunked:
            parts += ["-H", "Transfer-Encoding: chunked"]
        for name, value in self.request_headers.items():
            if name.lower() in ("authorization", "x-api-key"):
                value = f"Bearer {REDACTED}" if name.lower() == "authorization" else REDACTED
            parts += ["-H", f"{name}: {value}"]
        if len(self.request_body) > MAX_INLINE_BODY:
            parts += ["--data-binary", "@body.bin"]
            note = f"  # body.bin: the {len(self.request_body)}-byte body, too large to inline (it starts {self.request_body[:80]!r})"
        elif self.request_body:
            parts += ["--data-binary", self.request_body.decode("utf-8", errors="replace")]
            note = ""
        else:
            note = ""
        line = " ".join(shlex.quote(p) for p in parts) + note
        return redact(line, secrets)


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class Wire:
    """Talks to one target; ``openai_base`` prefixes ``/v1/...`` paths, ``origin`` everything else."""

    def __init__(self, origin: str, openai_base: str, *, api_key: str | None, admin_key: str | None, timeout: float = 120.0) -> None:
        self.origin = origin.rstrip("/")
        self.openai_base = openai_base.rstrip("/")
        self.api_key = api_key
        self.admin_key = admin_key
        self.timeout = timeout
        self.derived_secrets: list[str] = []
        self.client = httpx.Client(timeout=timeout, follow_redirects=False)
        self.log: list[Exchange] = []
        self.last: Exchange | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.api_key, self.admin_key, *self.derived_secrets) if s)

    def also_redact(self, *values: str) -> None:
        """Values derived from a key (a truncated or case-flipped copy) are as secret as the key itself."""
        self.derived_secrets.extend(v for v in values if v and v not in self.derived_secrets)

    def close(self) -> None:
        self.client.close()

    def url(self, path: str) -> str:
        if path.startswith("/v1/"):
            return self.openai_base + path
        return self.origin + path

    def headers_for(self, auth: str | None, content_type: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The headers a request with this auth role and body type carries (credentials included)."""
        headers: dict[str, str] = {}
        key = {"api": self.api_key, "admin": self.admin_key or self.api_key}.get(auth or "", None)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        if content_type:
            headers["Content-Type"] = content_type
        headers.update(extra or {})
        return headers

    def request(
        self, method: str, path: str, *, json_body: Any = None, content: bytes | None = None,
        content_type: str | None = None, auth: str | None = "api", headers: dict[str, str] | None = None,
        stream: bool = False, chunked: bool = False, retry: bool = True,
    ) -> Exchange:
        """Send and record one request; ``chunked`` sends the body without Content-Length, in 64 KiB chunks."""
        if json_body is not None:
            content = json.dumps(json_body).encode()
            content_type = content_type or "application/json"
        sent = self.headers_for(auth, content_type, headers)
        exchange = Exchange(method, self.url(path), sent, content or b"")
        for attempt in range(MAX_RETRIES + 1):
            exchange = Exchange(method, self.url(path), sent, content or b"", chunked=chunked)
            self._send(exchange, stream)
            if not retry or exchange.status not in (429, 503) or attempt == MAX_RETRIES or "retry-after" not in exchange.headers:
                break
            time.sleep(_retry_after(exchange.headers["retry-after"]))
        self.log.append(exchange)
        self.last = exchange
        return exchange

    def _send(self, exchange: Exchange, stream: bool) -> None:
        """Send once; a transport failure on a reused keep-alive connection is retried once on a fresh one.

        A server may close an idle keep-alive connection at any time (RFC 9112, section 9.3.1), and a
        client cannot tell before it writes. Only a failure on a connection opened for the request
        is the target's.
        """
        opened: list[str] = []
        try:
            self._attempt(exchange, stream, opened)
        except CheckFailed:
            if opened:
                raise
            self._fresh_pool()
            exchange.status, exchange.headers, exchange.body = 0, httpx.Headers(), b""
            exchange.chunks, exchange.events, exchange.stream_error = [], [], None
            self._attempt(exchange, stream, opened)

    def _fresh_pool(self) -> None:
        self.client.close()
        self.client = httpx.Client(timeout=self.timeout, follow_redirects=False)

    def _attempt(self, exchange: Exchange, stream: bool, opened: list[str]) -> None:
        def trace(event: str, info: dict[str, Any]) -> None:
            if ".connect_tcp." in event or ".connect_unix_socket." in event:
                opened.append(event)

        payload = exchange.request_body
        content: bytes | Iterator[bytes] | None = (payload[i:i + 65536] for i in range(0, len(payload), 65536)) if exchange.chunked else (payload or None)
        request = self.client.build_request(exchange.method, exchange.url, headers=exchange.request_headers, content=content,
                                            extensions={"trace": trace})
        try:
            response = self.client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise CheckFailed("a response", f"transport failure: {type(exc).__name__}: {exc}", exchange=exchange) from None
        try:
            exchange.status = response.status_code
            exchange.headers = response.headers
            is_sse = response.headers.get("content-type", "").split(";")[0].strip() == "text/event-stream"
            parser = SSEParser() if (stream and is_sse) else None
            body = bytearray()
            for chunk in response.iter_raw():
                body += chunk
                if parser is not None:
                    exchange.chunks.append(chunk)
                    if exchange.stream_error is None:
                        try:
                            exchange.events.extend(parser.feed(chunk))
                        except StreamProtocolError as exc:
                            exchange.events.extend(exc.events)
                            exchange.stream_error = str(exc)
            if parser is not None and exchange.stream_error is None:
                try:
                    parser.close()
                except StreamProtocolError as exc:
                    exchange.stream_error = str(exc)
            exchange.body = bytes(body)
        except httpx.HTTPError as exc:
            exchange.body = bytes(body) if "body" in locals() else b""
            raise CheckFailed("a complete response", f"the response broke off: {type(exc).__name__}: {exc}", exchange=exchange) from None
        finally:
            response.close()


def _retry_after(value: str) -> float:
    try:
        return max(0.0, min(float(value), MAX_RETRY_AFTER_S))
    except ValueError:
        return 1.0
