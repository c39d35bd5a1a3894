"""LLMOS-INF-013: one request more than ``max_concurrent`` is queued or refused with 503 and Retry-After.

The kit sends ``max_concurrent + 1`` requests at once, each long enough to overlap the others, and
judges every answer: served (valid 200) or ``503 not_ready`` with a ``Retry-After`` header. Whether the
overflow really happened is read off the client side (more requests outstanding at one instant than
the limit); when it did not, the check is skipped, so timing can never fail a server.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from conformance.context import Context
from conformance.judging import expect_error, ok_json
from conformance.registry import check
from conformance.bodies import CAPABILITY_OF, minimal_body, PATH_OF, RESPONSE_OF
from conformance.traffic import available_ops
from conformance.verdicts import CheckFailed, CheckOutcome, Skip
from conformance.wire import Exchange

MAX_SENT = 257
"""The kit sends at most this many requests at once; a larger max_concurrent is not exercised."""
OVERLAP_TOKENS = 32
"""Completion length that keeps every request of the burst busy while the others arrive."""


@dataclass
class _Timed:
    exchange: Exchange
    sent_at: float = 0.0
    done_at: float = 0.0
    transport_error: str | None = None


def _send(ctx: Context, exchange: Exchange, timed: _Timed, gate: threading.Barrier) -> None:
    try:
        with httpx.Client(timeout=ctx.settings.timeout) as client:
            gate.wait(timeout=30)
            timed.sent_at = time.monotonic()
            response = client.request(exchange.method, exchange.url, headers=exchange.request_headers, content=exchange.request_body)
            exchange.status, exchange.headers, exchange.body = response.status_code, response.headers, response.content
    except (httpx.HTTPError, threading.BrokenBarrierError) as exc:
        timed.transport_error = f"{type(exc).__name__}: {exc}"
    finally:
        timed.done_at = time.monotonic()


def _most_outstanding(burst: list[_Timed]) -> int:
    """The largest number of requests sent and not yet answered at one instant."""
    edges = sorted([(t.sent_at, 1) for t in burst] + [(t.done_at, -1) for t in burst], key=lambda e: (e[0], e[1]))
    outstanding = peak = 0
    for _, step in edges:
        outstanding += step
        peak = max(peak, outstanding)
    return peak


def _body(ctx: Context, op: str) -> dict[str, Any]:
    model = ctx.model(CAPABILITY_OF[op])
    if op == "create_embedding":
        return minimal_body(op, model["id"], "hello " * 64)
    budget = OVERLAP_TOKENS
    for bound in (ctx.limit("max_tokens"), int(model.get("context_length") or 0) - 64):
        if bound is not None and bound > 0:
            budget = min(budget, bound)
    return minimal_body(op, model["id"], "Once upon a time", budget)


def _judge(exchange: Exchange, op: str) -> None:
    if exchange.status == 503:
        expect_error(exchange, ("not_ready",))
        value = exchange.headers.get("retry-after", "")
        if not value.strip().isdigit():
            raise CheckFailed("503 not_ready with a Retry-After header (seconds)", f"Retry-After {value!r}", exchange=exchange)
        return
    if exchange.status != 200:
        raise CheckFailed(
            "the request served (200) or refused with 503 not_ready and Retry-After",
            f"{exchange.status}: {exchange.body[:300]!r}", exchange=exchange,
        )
    ok_json(exchange, RESPONSE_OF[op])


@check("concurrency_overflow_handled")
def concurrency_overflow_handled(ctx: Context) -> CheckOutcome:
    limit = ctx.limit("max_concurrent")
    if limit is None:
        raise Skip("the target declares no max_concurrent")
    if limit + 1 > MAX_SENT:
        raise Skip(f"max_concurrent is {limit}; the kit sends at most {MAX_SENT} requests at once")
    ops = available_ops(ctx, generation_only=True) or available_ops(ctx)
    if not ops:
        raise Skip("no claimed inference or embeddings operation with a model to send it to")
    op = ops[0]
    content = json.dumps(_body(ctx, op)).encode()
    headers = ctx.wire.headers_for("api", "application/json")
    burst = [_Timed(Exchange("POST", ctx.wire.url(PATH_OF[op]), headers, content)) for _ in range(limit + 1)]
    gate = threading.Barrier(len(burst))
    threads = [threading.Thread(target=_send, args=(ctx, t.exchange, t, gate), daemon=True) for t in burst]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(ctx.settings.timeout + 30)
    for timed in burst:
        if timed.transport_error is not None:
            raise CheckFailed("an answer to every request of the burst", f"no answer: {timed.transport_error}", exchange=timed.exchange)
        _judge(timed.exchange, op)
    peak = _most_outstanding(burst)
    if peak <= limit:
        raise Skip(f"the burst never had more than {peak} requests outstanding (max_concurrent {limit}); answers came too fast to overflow")
    served = sum(t.exchange.status == 200 for t in burst)
    return CheckOutcome(examples=len(burst), triggered=1, notes=[f"{len(burst)} at once, {peak} outstanding at the peak, {served} served, {len(burst) - served} refused with 503"])
