"""LLMOS-STRM-006 (SHOULD): a dropped stream stops its generation, observed through an unload that drains.

Unloading drains in-flight requests, so an unload right after a client dropped a long stream settles
about as fast as an idle unload when the generation was cancelled, and only after the rest of the
generation when it was not. The margins are wide and a middle result is skipped, never failed.
"""

from __future__ import annotations

import time

from conformance.context import Context
from conformance.judging import ok_json
from conformance.registry import check
from conformance.inflight import start_stream
from conformance.lifecycle_driver import act, discard, ensure, get_version, settle, subject
from conformance.checks.model_management.serving import long_request
from conformance.bodies import PATH_OF, RESPONSE_OF
from conformance.verdicts import CheckFailed, CheckOutcome, Skip

MIN_GENERATION_S = 0.5
CANCEL_TOKENS = 1536
"""A generation long enough (about a second for the kit's tiny model) to tell an unload that drains it."""
PASS_SHARE = 0.5
"""Cancelled: the unload took at most the idle unload time plus this share of a full generation."""
FAIL_SHARE = 0.8
"""Not cancelled: the unload took at least the idle unload time plus this share, twice in a row."""


def _timed_unload(ctx: Context, name: str, version: str) -> float:
    started = time.monotonic()
    settle(ctx, name, version, "unload", "ready", act(ctx, name, version, "unload"))
    return time.monotonic() - started


@check("disconnect_cancels")
def disconnect_cancels(ctx: Context) -> CheckOutcome:
    if "model-management" not in ctx.plan.claimed:
        raise Skip("a cancelled generation is observed through an unload that drains, and the target does not claim model-management")
    subj = subject(ctx, "disconnect", count=1, serving=True)
    if subj.op == "create_embedding":
        raise Skip("the model only embeds; nothing streams")
    version = subj.versions[0]
    model_id = f"{subj.name}@{version}"
    try:
        ensure(ctx, subj.name, version, "ready")
        body = long_request(ctx, subj, model_id, CANCEL_TOKENS)
        # A first generation pays one-off costs; timing one would make the baseline too long.
        ok_json(ctx.wire.request("POST", PATH_OF[subj.op], json_body={**body, "max_tokens": 8}), RESPONSE_OF[subj.op])
        started = time.monotonic()
        whole = ok_json(ctx.wire.request("POST", PATH_OF[subj.op], json_body=body), RESPONSE_OF[subj.op])
        full = time.monotonic() - started
        if [c.get("finish_reason") for c in whole["choices"]] != ["length"]:
            raise Skip("the model stopped before max_tokens, so a long generation could not be set up")
        idle = _timed_unload(ctx, subj.name, version)
        if full < max(MIN_GENERATION_S, 4 * idle):
            raise Skip(f"a full generation takes {full:.2f} s, too close to an idle unload ({idle:.2f} s) to tell a cancelled one apart")
        slow: list[float] = []
        for _attempt in range(2):
            ensure(ctx, subj.name, version, "ready")
            flight = start_stream(ctx, subj.op, body, drop_after_first=True)
            flight.join(ctx.settings.timeout)
            if flight.exchange.status != 200 or not flight.exchange.events:
                raise CheckFailed("a streamed answer to drop", f"status {flight.exchange.status}, {flight.transport_error or 'no event'}", exchange=flight.exchange)
            took = _timed_unload(ctx, subj.name, version)
            if took <= idle + PASS_SHARE * full:
                return CheckOutcome(examples=len(slow) + 1, triggered=1, notes=[f"unload after the drop: {took:.2f} s; idle {idle:.2f} s; full generation {full:.2f} s"])
            if took < idle + FAIL_SHARE * full:
                raise Skip(f"inconclusive: the unload after the drop took {took:.2f} s (idle {idle:.2f} s, full generation {full:.2f} s)")
            slow.append(took)
        state = get_version(ctx, subj.name, version)["state"]
        raise CheckFailed(
            f"the generation stopping when the client disconnects (an unload right after the drop settling in about {idle:.2f} s)",
            f"the unloads after two drops took {', '.join(f'{t:.2f}' for t in slow)} s, as long as the rest of a full generation ({full:.2f} s); version now {state}",
        )
    finally:
        if subj.own:
            discard(ctx, subj.name)
