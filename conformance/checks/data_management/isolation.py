"""data-management: a dataset, its versions and its operations exist only for the principal that owns them.

The kit mints keys for two principals of its own with ``--admin-key`` (``prn_llmos_conformance_<run>_data_a``
and ``_data_b``); alice's dataset is then probed through every operation with bob's key.
"""

from __future__ import annotations

from typing import Any

from llmos_std.profiles import PROFILES, ProfileName, closure

from conformance.checks.data_management.driver import (
    DATASETS,
    OPERATIONS,
    append,
    create,
    derive,
    export,
    get,
    jsonl,
    listed,
    send,
    settle,
)
from conformance.checks.data_management.shadow import first_difference
from conformance.checks.security_standard import mint
from conformance.context import Context
from conformance.judging import expect_error
from conformance.registry import check
from conformance.verdicts import CheckFailed, CheckOutcome, Failures, Skip
from conformance.wire import Exchange

SCOPES = ["data:read", "data:write"]


def _target_claims(ctx: Context) -> tuple[ProfileName, ...]:
    """What the target claims, whatever profiles this run narrows to: minting keys needs only that the target offers it."""
    listed = (ctx.plan.discovery or {}).get("profiles") or []
    return (*closure([p for p in PROFILES if p in listed]), *ctx.plan.claimed)


def _principal(ctx: Context, suffix: str) -> str:
    return f"prn_llmos_conformance_{ctx.run_id}_data_{suffix}"


@check("dataset_owner_isolation")
def dataset_owner_isolation(ctx: Context) -> CheckOutcome:
    if not ctx.wire.admin_key:
        raise Skip("needs --admin-key (a key with the admin scope) to mint keys for two principals of its own")
    if "security-standard" not in _target_claims(ctx):
        raise Skip("the target does not claim security-standard, so the kit cannot mint keys for a second principal")
    if ctx.wire.request("GET", "/v1/models", auth=None).status == 200:
        raise Skip("the target answers without a key: every caller is the same principal")
    alice_key, _ = mint(ctx, "data-alice", SCOPES, principal=_principal(ctx, "a"))
    bob_key, _ = mint(ctx, "data-bob", SCOPES, principal=_principal(ctx, "b"))
    alice, bob = alice_key.bearer(), bob_key.bearer()
    canary = f"llmos-conformance-{ctx.run_id}-canary-of-alice"
    dataset = create(ctx, "isolated", caller=alice, description=canary)
    dataset_id = dataset["id"]
    append(ctx, dataset_id, [{"text": f" {canary} "}], caller=alice)
    exchange, operation = derive(ctx, dataset_id, [{"op": "strip", "field": "text"}], caller=alice)
    final, last = settle(ctx, operation, exchange, caller=alice)
    if final["status"] != "succeeded":
        raise CheckFailed("alice's derive succeeding", repr(final.get("error")), exchange=last)
    path = f"{DATASETS}/{dataset_id}"
    strip = [{"op": "strip", "field": "text"}]
    probes: list[tuple[str, str, Any, bytes | None, str]] = [
        ("GET", path, None, None, "dataset_not_found"),
        ("GET", f"{path}/versions", None, None, "dataset_not_found"),
        ("POST", f"{path}/records", {"records": [{"text": "from bob"}]}, None, "dataset_not_found"),
        ("POST", f"{path}/records", None, jsonl([{"text": "from bob"}]), "dataset_not_found"),
        ("POST", f"{path}/query", {}, None, "dataset_not_found"),
        ("POST", f"{path}@2/query", {"limit": 1}, None, "dataset_not_found"),
        ("GET", f"{path}/export", None, None, "dataset_not_found"),
        ("GET", f"{path}@3/export", None, None, "dataset_not_found"),
        ("POST", f"{path}/derive", {"pipeline": strip}, None, "dataset_not_found"),
        ("POST", f"{path}@2/derive", {"pipeline": strip, "name": ctx.name("isolated-by-bob")}, None, "dataset_not_found"),
        ("DELETE", path, None, None, "dataset_not_found"),
        ("GET", f"{OPERATIONS}/{operation['id']}", None, None, "operation_not_found"),
    ]
    bobs: list[Exchange] = []
    with Failures() as failures:
        for method, target, body, lines, code in probes:
            with failures.each():
                answer = send(ctx, method, target, body, caller=bob, content=lines, content_type="application/jsonl" if lines else None)
                bobs.append(answer)
                expect_error(answer, (code,))
        with failures.each():
            names, listing = listed(ctx, caller=bob)
            bobs.append(listing)
            if dataset_id in names:
                raise CheckFailed(f"alice's dataset {dataset_id} absent from bob's listing", "listed", exchange=listing)
        with failures.each():
            # Names are unique per owner: a 409 here would tell bob that alice has one by this name.
            create(ctx, "isolated", caller=bob)
            if ctx.wire.last is not None:
                bobs.append(ctx.wire.last)
        with failures.each():
            still = get(ctx, dataset_id, caller=alice)
            seen, records = export(ctx, dataset_id, caller=alice)
            diff = first_difference([{"text": canary}], records)
            if still["version"] != 3 or diff is not None:
                raise CheckFailed("alice's dataset untouched by bob's attempts (version 3, her one record)", f"version {still['version']}; {diff or 'same records'}", exchange=seen)
        for answer in bobs:
            with failures.each():
                if canary in answer.body.decode("utf-8", errors="replace"):
                    raise CheckFailed("nothing of alice's dataset in any response to bob", "her canary appears", exchange=answer)
    count = len(probes) + 3
    return CheckOutcome(examples=count, triggered=count)
