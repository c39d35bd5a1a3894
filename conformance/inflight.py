"""A long stream read on a thread, so that a check can act on the server while a request is in flight.

The wire's own requests read whole bodies; draining and cancellation need to know when generation has
started, and to drop the connection or keep reading while the main thread unloads the version.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from llmos_std.sse import DataEvent, DoneEvent, SSEParser, StreamProtocolError

from conformance.context import Context
from conformance.bodies import PATH_OF
from conformance.wire import Exchange


@dataclass
class InFlight:
    """One streamed request; ``started`` is set once the first content has arrived."""

    exchange: Exchange
    started: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    finished_at: float = 0.0
    transport_error: str | None = None
    thread: threading.Thread | None = None

    def payloads(self) -> list[Any]:
        return [json.loads(e.data) for e in self.exchange.events if isinstance(e, DataEvent)]

    @property
    def done(self) -> bool:
        return bool(self.exchange.events) and isinstance(self.exchange.events[-1], DoneEvent)

    def join(self, timeout: float) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


def start_stream(ctx: Context, op: str, body: dict[str, Any], *, drop_after_first: bool = False) -> InFlight:
    """POST ``body`` with ``stream: true`` on a thread of its own; with ``drop_after_first`` the connection is
    closed as soon as the first content arrives (a client that goes away)."""
    wire = ctx.wire
    sent = {**body, "stream": True}
    content = json.dumps(sent).encode()
    headers = wire.headers_for("api", "application/json")
    exchange = Exchange("POST", wire.url(PATH_OF[op]), headers, content)
    flight = InFlight(exchange)

    def read() -> None:
        parser = SSEParser()
        body_bytes = bytearray()
        try:
            with httpx.Client(timeout=ctx.settings.timeout) as client, client.stream("POST", exchange.url, headers=headers, content=content) as response:
                exchange.status = response.status_code
                exchange.headers = response.headers
                for chunk in response.iter_raw():
                    body_bytes += chunk
                    exchange.chunks.append(chunk)
                    if exchange.stream_error is None:
                        try:
                            exchange.events.extend(parser.feed(chunk))
                        except StreamProtocolError as exc:
                            exchange.stream_error = str(exc)
                    if not flight.started.is_set() and any(_has_content(e) for e in exchange.events):
                        flight.started.set()
                        if drop_after_first:
                            break
        except httpx.HTTPError as exc:
            flight.transport_error = f"{type(exc).__name__}: {exc}"
        finally:
            exchange.body = bytes(body_bytes)
            flight.finished_at = time.monotonic()
            flight.started.set()
            flight.finished.set()

    flight.thread = threading.Thread(target=read, name="llmos-conformance-stream", daemon=True)
    flight.thread.start()
    wire.log.append(exchange)
    return flight


def _has_content(event: DataEvent | DoneEvent) -> bool:
    if not isinstance(event, DataEvent):
        return False
    try:
        payload = json.loads(event.data)
    except ValueError:
        return True
    for choice in (payload.get("choices") or []) if isinstance(payload, dict) else []:
        piece = choice.get("text") if "text" in choice else (choice.get("delta") or {}).get("content")
        if piece:
            return True
    return isinstance(payload, dict) and "error" in payload
