"""The kit's judge of Responses streams: what it accepts, what it fails, and the events it must ignore."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from llmos_std.examples import operation_examples

from conformance.checks.responses import judge_stream, named_events
from conformance.verdicts import CheckFailed
from conformance.wire import Exchange


def _exchange(events: list[dict[str, Any]]) -> Exchange:
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    return Exchange("POST", "http://t/v1/responses", {}, b"", status=200, headers=httpx.Headers({"content-type": "text/event-stream"}), body=body.encode())


def _recorded() -> list[dict[str, Any]]:
    stream = operation_examples()["create_response"].stream
    assert stream is not None
    return [dict(e) for e in stream if isinstance(e, dict)]


def test_the_recorded_stream_passes_and_yields_its_final_response() -> None:
    events = _recorded()
    exchange = _exchange(events)
    assert judge_stream(exchange, named_events(exchange))["status"] == "completed"


def test_implementor_events_are_ignored() -> None:
    events = _recorded()
    events.insert(3, {"type": "acme:progress", "sequence_number": 0, "percent": 40})
    for n, event in enumerate(events):
        event["sequence_number"] = n
    exchange = _exchange(events)
    assert judge_stream(exchange, named_events(exchange))["status"] == "completed"


@pytest.mark.parametrize("breakage", ["renumbered", "delta_lost", "no_terminal", "event_line_wrong"])
def test_broken_streams_fail(breakage: str) -> None:
    events = _recorded()
    if breakage == "renumbered":
        events[4]["sequence_number"] = 9
    elif breakage == "delta_lost":
        events = [e for i, e in enumerate(events) if not (e["type"] == "response.output_text.delta" and i == 5)]
        for n, event in enumerate(events):
            event["sequence_number"] = n
    elif breakage == "no_terminal":
        events = events[:-1]
    exchange = _exchange(events)
    if breakage == "event_line_wrong":
        exchange.body = exchange.body.replace(b"event: response.in_progress", b"event: response.progress", 1)
    with pytest.raises(CheckFailed):
        judge_stream(exchange, named_events(exchange))
