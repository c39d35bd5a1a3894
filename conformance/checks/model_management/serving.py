"""model-management on a model the kit may act on: 202-and-settle, serving switches, rollback, failed loads,
draining and not-loaded answers. Each check provisions its own model and removes it when done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from llmos_std.operations import LLMOS_BASE

from conformance.context import Context
from conformance.judging import expect_error, ok_json
from conformance.registry import check
from conformance.inflight import start_stream
from conformance.lifecycle_driver import (
    Subject,
    act,
    discard,
    ensure,
    expect_not_loaded,
    get_model,
    perform,
    rollback,
    served_digest,
    settle,
    subject,
)
from conformance.bodies import minimal_body
from conformance.verdicts import CheckFailed, CheckOutcome, Skip

DRAIN_TOKENS = 512
"""Long enough that a tiny model is still generating when the unload arrives; capped by the model's limits."""


def _owned(ctx: Context, subj: Subject, body: Callable[[], CheckOutcome]) -> CheckOutcome:
    """Run a check's scenario, then remove the kit's model at once (the run-end cleanup is the safety net)."""
    try:
        return body()
    finally:
        if subj.own:
            discard(ctx, subj.name)


def _activate(ctx: Context, subj: Subject, version: str) -> dict[str, Any]:
    settled = perform(ctx, subj.name, version, "activate").resource
    if settled["state"] != "ready":
        raise Skip(f"{subj.name}@{version} does not load on the target ({settled.get('error')})")
    return settled


@check("lifecycle_202_and_settles")
def lifecycle_202_and_settles(ctx: Context) -> CheckOutcome:
    subj = subject(ctx, "settle", count=1, failing=True, failing_optional=True)

    def scenario() -> CheckOutcome:
        count = 0
        for version in [*subj.versions, *([subj.failing] if subj.failing else [])]:
            ensure(ctx, subj.name, version, "installed")
            loaded = perform(ctx, subj.name, version, "load").resource
            count += 1
            if loaded["state"] == "ready":
                perform(ctx, subj.name, version, "unload")
                count += 1
            activated = perform(ctx, subj.name, version, "activate").resource
            count += 1
            if activated["state"] == "ready" and subj.own:
                perform(ctx, subj.name, version, "unload")
                count += 1
        return CheckOutcome(examples=count, triggered=count)

    return _owned(ctx, subj, scenario)


@check("activate_switches_serving")
def activate_switches_serving(ctx: Context) -> CheckOutcome:
    subj = subject(ctx, "activate", count=2, serving=True)

    def scenario() -> CheckOutcome:
        first, second = subj.versions[:2]
        switches = 0
        for version in (first, second, first):
            _activate(ctx, subj, version)
            seen = served_digest(ctx, subj, subj.name)
            if seen != subj.digests[version]:
                raise CheckFailed(f"{subj.name} served by the activated {version} ({subj.digests[version]})", f"LLMOS-Model-Digest {seen}", exchange=ctx.wire.last)
            switches += 1
        return CheckOutcome(examples=switches, triggered=switches)

    return _owned(ctx, subj, scenario)


@check("rollback_by_history")
def rollback_by_history(ctx: Context) -> CheckOutcome:
    """With four versions activated as 2, 4, 3, 1 the previous one (3) is neither the highest other (4),
    the next lower or higher (none, 2), the first activated (2) nor the newest installed (4)."""
    subj = subject(ctx, "rollback", count=4 if "model-packages" in ctx.plan.claimed else 2)

    def refused(expected_active: str | None) -> None:
        before = get_model(ctx, subj.name)
        expect_error(ctx.wire.request("POST", f"{LLMOS_BASE}/models/{subj.name}/rollback", auth="admin"), ("no_previous_version",))
        after = get_model(ctx, subj.name)
        if (after["active_version"], after["history"]) != (before["active_version"], before["history"]) or after["active_version"] != expected_active:
            raise CheckFailed("a refused rollback changing nothing", f"active {before['active_version']} -> {after['active_version']}", exchange=ctx.wire.last)

    def scenario() -> CheckOutcome:
        examples = 0
        if subj.own:
            v1, v2, v3, v4 = subj.versions
            refused(None)
            _activate(ctx, subj, v2)
            refused(v2)
            examples += 2
            order, expected = [v4, v3, v1], v3
        else:
            a, b = subj.versions
            order, expected = [a, b], a
        for version in order:
            _activate(ctx, subj, version)
        current = order[-1]
        answer = rollback(ctx, subj.name)
        if answer["version"] != expected:
            raise CheckFailed(f"rollback from {current} re-activating {expected}, active before it by history", f"it answered with {answer['version']}", exchange=ctx.wire.last)
        before = "ready" if answer["state"] == "ready" else "installed"
        settled = settle(ctx, subj.name, expected, "activate", before, answer).resource
        model = get_model(ctx, subj.name)
        if settled["state"] != "ready" or model["active_version"] != expected or model["history"][-1]["version"] != expected:
            raise CheckFailed(f"{expected} active and last in the history after the rollback", f"active {model['active_version']}, history {[h['version'] for h in model['history']]}", exchange=ctx.wire.last)
        return CheckOutcome(examples=examples + 1, triggered=examples + 1)

    return _owned(ctx, subj, scenario)


@check("failed_load_keeps_active")
def failed_load_keeps_active(ctx: Context) -> CheckOutcome:
    subj = subject(ctx, "failedload", count=1, failing=True, serving=True)

    def scenario() -> CheckOutcome:
        good, bad = subj.versions[0], str(subj.failing)
        _activate(ctx, subj, good)
        for action in ("load", "activate"):
            resource = perform(ctx, subj.name, bad, action).resource
            if resource["state"] != "failed" or not resource.get("error"):
                raise CheckFailed(f"{action} of a version whose config does not fit its weights settling in 'failed' with an error",
                                  f"state {resource['state']!r}, error {resource.get('error')!r}", exchange=ctx.wire.last)
            model = get_model(ctx, subj.name)
            states = {v["version"]: (v["state"], v["active"]) for v in model["versions"]}
            if model["active_version"] != good or states.get(good) != ("ready", True):
                raise CheckFailed(f"{good} still active and ready after the failed {action} of {bad}", f"active {model['active_version']}, {good} {states.get(good)}", exchange=ctx.wire.last)
            seen = served_digest(ctx, subj, subj.name)
            if seen != subj.digests[good]:
                raise CheckFailed(f"{subj.name} still served by {good} ({subj.digests[good]})", f"LLMOS-Model-Digest {seen}", exchange=ctx.wire.last)
        return CheckOutcome(examples=2, triggered=2)

    return _owned(ctx, subj, scenario)


def long_request(ctx: Context, subj: Subject, model_id: str, wanted: int = DRAIN_TOKENS) -> dict[str, Any]:
    """A greedy request long enough to be in flight for a while: max_tokens near the model's limits."""
    limit = ctx.limit("max_tokens") or wanted
    listed = next((m for m in ctx.plan.model_list if m.get("id") == subj.name), {})
    context = listed.get("context_length") if isinstance(listed.get("context_length"), int) else None
    if subj.own:
        from conformance.package import CONTEXT

        context = CONTEXT
    tokens = min(wanted, limit, (context or wanted + 64) - 64)
    return {**minimal_body(subj.op, model_id, "Once upon a time", tokens), "temperature": 0, "seed": ctx.settings.seed}


@check("unload_drains")
def unload_drains(ctx: Context) -> CheckOutcome:
    subj = subject(ctx, "drain", count=1, serving=True)
    if subj.op == "create_embedding":
        raise Skip("draining is observed on a streamed generation; the model only embeds")

    def scenario() -> CheckOutcome:
        version = subj.versions[0]
        ensure(ctx, subj.name, version, "ready")
        model_id = f"{subj.name}@{version}"
        body = long_request(ctx, subj, model_id)
        flight = start_stream(ctx, subj.op, body)
        flight.started.wait(ctx.settings.timeout)
        if flight.finished.is_set():
            flight.join(1)
            if flight.exchange.status != 200 or flight.transport_error:
                raise CheckFailed("a 200 stream to keep in flight", f"status {flight.exchange.status}, {flight.transport_error or flight.exchange.body[:200]!r}", exchange=flight.exchange)
            raise Skip(f"the stream ended before the unload could be sent ({flight.exchange.status}, {flight.transport_error or 'complete'})")
        first = act(ctx, subj.name, version, "unload")
        unload_answered = time.monotonic()
        flight.join(ctx.settings.timeout)
        exchange = flight.exchange
        if flight.finished_at < unload_answered:
            raise Skip("the stream finished before the unload was answered, so nothing was in flight")
        if flight.transport_error or exchange.status != 200 or exchange.stream_error or not flight.done:
            raise CheckFailed("the in-flight stream completing normally while its version unloads",
                              f"status {exchange.status}, {flight.transport_error or exchange.stream_error or 'no [DONE]'}; ended with {exchange.body[-160:]!r}", exchange=exchange)
        payloads = flight.payloads()
        errors = [p for p in payloads if isinstance(p, dict) and "error" in p]
        reasons = [c.get("finish_reason") for p in payloads if isinstance(p, dict) for c in p.get("choices") or [] if c.get("finish_reason")]
        if errors or reasons != ["length"]:
            raise CheckFailed(f"the in-flight stream running to its max_tokens ({body['max_tokens']}) while its version unloads",
                              f"error events {errors[:1]}, finish reasons {reasons}", exchange=exchange)
        settle(ctx, subj.name, version, "unload", "ready", first)
        return CheckOutcome(examples=1, triggered=1)

    return _owned(ctx, subj, scenario)


@check("not_loaded_409")
def not_loaded_409(ctx: Context) -> CheckOutcome:
    subj = subject(ctx, "notloaded", count=2, serving=True)

    def scenario() -> CheckOutcome:
        count = 0
        first, second = subj.versions[:2]
        if subj.own:
            # Installed, never loaded: by version and by digest.
            for model_id in (f"{subj.name}@{first}", f"{subj.name}@{subj.digests[first]}"):
                expect_not_loaded(ctx, subj, model_id)
                count += 1
            _activate(ctx, subj, first)
            perform(ctx, subj.name, first, "unload")
            expect_not_loaded(ctx, subj, subj.name)  # the active version, unloaded
            count += 1
        model = get_model(ctx, subj.name)
        idle = [v["version"] for v in model["versions"] if v["state"] in ("installed", "failed") and v["version"] in (first, second)]
        if not idle:
            inactive = next((v for v in (first, second) if v != model["active_version"]), second)
            perform(ctx, subj.name, inactive, "unload")
            idle = [inactive]
        expect_not_loaded(ctx, subj, f"{subj.name}@{idle[0]}")
        count += 1
        ok_json(ctx.wire.request("GET", f"{LLMOS_BASE}/models/{subj.name}", auth="admin"), "ManagedModel")
        return CheckOutcome(examples=count, triggered=count)

    return _owned(ctx, subj, scenario)
