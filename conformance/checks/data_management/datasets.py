"""data-management: creating datasets, atomic appends (JSON and JSON Lines), export, delete."""

from __future__ import annotations

import itertools
from typing import Any

import jsonschema
from hypothesis import strategies as st

from llmos_std.operations import LLMOS_BASE

from conformance.checks.data_management.driver import (
    DATASETS,
    append,
    append_raw,
    create,
    export,
    get,
    jsonl,
    listed,
    query_all,
    query_page,
    ref,
    send,
)
from conformance.checks.data_management.shadow import ShadowDataset, first_difference
from conformance.context import Context
from conformance.judging import expect_error, ok_json
from conformance.properties import run_property
from conformance.registry import check
from conformance.strategies import JSON_SCALARS
from conformance.verdicts import CheckFailed, CheckOutcome, Failures

NOT_SCHEMAS: tuple[Any, ...] = ({"type": "no-such-type"}, {"minLength": -1}, "object")
"""A `schema` that is not a JSON Schema: an unknown type, a negative length, and a string."""

RECORD_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["text"],
    "properties": {"text": {"type": "string"}, "n": {"type": "integer"}},
}
_fits = jsonschema.Draft202012Validator(RECORD_SCHEMA)
_valid_records = st.builds(lambda t, n: {"text": t, "n": n}, st.sampled_from(("a", "b c", "\u00e9t\u00e9", "")), st.integers(0, 9))
_invalid_records = st.sampled_from((
    {"text": 5}, {"n": 1}, {"text": "x", "n": "1"}, {"text": "x", "n": 1.5}, 7, "text", [{"text": "x"}], None,
    {"text": "a\x00b"}, {"text": "x", "k\x00": 1}, {"text": "\ud800"},  # U+0000 and a lone surrogate: not storable text
))
batches = st.lists(st.one_of(_valid_records, _valid_records, _invalid_records), min_size=1, max_size=6)
"""Batches for a dataset with :data:`RECORD_SCHEMA`: a third of the records break it (or are not objects)."""


def storable_text(value: object) -> bool:
    """Whether every string and member name is Unicode text without U+0000 and without a lone surrogate (spec 09-data, Appending)."""
    if isinstance(value, str):
        return "\x00" not in value and not any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return all(storable_text(k) and storable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return all(storable_text(v) for v in value)
    return True


def first_invalid(batch: list[Any]) -> int | None:
    return next((i for i, r in enumerate(batch) if not isinstance(r, dict) or not storable_text(r) or not _fits.is_valid(r)), None)


def principal_id(ctx: Context) -> str | None:
    """The calling principal as the target names it, where it answers ``GET /llmos/v1/principal``."""
    exchange = ctx.wire.request("GET", f"{LLMOS_BASE}/principal")
    if exchange.status != 200:
        return None
    return str(ok_json(exchange, "Principal")["id"])


@check("dataset_create")
def dataset_create(ctx: Context) -> CheckOutcome:
    name = ctx.name("create")
    dataset = create(ctx, "create", description="made by the LLMOS conformance kit")
    made = ctx.wire.last
    with Failures() as failures:
        with failures.each():
            if (dataset["name"], dataset["version"], dataset["record_count"]) != (name, 1, 0):
                raise CheckFailed(f"the new dataset {name!r} at version 1 with no records", repr({k: dataset[k] for k in ("name", "version", "record_count")}), exchange=made)
        with failures.each():
            owner = principal_id(ctx)
            if owner is not None and dataset["owner"] != owner:
                raise CheckFailed(f"owner {owner!r}, the calling principal", repr(dataset["owner"]), exchange=made)
        with failures.each():
            again = get(ctx, dataset["id"])
            keys = ("id", "name", "owner", "version", "record_count")
            if {k: again[k] for k in keys} != {k: dataset[k] for k in keys}:
                raise CheckFailed(f"GET answering the dataset as created: {({k: dataset[k] for k in keys})}", repr({k: again[k] for k in keys}), exchange=ctx.wire.last)
        with failures.each():
            names, listing = listed(ctx)
            if names.get(dataset["id"]) != name:
                raise CheckFailed(f"the new dataset {dataset['id']} in the caller's listing", "absent", exchange=listing)
        with failures.each():
            empty = query_all(ctx, dataset["id"], {})
            if empty.rows or empty.version != 1:
                raise CheckFailed("a query of the new dataset reading version 1 with no records", f"version {empty.version}, {len(empty.rows)} records", exchange=empty.last)
        with failures.each():
            expect_error(send(ctx, "POST", DATASETS, {"name": name}), ("already_exists",))
        for schema in NOT_SCHEMAS:
            with failures.each():
                expect_error(send(ctx, "POST", DATASETS, {"name": ctx.name("not-a-schema"), "schema": schema}), ("invalid_value",), param="schema", param_prefix=True)
        with failures.each():
            # Nothing was left behind by the refusals: the name is still free.
            create(ctx, "not-a-schema", schema=RECORD_SCHEMA)
    count = 6 + len(NOT_SCHEMAS) + 1
    return CheckOutcome(examples=count, triggered=count)


def _atomic_property(ctx: Context, suffix: str, send_batch: Any, what: str) -> CheckOutcome:
    """Random batches, a third of their records invalid: a valid batch makes one version, an invalid one changes nothing."""
    dataset = create(ctx, suffix, schema=RECORD_SCHEMA)
    shadow = ShadowDataset(dataset["id"], dataset["name"])

    def prop(batch: list[Any]) -> bool:
        # Each example starts from what the server holds, so that one failure does not make the next ones fail too.
        before = get(ctx, dataset["id"])
        bad = first_invalid(batch)
        exchange = send_batch(dataset["id"], batch)
        if bad is None:
            answer = ok_json(exchange, "AppendRecordsResponse")
            shadow.append(batch)
            want = {"appended": len(batch), "version": before["version"] + 1, "record_count": before["record_count"] + len(batch)}
            if {k: answer[k] for k in want} != want:
                raise CheckFailed(f"the append making version {want['version']}: {want}", repr({k: answer[k] for k in want}), exchange=exchange)
            return False
        expect_error(exchange, ("record_invalid",), param=f"records.{bad}")
        now = get(ctx, dataset["id"])
        if (now["version"], now["record_count"]) != (before["version"], before["record_count"]):
            raise CheckFailed(f"nothing stored and no version made by the refused append (version {before['version']}, {before['record_count']} records)",
                              f"version {now['version']}, {now['record_count']} records", exchange=exchange)
        return True

    outcome = run_property(ctx, batches, prop, examples=ctx.settings.max_examples, what=what)
    exchange, records = export(ctx, dataset["id"])
    diff = first_difference(shadow.records(), records)
    if diff is not None:
        raise CheckFailed("the dataset holding exactly the records of the accepted appends", diff, exchange=exchange)
    return outcome


@check("dataset_append_atomic")
def dataset_append_atomic(ctx: Context) -> CheckOutcome:
    def send_batch(dataset_id: str, batch: list[Any]) -> Any:
        return send(ctx, "POST", f"{DATASETS}/{dataset_id}/records", {"records": batch})

    return _atomic_property(ctx, "append-atomic", send_batch, "batches with an invalid record")


@check("dataset_append_jsonl")
def dataset_append_jsonl(ctx: Context) -> CheckOutcome:
    blanks = itertools.count()

    def send_batch(dataset_id: str, batch: list[Any]) -> Any:
        # Blank lines on every other batch: they are ignored, and never counted in `param`.
        return append_raw(ctx, dataset_id, jsonl(batch, blank_lines=next(blanks) % 2 == 0), "application/jsonl")

    outcome = _atomic_property(ctx, "append-jsonl", send_batch, "JSON Lines batches with an invalid record")
    # A line that is not JSON is an invalid record too, counted among the records, not the lines.
    broken = create(ctx, "jsonl-broken")
    body = b'{"text": "a"}\n\n{"text": \n{"text": "b"}\n'
    expect_error(append_raw(ctx, broken["id"], body, "application/jsonl"), ("record_invalid",), param="records.1")
    left = get(ctx, broken["id"])
    if (left["version"], left["record_count"]) != (1, 0):
        raise CheckFailed("nothing stored by the refused JSON Lines append", f"version {left['version']}, {left['record_count']} records", exchange=ctx.wire.last)
    # The same records as JSON and as JSON Lines make the same dataset.
    records = [{"text": "one", "n": 1}, {"text": "zwei \u2028 drei", "n": 2}, {"text": "\u4e09", "n": 3}]
    a = create(ctx, "jsonl-as-json")
    b = create(ctx, "jsonl-as-lines")
    append(ctx, a["id"], records)
    exchange = append_raw(ctx, b["id"], jsonl(records, blank_lines=True), "application/jsonl")
    answer = ok_json(exchange, "AppendRecordsResponse")
    if answer["appended"] != len(records):
        raise CheckFailed(f"appended: {len(records)} from JSON Lines with blank lines between the records", repr(answer["appended"]), exchange=exchange)
    _, as_json = export(ctx, a["id"])
    seen, as_lines = export(ctx, b["id"])
    diff = first_difference(as_json, as_lines)
    if diff is not None:
        raise CheckFailed("a JSON Lines append storing what the same batch stores as JSON", diff, exchange=seen)
    outcome.examples += 1
    outcome.triggered += 1
    return outcome


_keys = st.text(st.characters(exclude_characters="\x00"), max_size=6)
_json_values = st.recursive(
    JSON_SCALARS | st.floats(allow_nan=False, allow_infinity=False, width=64) | st.sampled_from(("\u2028", "\x01\x1f", "\U0001F600", "\\\"")),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=8,
)
export_batches = st.lists(st.dictionaries(_keys, _json_values, max_size=4), min_size=1, max_size=6).filter(storable_text)
"""Records of every JSON type, nested, with line separators, control characters, astral characters and escapes in strings."""


@check("dataset_export")
def dataset_export(ctx: Context) -> CheckOutcome:
    dataset = create(ctx, "export")
    shadow = ShadowDataset(dataset["id"], dataset["name"])
    exchange, empty = export(ctx, ref(dataset["id"], 1))
    if empty:
        raise CheckFailed("no lines in the export of the empty version 1", f"{len(empty)} records", exchange=exchange)

    def prop(batch: list[dict[str, Any]]) -> bool:
        append(ctx, dataset["id"], batch)
        shadow.append(batch)
        for version in (None, shadow.latest - 1):
            exchange, records = export(ctx, ref(dataset["id"], version))
            diff = first_difference(shadow.records(version), records)
            if diff is not None:
                which = "the latest version" if version is None else f"version {version}"
                raise CheckFailed(f"the export of {which}: every record in index order", diff, exchange=exchange)
        return True

    outcome = run_property(ctx, export_batches, prop, examples=ctx.settings.max_examples, what="appended batches")
    for version in (shadow.latest, max(1, shadow.latest // 2)):
        read = query_all(ctx, ref(dataset["id"], version), {"limit": 5})
        exchange, records = export(ctx, ref(dataset["id"], version))
        if [i for i, _ in read.rows] != list(range(len(read.rows))):
            raise CheckFailed(f"query pages of version {version} in index order", repr([i for i, _ in read.rows][:20]), exchange=read.last)
        diff = first_difference([r for _, r in read.rows], records)
        if diff is not None:
            raise CheckFailed(f"the export of version {version} equal to the union of its query pages", diff, exchange=exchange)
    return outcome


@check("dataset_delete")
def dataset_delete(ctx: Context) -> CheckOutcome:
    dataset = create(ctx, "delete")
    dataset_id = dataset["id"]
    append(ctx, dataset_id, [{"text": "a"}, {"text": "b"}, {"text": "c"}])
    _, page = query_page(ctx, dataset_id, {"limit": 1})
    cursor = page["next_cursor"]
    gone = send(ctx, "DELETE", f"{DATASETS}/{dataset_id}")
    answer = ok_json(gone, "DeletedObject")
    if answer["id"] != dataset_id or answer["deleted"] is not True:
        raise CheckFailed(f"id {dataset_id} and deleted true", repr({k: answer[k] for k in ("id", "deleted")}), exchange=gone)
    path = f"{DATASETS}/{dataset_id}"
    strip = [{"op": "strip", "field": "text"}]
    probes: list[tuple[str, str, Any, bytes | None]] = [
        ("GET", path, None, None),
        ("DELETE", path, None, None),
        ("GET", f"{path}/versions", None, None),
        ("POST", f"{path}/records", {"records": [{"text": "d"}]}, None),
        ("POST", f"{path}/records", None, jsonl([{"text": "d"}])),
        ("POST", f"{path}/query", {}, None),
        ("POST", f"{path}@1/query", {}, None),
        ("GET", f"{path}/export", None, None),
        ("GET", f"{path}@2/export", None, None),
        ("POST", f"{path}/derive", {"pipeline": strip}, None),
        ("POST", f"{path}@2/derive", {"pipeline": strip, "name": ctx.name("delete-derived")}, None),
    ]
    if cursor is not None:
        probes.append(("POST", f"{path}/query", {"limit": 1, "cursor": cursor}, None))
    with Failures() as failures:
        for method, target, body, lines in probes:
            with failures.each():
                exchange = send(ctx, method, target, body, content=lines, content_type="application/jsonl" if lines else None)
                expect_error(exchange, ("dataset_not_found",))
        with failures.each():
            names, listing = listed(ctx)
            if dataset_id in names or ctx.name("delete-derived") in names.values():
                raise CheckFailed(f"the deleted dataset {dataset_id} absent from the listing", "listed", exchange=listing)
    count = len(probes) + 1
    return CheckOutcome(examples=count, triggered=count, notes=[] if cursor is not None else ["the first page held every record, so no cursor was tried after the delete"])
