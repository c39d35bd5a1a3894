"""The query language's semantics as code: strict types, missing fields, ordering, projection, bounds."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from llmos_std.query import (
    MAX_FILTER_CHILDREN,
    MAX_FILTER_DEPTH,
    MAX_FILTER_NODES,
    MAX_IN_VALUES,
    MAX_PAGE_SIZE,
    MAX_PROJECTION,
    MAX_SORT_KEYS,
    MISSING,
    TYPE_RANK,
    Filter,
    QueryRequest,
    SortKey,
    filter_size,
    matches,
    order,
    project,
    resolve,
    sort_value,
)
from llmos_std.validation import error_from_validation

FILTER: TypeAdapter[Any] = TypeAdapter(Filter)
DATA_TEMPLATE = Path(__file__).resolve().parents[2] / "spec" / "src" / "09-data.md"
TABLE_ROW = re.compile(r"^\| `(\{.*\})` \| `(\{.*\})` \| (yes|no) \|$", re.M)


def _matches(node: dict[str, Any], record: dict[str, Any]) -> bool:
    return matches(FILTER.validate_python(node), record)


def _spec_rows() -> list[tuple[str, str, str]]:
    return TABLE_ROW.findall(DATA_TEMPLATE.read_text(encoding="utf-8"))


def test_the_spec_has_an_examples_table() -> None:
    assert len(_spec_rows()) >= 30


@pytest.mark.parametrize(("node", "record", "expected"), _spec_rows())
def test_every_row_of_the_spec_examples_table_holds(node: str, record: str, expected: str) -> None:
    assert _matches(json.loads(node), json.loads(record)) is (expected == "yes")


@pytest.mark.parametrize(
    ("node", "record", "expected"),
    [
        # numbers compare by value across int and float
        ({"op": "eq", "field": "n", "value": 2}, {"n": 2.0}, True),
        # a boolean is not a number, in either direction
        ({"op": "eq", "field": "n", "value": True}, {"n": 1}, False),
        ({"op": "eq", "field": "n", "value": 0}, {"n": False}, False),
        ({"op": "in", "field": "n", "values": [1, 0]}, {"n": False}, False),
        # null equals null only
        ({"op": "eq", "field": "n", "value": None}, {"n": 0}, False),
        ({"op": "eq", "field": "n", "value": ""}, {"n": None}, False),
        # order never crosses types, and null and booleans have no order
        ({"op": "ge", "field": "n", "value": 0}, {"n": True}, False),
        ({"op": "le", "field": "n", "value": "z"}, {"n": None}, False),
        ({"op": "gt", "field": "n", "value": "1"}, {"n": 2}, False),
        ({"op": "le", "field": "n", "value": 1}, {"n": 1.0}, True),
        # an object field equals no scalar and compares with nothing
        ({"op": "eq", "field": "n", "value": "x"}, {"n": {"x": 1}}, False),
        ({"op": "lt", "field": "n", "value": 1}, {"n": [0]}, False),
        # strings compare by code point: U+00E9 is above every ASCII letter
        ({"op": "gt", "field": "s", "value": "z"}, {"s": "\u00e9"}, True),
        # prefix needs a string field
        ({"op": "prefix", "field": "s", "value": "1"}, {"s": 12}, False),
        ({"op": "prefix", "field": "s", "value": ""}, {"s": ""}, True),
    ],
)
def test_types_are_compared_strictly(node: dict[str, Any], record: dict[str, Any], expected: bool) -> None:
    assert _matches(node, record) is expected


@pytest.mark.parametrize(
    "node",
    [
        {"op": "eq", "field": "a.b", "value": None},
        {"op": "lt", "field": "a.b", "value": 1},
        {"op": "in", "field": "a.b", "values": [None]},
        {"op": "contains", "field": "a.b", "value": ""},
        {"op": "prefix", "field": "a.b", "value": ""},
        {"op": "exists", "field": "a.b"},
    ],
)
def test_a_missing_field_matches_no_operator_and_not_of_it_matches(node: dict[str, Any]) -> None:
    for record in ({}, {"a": 1}, {"a": None}, {"a": [{"b": 1}]}, {"a": {"c": 1}}, {"a.b": 1}):
        assert resolve(record, "a.b") is MISSING
        assert _matches(node, record) is False
        assert _matches({"op": "not", "of": node}, record) is True


def test_exists_is_true_for_null_and_false_only_when_missing() -> None:
    assert _matches({"op": "exists", "field": "a.b"}, {"a": {"b": None}})
    assert _matches({"op": "exists", "field": "a"}, {"a": {}})
    assert not _matches({"op": "not", "of": {"op": "exists", "field": "a"}}, {"a": None})


def test_contains_on_arrays_compares_elements_as_eq() -> None:
    record = {"tags": ["x", 1, True, None, ["y"], {"z": 1}]}
    assert _matches({"op": "contains", "field": "tags", "value": "x"}, record)
    assert _matches({"op": "contains", "field": "tags", "value": 1.0}, record)
    assert _matches({"op": "contains", "field": "tags", "value": True}, record)
    assert _matches({"op": "contains", "field": "tags", "value": None}, record)
    assert not _matches({"op": "contains", "field": "tags", "value": "y"}, record)
    assert not _matches({"op": "contains", "field": "tags", "value": 0}, {"tags": [False]})
    assert not _matches({"op": "contains", "field": "tags", "value": "x"}, {"tags": []})
    # a string value is found inside strings, never inside a number
    assert not _matches({"op": "contains", "field": "n", "value": "2"}, {"n": 123})


def test_and_or_not_combine() -> None:
    both = {"op": "and", "of": [{"op": "eq", "field": "a", "value": 1}, {"op": "eq", "field": "b", "value": 2}]}
    either = {"op": "or", "of": [{"op": "eq", "field": "a", "value": 1}, {"op": "eq", "field": "b", "value": 2}]}
    assert _matches(both, {"a": 1, "b": 2}) and not _matches(both, {"a": 1})
    assert _matches(either, {"b": 2}) and not _matches(either, {})
    assert _matches({"op": "not", "of": both}, {"a": 1})


def _ordered(values: list[Any], keys: list[dict[str, Any]]) -> list[int]:
    records = [(i, {} if v is MISSING else {"v": v, "w": i % 2}) for i, v in enumerate(values)]
    return [index for index, _ in order(records, [SortKey.model_validate(k) for k in keys])]


def test_order_ranks_types_then_values() -> None:
    values = [{"o": 1}, ["a"], "a", "9", "10", 2, 0.5, -1, True, False, None, MISSING]
    assert _ordered(values, [{"field": "v"}]) == list(reversed(range(len(values))))
    assert list(TYPE_RANK) == ["missing", "null", "boolean", "number", "string", "array", "object"]


def test_descending_inverts_values_but_ties_keep_index_order() -> None:
    values = [1, 2, 1, "x", MISSING, MISSING, [1], [0]]
    # arrays tie (rank only), so [1] (index 6) comes before [0] (index 7) in both directions
    assert _ordered(values, [{"field": "v"}]) == [4, 5, 0, 2, 1, 3, 6, 7]
    assert _ordered(values, [{"field": "v", "order": "desc"}]) == [6, 7, 3, 1, 0, 2, 4, 5]


def test_order_with_mixed_directions() -> None:
    records = [(0, {"g": "b", "n": 1}), (1, {"g": "a", "n": 1}), (2, {"g": "b", "n": 3}), (3, {"g": "a", "n": 2}), (4, {"n": 9})]
    keys = [SortKey(field="g"), SortKey(field="n", order="desc")]
    assert [i for i, _ in order(records, keys)] == [4, 3, 1, 2, 0]


def test_no_keys_is_index_order() -> None:
    records = [(5, {"a": 1}), (2, {"a": 0}), (9, {})]
    assert [i for i, _ in order(records, [])] == [2, 5, 9]


def test_sort_value_puts_one_and_one_point_zero_together() -> None:
    assert sort_value(1) == sort_value(1.0)
    assert sort_value(True) != sort_value(1)


def test_project_nests_paths_and_leaves_out_missing_ones() -> None:
    record = {"text": "Hi", "lang": "en", "meta": {"author": "ann", "id": 4, "deep": {"x": 1, "y": 2}}}
    assert project(record, ["text", "meta.author"]) == {"text": "Hi", "meta": {"author": "ann"}}
    assert project(record, ["meta.deep.y", "meta.id"]) == {"meta": {"deep": {"y": 2}, "id": 4}}
    assert project(record, ["nope", "text.x"]) == {}
    assert project(record, ["meta", "meta.author"]) == {"meta": record["meta"]}
    assert project(record, None) == record
    assert record["meta"] == {"author": "ann", "id": 4, "deep": {"x": 1, "y": 2}}, "projection never changes the record"


def _refusal(body: dict[str, Any]) -> tuple[str, str | None]:
    with pytest.raises(ValidationError) as caught:
        QueryRequest.model_validate(body)
    error = error_from_validation(caught.value)
    return error.code, error.param


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"op": "exists", "field": "a"}
    for _ in range(depth - 1):
        node = {"op": "not", "of": node}
    return node


def test_depth_is_bounded_by_the_field_validator() -> None:
    ok = QueryRequest.model_validate({"where": _nested(MAX_FILTER_DEPTH)})
    assert ok.where is not None and filter_size(ok.where) == (MAX_FILTER_DEPTH, MAX_FILTER_DEPTH)
    assert _refusal({"where": _nested(MAX_FILTER_DEPTH + 1)}) == ("invalid_value", "where")


def test_node_count_is_bounded() -> None:
    leaf = {"op": "exists", "field": "a"}
    wide = {"op": "and", "of": [{"op": "or", "of": [leaf] * 50} for _ in range(5)]}  # 1 + 5 * 51 = 256 nodes
    ok = QueryRequest.model_validate({"where": wide})
    assert ok.where is not None and filter_size(ok.where) == (3, MAX_FILTER_NODES)
    wider = {"op": "and", "of": [*wide["of"], leaf]}
    assert _refusal({"where": wider}) == ("invalid_value", "where")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        # page size
        ({"limit": 0}, "limit"),
        ({"limit": MAX_PAGE_SIZE + 1}, "limit"),
        # sort keys and projection
        ({"sort": [{"field": "a"}] * (MAX_SORT_KEYS + 1)}, "sort"),
        ({"fields": [f"f{i}" for i in range(MAX_PROJECTION + 1)]}, "fields"),
        ({"fields": []}, "fields"),
        # list bounds inside the filter
        ({"where": {"op": "in", "field": "a", "values": list(range(MAX_IN_VALUES + 1))}}, "where.values"),
        ({"where": {"op": "in", "field": "a", "values": []}}, "where.values"),
        ({"where": {"op": "and", "of": [{"op": "exists", "field": "a"}] * (MAX_FILTER_CHILDREN + 1)}}, "where.of"),
        ({"where": {"op": "or", "of": []}}, "where.of"),
        # unknown operators, at the root and nested
        ({"where": {"op": "regex", "field": "a", "value": "x"}}, "where"),
        ({"where": {"op": "and", "of": [{"op": "like", "field": "a"}]}}, "where.of.0"),
        # malformed paths: empty names, brackets, wildcards, quotes, too many names, too long a name
        ({"where": {"op": "exists", "field": "a..b"}}, "where.field"),
        ({"where": {"op": "exists", "field": "a[0]"}}, "where.field"),
        ({"where": {"op": "exists", "field": "*"}}, "where.field"),
        ({"where": {"op": "exists", "field": "a\"b"}}, "where.field"),
        ({"where": {"op": "exists", "field": ".".join("a" * 9)}}, "where.field"),
        ({"where": {"op": "exists", "field": "a" * 129}}, "where.field"),
        ({"sort": [{"field": "a.", "order": "asc"}]}, "sort.0.field"),
        # a comparison takes a number or a string, never a boolean or null
        ({"where": {"op": "lt", "field": "a", "value": True}}, "where.value"),
        ({"where": {"op": "lt", "field": "a", "value": None}}, "where.value"),
        # eq takes a scalar, not an array
        ({"where": {"op": "eq", "field": "a", "value": [1]}}, "where.value"),
        # members of another operator
        ({"where": {"op": "exists", "field": "a", "value": 1}}, "where.value"),
        ({"sort": [{"field": "a", "order": "up"}]}, "sort.0.order"),
        ({"cursor": ""}, "cursor"),
    ],
)
def test_queries_outside_the_grammar_are_refused_naming_the_field(body: dict[str, Any], param: str) -> None:
    code, where = _refusal(body)
    assert code in ("invalid_value", "unsupported_parameter")
    assert where == param


def test_the_bounds_are_the_ones_the_spec_states() -> None:
    assert (MAX_PAGE_SIZE, MAX_FILTER_DEPTH, MAX_FILTER_NODES, MAX_SORT_KEYS) == (1000, 8, 256, 4)
    assert QueryRequest.model_validate({}).limit == 100
