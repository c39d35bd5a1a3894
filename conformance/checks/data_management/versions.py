"""data-management: immutable numbered versions, ``ds@n`` references, lineage, and derive as an operation."""

from __future__ import annotations

import time
from typing import Any

from conformance.checks.data_management.driver import (
    OPERATIONS,
    append,
    create,
    derive,
    derived,
    export,
    get,
    listed,
    query_all,
    ref,
    send,
    settle,
    version_header,
    versions,
)
from conformance.checks.data_management.shadow import ShadowStore, first_difference, normalized_pipeline
from conformance.context import Context
from conformance.judging import expect_error, ok_json
from conformance.registry import check
from conformance.verdicts import CheckFailed, CheckOutcome, Failures
from conformance.wire import Exchange

DAY = 86_400
FIRST = [{"text": " Alpha ", "n": 1}, {"text": "BETA", "n": 2}]
SECOND = [{"text": "Gamma\u3000", "n": 3}]
THIRD = [{"text": "delta", "n": 4}]
LOWERCASE = [{"op": "lowercase", "field": "text"}]
STRIP = [{"op": "strip", "field": "text"}]


def _expect_version(exchange: Exchange | None, got: dict[str, Any], dataset_id: str, version: int, what: str) -> None:
    if (got.get("dataset_id", dataset_id), got["version"]) != (dataset_id, version):
        raise CheckFailed(f"{what} making version {version} of {dataset_id}", repr(got), exchange=exchange)


def _reads(ctx: Context, store: ShadowStore, dataset_id: str) -> None:
    """Every version of the dataset, by query and by export, holds what it held when it was made."""
    shadow = store.datasets[dataset_id]
    with Failures() as failures:
        for version in range(1, shadow.latest + 1):
            with failures.each():
                read = query_all(ctx, ref(dataset_id, version), {"limit": 2})
                if read.version != version:
                    raise CheckFailed(f"a query of {ref(dataset_id, version)} reading version {version}", f"version {read.version}", exchange=read.last)
                diff = first_difference(shadow.records(version), [r for _, r in read.rows])
                if diff is not None:
                    raise CheckFailed(f"{ref(dataset_id, version)} unchanged since it was made", diff, exchange=read.last)
            with failures.each():
                exchange, records = export(ctx, ref(dataset_id, version))
                version_header(exchange, version)
                diff = first_difference(shadow.records(version), records)
                if diff is not None:
                    raise CheckFailed(f"the export of {ref(dataset_id, version)} unchanged since it was made", diff, exchange=exchange)


@check("dataset_versions")
def dataset_versions(ctx: Context) -> CheckOutcome:
    store = ShadowStore()
    made = create(ctx, "versions")
    dataset_id = made["id"]
    shadow = store.create(dataset_id, made["name"])
    for batch in (FIRST, SECOND):
        answer = append(ctx, dataset_id, batch)
        _expect_version(ctx.wire.last, answer, dataset_id, shadow.latest + 1, "the append")
        shadow.append(batch)
    result, exchange = derived(ctx, ref(dataset_id, 2), LOWERCASE)  # reads version 2, not the latest
    store.derive(dataset_id, 2, LOWERCASE)
    _expect_version(exchange, result, dataset_id, shadow.latest, f"a derive of {ref(dataset_id, 2)} without a name")
    answer = append(ctx, dataset_id, THIRD)  # onto the derived version
    _expect_version(ctx.wire.last, answer, dataset_id, shadow.latest + 1, "the append after a derive")
    shadow.append(THIRD)
    new, exchange = derived(ctx, ref(dataset_id, 3), STRIP, name=ctx.name("versions-derived"))
    if new["dataset_id"] == dataset_id or new["version"] != 1:
        raise CheckFailed("a derive with a name making a new dataset at version 1", repr(new), exchange=exchange)
    store.derive(dataset_id, 3, STRIP, into=(new["dataset_id"], ctx.name("versions-derived")))
    latest = get(ctx, dataset_id)
    if (latest["version"], latest["record_count"]) != (shadow.latest, len(shadow.records())):
        raise CheckFailed(f"version {shadow.latest} with {len(shadow.records())} records after two appends, a derive and an append",
                          f"version {latest['version']}, {latest['record_count']} records", exchange=ctx.wire.last)
    _reads(ctx, store, dataset_id)
    _reads(ctx, store, new["dataset_id"])
    absent = [shadow.latest + 1, 10**9]
    with Failures() as failures:
        for version in absent:
            missing = ref(dataset_id, version)
            for method, path, body in (("POST", "query", {}), ("GET", "export", None), ("POST", "derive", {"pipeline": STRIP})):
                with failures.each():
                    expect_error(send(ctx, method, f"/llmos/v1/datasets/{missing}/{path}", body), ("dataset_version_not_found",))
        with failures.each():
            after = get(ctx, dataset_id)
            if after["version"] != shadow.latest:
                raise CheckFailed(f"the refused derives leaving the dataset at version {shadow.latest}", f"version {after['version']}", exchange=ctx.wire.last)
    count = shadow.latest + 1 + 3 * len(absent)
    return CheckOutcome(examples=count, triggered=count)


def _lineage(ctx: Context, dataset_id: str, expected: list[dict[str, Any]]) -> None:
    listed_versions, exchange = versions(ctx, dataset_id)
    numbers = [v["version"] for v in listed_versions]
    if numbers != list(range(1, len(expected) + 1)):
        raise CheckFailed(f"versions 1..{len(expected)} of {dataset_id}, oldest first", repr(numbers), exchange=exchange)
    now = time.time()
    previous = 0
    for want, seen in zip(expected, listed_versions):
        try:
            pipeline = None if seen["pipeline"] is None else normalized_pipeline(seen["pipeline"])
        except ValueError:
            pipeline = seen["pipeline"]
        got = {
            "dataset_id": seen["dataset_id"], "operation": seen["operation"], "parent": seen["parent"], "pipeline": pipeline,
            "records_in": seen["records_in"], "records_out": seen["records_out"], "record_count": seen["record_count"],
        }
        want = {**want, "pipeline": None if want["pipeline"] is None else normalized_pipeline(want["pipeline"])}
        if got != want:
            differing = sorted(k for k in want if want[k] != got[k])
            raise CheckFailed(f"version {seen['version']} of {dataset_id} with lineage {({k: want[k] for k in differing})}",
                              repr({k: got[k] for k in differing}), exchange=exchange)
        created = seen["created"]
        if created < previous or abs(created - now) > DAY:
            raise CheckFailed("creation times in Unix seconds near now, never earlier than the version before", f"version {seen['version']}: {created}", exchange=exchange)
        previous = created


@check("dataset_lineage")
def dataset_lineage(ctx: Context) -> CheckOutcome:
    made = create(ctx, "lineage")
    dataset_id = made["id"]
    store = ShadowStore()
    shadow = store.create(dataset_id, made["name"])
    pipeline = [{"op": "strip", "field": "text"}, {"op": "dedupe", "field": "text"}]
    records = [{"text": " a "}, {"text": "a"}]
    append(ctx, dataset_id, records)
    shadow.append(records)
    append(ctx, dataset_id, [{"text": "b"}])
    shadow.append([{"text": "b"}])
    derived(ctx, dataset_id, pipeline)
    store.derive(dataset_id, 3, pipeline)
    name = ctx.name("lineage-derived")
    new, _ = derived(ctx, ref(dataset_id, 2), LOWERCASE, name=name)
    store.derive(dataset_id, 2, LOWERCASE, into=(new["dataset_id"], name))

    def entry(operation: str, parent: int | None, steps: Any, records_in: int, out: int, of: str = dataset_id) -> dict[str, Any]:
        return {"dataset_id": of, "operation": operation, "parent": None if parent is None else {"dataset_id": dataset_id, "version": parent},
                "pipeline": steps, "records_in": records_in, "records_out": out, "record_count": out}

    out = len(shadow.records(4))
    with Failures() as failures:
        with failures.each():
            _lineage(ctx, dataset_id, [
                entry("create", None, None, 0, 0), entry("append", 1, None, 2, 2), entry("append", 2, None, 1, 3), entry("derive", 3, pipeline, 3, out),
            ])
        with failures.each():
            _lineage(ctx, new["dataset_id"], [entry("derive", 2, LOWERCASE, 2, 2, of=new["dataset_id"])])
    return CheckOutcome(examples=5, triggered=5)


MISSING_FIELD = [{"op": "template", "into": "t", "template": "{a}!"}]
"""Fails on the record without ``a``: a derive that must be accepted, run, and fail."""


@check("dataset_derive_operation")
def dataset_derive_operation(ctx: Context) -> CheckOutcome:
    made = create(ctx, "operation")
    dataset_id = made["id"]
    records = [{"a": "X"}, {"a": "Y"}, {"b": "Z"}]
    append(ctx, dataset_id, records)
    with Failures() as failures:
        with failures.each():
            exchange, operation = derive(ctx, dataset_id, [{"op": "lowercase", "field": "a"}])
            final, last = settle(ctx, operation, exchange)
            if final["status"] != "succeeded" or final["result"] != {"dataset_id": dataset_id, "version": 3}:
                raise CheckFailed(f"the derive succeeding with result {{dataset_id: {dataset_id}, version: 3}}", repr({k: final.get(k) for k in ("status", "result", "error")}), exchange=last)
            if final["progress"] != {"records_done": 3, "records_total": 3}:
                raise CheckFailed("progress counting the 3 source records, all read once succeeded", repr(final["progress"]), exchange=last)
            again = send(ctx, "GET", f"{OPERATIONS}/{operation['id']}")
            polled = ok_json(again, "DataOperation")
            if (polled["status"], polled["result"]) != ("succeeded", final["result"]):
                raise CheckFailed("a succeeded operation staying succeeded with its result", repr({k: polled.get(k) for k in ("status", "result")}), exchange=again)
        for name in (None, ctx.name("operation-failed")):
            with failures.each():
                exchange, operation = derive(ctx, dataset_id, MISSING_FIELD, name=name)
                final, last = settle(ctx, operation, exchange)
                error = final.get("error") or {}
                if final["status"] != "failed" or error.get("code") != "pipeline_failed":
                    raise CheckFailed("the derive failing with error pipeline_failed (a template field the third record lacks)",
                                      repr({k: final.get(k) for k in ("status", "result", "error")}), exchange=last)
                after = get(ctx, dataset_id)
                listed_versions, listing = versions(ctx, dataset_id)
                if after["version"] != 3 or len(listed_versions) != 3:
                    raise CheckFailed("no version left behind by the failed derive (still version 3)", f"version {after['version']}, {len(listed_versions)} versions listed", exchange=listing)
                if name is not None:
                    names, shown = listed(ctx)
                    if name in names.values():
                        raise CheckFailed(f"no dataset {name!r} left behind by the failed derive", "listed", exchange=shown)
                    create(ctx, "operation-failed")  # and its name still free
        with failures.each():
            # A derive into a dataset with a schema fails on the first output record that breaks it.
            typed = create(ctx, "operation-schema", schema={"type": "object", "properties": {"n": {"type": "integer"}}})
            append(ctx, typed["id"], [{"n": 1}, {"n": 2}])
            exchange, operation = derive(ctx, typed["id"], [{"op": "template", "into": "n", "template": "{n}"}])
            final, last = settle(ctx, operation, exchange)
            if final["status"] != "failed" or (final.get("error") or {}).get("code") != "pipeline_failed":
                raise CheckFailed("the derive failing with pipeline_failed (its output breaks the dataset's schema: n becomes a string)",
                                  repr({k: final.get(k) for k in ("status", "result", "error")}), exchange=last)
            if get(ctx, typed["id"])["version"] != 2:
                raise CheckFailed("no version left behind by the failed derive (still version 2)", f"version {get(ctx, typed['id'])['version']}", exchange=ctx.wire.last)
        with failures.each():
            _, records_now = export(ctx, dataset_id)
            diff = first_difference([{"a": "x"}, {"a": "y"}, {"b": "Z"}], records_now)
            if diff is not None:
                raise CheckFailed("the dataset holding the successful derive's output and nothing of the failed ones", diff, exchange=ctx.wire.last)
        with failures.each():
            expect_error(send(ctx, "GET", f"{OPERATIONS}/op_llmosconformance{ctx.run_id}absent"), ("operation_not_found",))
    return CheckOutcome(examples=6, triggered=6)
