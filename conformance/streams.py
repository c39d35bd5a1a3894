"""Reading a stream the kit asked for: grammar verdicts, chunk payloads and per-choice reassembly."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from llmos_std.sse import DataEvent, DoneEvent

from conformance.context import Context
from conformance.judging import expect_status
from conformance.traffic import post
from conformance.verdicts import CheckFailed
from conformance.wire import Exchange


@dataclass
class Stream:
    exchange: Exchange
    payloads: list[Any]
    texts: dict[int, str] = field(default_factory=dict)
    pieces: dict[int, list[str]] = field(default_factory=dict)
    finish: dict[int, list[str]] = field(default_factory=dict)


def open_stream(ctx: Context, op: str, body: dict[str, Any]) -> Stream:
    """POST with ``stream: true``; a non-200 answer or an unparsable event is the target's fail."""
    exchange = post(ctx, op, {**body, "stream": True}, stream=True)
    expect_status(exchange, 200)
    content_type = exchange.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "text/event-stream":
        raise CheckFailed("Content-Type text/event-stream", repr(content_type), exchange=exchange)
    payloads = [json.loads(e.data) for e in exchange.events if isinstance(e, DataEvent)]
    stream = Stream(exchange, payloads)
    for payload in payloads:
        if not isinstance(payload, dict) or "error" in payload:
            continue
        for choice in payload.get("choices") or []:
            if not isinstance(choice, dict) or not isinstance(choice.get("index"), int):
                continue
            index = choice["index"]
            piece = choice.get("text") if op == "create_completion" else (choice.get("delta") or {}).get("content")
            if isinstance(piece, str) and piece:
                stream.pieces.setdefault(index, []).append(piece)
            if choice.get("finish_reason") is not None:
                stream.finish.setdefault(index, []).append(choice["finish_reason"])
    stream.texts = {i: "".join(p) for i, p in stream.pieces.items()}
    return stream


def ends_with_done(exchange: Exchange) -> bool:
    return bool(exchange.events) and isinstance(exchange.events[-1], DoneEvent)
