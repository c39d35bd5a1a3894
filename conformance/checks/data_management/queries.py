"""data-management queries: exact semantics against the in-kit evaluator, cursor paging (also while appending), bounds."""

from __future__ import annotations

from typing import Any

from conformance.checks.data_management.driver import DATASETS, append, create, query_all, query_page, ref, send
from conformance.checks.data_management.records import queries, query_records
from conformance.checks.data_management.shadow import ShadowDataset, expected_query, first_difference
from conformance.context import Context
from conformance.judging import expect_error
from conformance.properties import run_property
from conformance.registry import check
from conformance.verdicts import CheckFailed, CheckOutcome, Failures

SEMANTICS_EXAMPLES_PER_SETTING = 3
"""Query examples per ``max_examples``: each is a few cheap pages, and filters need many draws to reach the edges."""


def _judge(records: list[dict[str, Any]], body: dict[str, Any], rows: list[tuple[int, dict[str, Any]]], exchange: Any) -> None:
    """The rows of a complete query against the normative semantics (``llmos_std.query``)."""
    expected = expected_query(records, body)
    want = [i for i, _ in expected]
    seen = [i for i, _ in rows]
    if want != seen:
        if sorted(want) == sorted(seen):
            raise CheckFailed(f"the matching records ordered by the sort keys, ties in index order: {want}", repr(seen), exchange=exchange)
        missing = sorted(set(want) - set(seen))
        extra = sorted(set(seen) - set(want))
        raise CheckFailed(f"exactly the records the filter matches (indices {want})",
                          f"{seen}" + (f"; missing {missing} (e.g. {records[missing[0]]})" if missing else "") + (f"; not matching {extra} (e.g. {records[extra[0]]})" if extra else ""),
                          exchange=exchange)
    diff = first_difference([r for _, r in expected], [r for _, r in rows])
    if diff is not None:
        raise CheckFailed(f"each record projected to fields {body.get('fields')}", diff, exchange=exchange)


@check("dataset_query_semantics")
def dataset_query_semantics(ctx: Context) -> CheckOutcome:
    records = query_records(ctx.settings.seed)
    dataset = create(ctx, "query-semantics")
    append(ctx, dataset["id"], records)

    def prop(body: dict[str, Any]) -> bool:
        read = query_all(ctx, dataset["id"], body)
        try:
            _judge(records, body, read.rows, read.last)
        except CheckFailed as exc:
            exc.example = {"query": body, "records": f"{len(records)} records (the kit's query_records(seed={ctx.settings.seed}))"}
            raise
        matched = len(expected_query(records, body))
        return 0 < matched < len(records) or bool(body.get("sort")) or "fields" in body

    return run_property(ctx, queries, prop, examples=SEMANTICS_EXAMPLES_PER_SETTING * ctx.settings.max_examples,
                        min_triggered=2, what="queries that select, order or project")


PAGED_RECORDS = [{"i": i, "g": i % 3, "s": "abcdefghijklmnopqrstuvwxy"[i]} for i in range(25)]
PAGED_QUERIES: tuple[dict[str, Any], ...] = (
    {"limit": 4},
    {"where": {"op": "eq", "field": "g", "value": 1}, "limit": 3},
    {"sort": [{"field": "g", "order": "desc"}], "limit": 4},  # ties of g cross page boundaries
    {"sort": [{"field": "g"}, {"field": "s", "order": "desc"}], "fields": ["i"], "limit": 5},
    {"limit": 1000},
)
MALFORMED_CURSORS = ("llmos-conformance-not-a-cursor", "!!!!")


@check("dataset_query_cursor")
def dataset_query_cursor(ctx: Context) -> CheckOutcome:
    dataset = create(ctx, "query-cursor")
    dataset_id = dataset["id"]
    append(ctx, dataset_id, PAGED_RECORDS)
    with Failures() as failures:
        for body in PAGED_QUERIES:
            with failures.each():
                read = query_all(ctx, dataset_id, body)
                _judge(PAGED_RECORDS, body, read.rows, read.last)
                pages = -(-len(read.rows) // body["limit"])
                if len(read.pages) < pages:
                    raise CheckFailed(f"at least {pages} pages of at most {body['limit']} records", f"{len(read.pages)} pages", exchange=read.last)
        with failures.each():
            # The page size may change from page to page; where, sort and fields may not.
            rows: list[tuple[int, dict[str, Any]]] = []
            shape: dict[str, Any] = {"where": {"op": "ge", "field": "i", "value": 2}}
            cursor: str | None = None
            for step in range(30):
                exchange, page = query_page(ctx, dataset_id, {**shape, "limit": 2 + step % 3, **({"cursor": cursor} if cursor else {})})
                rows += [(r["index"], r["data"]) for r in page["data"]]
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            _judge(PAGED_RECORDS, shape, rows, exchange)
        _, first = query_page(ctx, dataset_id, {"limit": 4})
        cursor = first["next_cursor"]
        if cursor is None:
            raise CheckFailed("a next_cursor on a first page of 4 out of 25 records", "null", exchange=ctx.wire.last)
        twin = create(ctx, "query-cursor-twin")
        append(ctx, twin["id"], PAGED_RECORDS)
        append(ctx, dataset_id, PAGED_RECORDS[:1])  # version 3: the cursor belongs to version 2
        refused: list[tuple[str, dict[str, Any]]] = [(dataset_id, {"limit": 4, "cursor": bad}) for bad in MALFORMED_CURSORS] + [
            (dataset_id, {"limit": 4, "cursor": cursor, "where": {"op": "exists", "field": "i"}}),
            (dataset_id, {"limit": 4, "cursor": cursor, "sort": [{"field": "i"}]}),
            (dataset_id, {"limit": 4, "cursor": cursor, "fields": ["i"]}),
            (twin["id"], {"limit": 4, "cursor": cursor}),  # another dataset's cursor
            (ref(dataset_id, 3), {"limit": 4, "cursor": cursor}),  # another version's cursor
        ]
        for target, body in refused:
            with failures.each():
                expect_error(send(ctx, "POST", f"{DATASETS}/{target}/query", body), ("cursor_invalid",))
        with failures.each():
            # And the cursor still continues its own query, on the version it pinned.
            read = query_all(ctx, dataset_id, {"limit": 4, "cursor": cursor})
            if read.version != 2 or [i for i, _ in read.rows] != list(range(4, 25)):
                raise CheckFailed("the cursor continuing at index 4 through version 2", f"version {read.version}, indices {[i for i, _ in read.rows]}", exchange=read.last)
    count = len(PAGED_QUERIES) + 2 + len(refused)
    return CheckOutcome(examples=count, triggered=count)


WHILE_APPENDING: tuple[dict[str, Any], ...] = (
    {"limit": 3},
    {"where": {"op": "eq", "field": "g", "value": 0}, "limit": 2},
    {"sort": [{"field": "i", "order": "desc"}], "limit": 3},  # appended records would sort first
)


@check("dataset_pagination_while_appending")
def dataset_pagination_while_appending(ctx: Context) -> CheckOutcome:
    dataset = create(ctx, "query-appending")
    shadow = ShadowDataset(dataset["id"], dataset["name"])
    start = [{"i": i, "g": i % 2} for i in range(12)]
    append(ctx, dataset["id"], start)
    shadow.append(start)
    appended = 0

    def between(pages: int) -> None:
        nonlocal appended
        batch = [{"i": 1000 + appended + k, "g": 0} for k in range(2)]
        append(ctx, dataset["id"], batch)
        shadow.append(batch)
        appended += len(batch)

    with Failures() as failures:
        for body in WHILE_APPENDING:
            with failures.each():
                pinned = shadow.latest
                records = list(shadow.records())
                read = query_all(ctx, dataset["id"], body, between=between)
                if read.version != pinned:
                    raise CheckFailed(f"the query reading version {pinned}, the latest when it started", f"version {read.version}", exchange=read.last)
                _judge(records, body, read.rows, read.last)
        with failures.each():
            fresh = query_all(ctx, ref(dataset["id"]), {"limit": 1000})
            if fresh.version != shadow.latest or len(fresh.rows) != len(shadow.records()):
                raise CheckFailed(f"a new query reading version {shadow.latest} with {len(shadow.records())} records", f"version {fresh.version}, {len(fresh.rows)} records", exchange=fresh.last)
    return CheckOutcome(examples=len(WHILE_APPENDING), triggered=len(WHILE_APPENDING), notes=[f"{appended} records appended between pages"])


LEAF: dict[str, Any] = {"op": "eq", "field": "a", "value": 1}


def nested(depth: int) -> dict[str, Any]:
    """A filter ``depth`` levels deep (``not`` over ``not`` ... over a leaf)."""
    node = LEAF
    for _ in range(depth - 1):
        node = {"op": "not", "of": node}
    return node


def sized(nodes: int) -> dict[str, Any]:
    """A filter of exactly ``nodes`` nodes (at least 254), three levels deep: ``and`` of four 62-leaf ``or``s and leaves."""
    ors = [{"op": "or", "of": [LEAF] * 62} for _ in range(4)]
    return {"op": "and", "of": [*ors, *[LEAF] * (nodes - 1 - 4 * 63)]}


def bounds_cases() -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    """(refused: the field named and the body; accepted: the same bounds met exactly)."""
    deep = ".".join(["a"] * 9)
    refused: list[tuple[str, dict[str, Any]]] = [
        ("limit", {"limit": 1001}),
        ("limit", {"limit": 0}),
        ("where", {"where": nested(9)}),
        ("where", {"where": sized(257)}),
        ("sort", {"sort": [{"field": "a"}] * 5}),
        ("where", {"where": {"op": "regex", "field": "a", "value": "x"}}),
        ("where", {"where": {"op": "eq", "field": "a..b", "value": 1}}),
        ("where", {"where": {"op": "eq", "field": "a[0]", "value": 1}}),
        ("where", {"where": {"op": "exists", "field": deep}}),
        ("sort", {"sort": [{"field": "a*"}]}),
        ("fields", {"fields": ["a", 'b"c']}),
        ("fields", {"fields": [""]}),
    ]
    accepted: list[dict[str, Any]] = [{"limit": 1000}, {"where": nested(8)}, {"where": sized(256)}, {"sort": [{"field": "a"}] * 4}, {"where": {"op": "exists", "field": ".".join(["a"] * 8)}}]
    return refused, accepted


@check("dataset_query_bounds")
def dataset_query_bounds(ctx: Context) -> CheckOutcome:
    dataset = create(ctx, "query-bounds")
    append(ctx, dataset["id"], [{"a": 1, "b": "x"}, {"a": 2}])
    refused, accepted = bounds_cases()
    with Failures() as failures:
        for field, body in refused:
            with failures.each():
                expect_error(send(ctx, "POST", f"{DATASETS}/{dataset['id']}/query", body), ("invalid_value",), param=field, param_prefix=True)
        for body in accepted:
            with failures.each():
                query_page(ctx, dataset["id"], body)
    count = len(refused) + len(accepted)
    return CheckOutcome(examples=count, triggered=count)
