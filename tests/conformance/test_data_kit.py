"""The kit's own pure parts for datasets and tasks: the shadow store, expected answers, generators, wire helpers. No server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from conformance.checks.data_management.datasets import RECORD_SCHEMA, first_invalid, storable_text
from conformance.checks.data_management.driver import jsonl, loose_white_space
from conformance.checks.data_management.queries import bounds_cases
from conformance.checks.data_management.records import (
    cards,
    filter_depth,
    local_pipelines,
    luhn_complete,
    pii_texts,
    queries,
    query_records,
    redaction_problem,
    text_records,
)
from conformance.checks.data_management.shadow import (
    ShadowStore,
    expected_output,
    expected_query,
    first_difference,
    normalized_pipeline,
    same,
    steps_of,
)
from conformance.checks.tasks import Template, postprocessed
from llmos_std.pipeline import TemplateError, luhn_valid, redact
from llmos_std.query import QueryRequest, filter_size

STRIP = [{"op": "strip", "field": "text"}]
LOWER = [{"op": "lowercase", "field": "text"}]


def test_shadow_versions_are_immutable_through_appends_and_derives() -> None:
    store = ShadowStore()
    a = store.create("ds_a", "a")
    assert (a.latest, a.records()) == (1, [])
    assert a.append([{"text": " X "}]) == 2
    assert store.derive("ds_a", 2, STRIP) == ("ds_a", 3)
    assert a.append([{"text": "Y"}]) == 4
    assert a.records(2) == [{"text": " X "}]
    assert a.records(3) == [{"text": "X"}]
    assert a.records() == [{"text": "X"}, {"text": "Y"}]
    assert not a.has(5) and not a.has(0) and a.has(4)


def test_shadow_derive_into_a_new_dataset_starts_at_version_one() -> None:
    store = ShadowStore()
    store.create("ds_a", "a").append([{"text": "AB"}])
    assert store.derive("ds_a", 2, LOWER, into=("ds_b", "b")) == ("ds_b", 1)
    b = store.datasets["ds_b"]
    assert (b.latest, b.records()) == (1, [{"text": "ab"}])
    assert store.datasets["ds_a"].latest == 2  # the source is untouched


def test_shadow_failed_derive_changes_nothing() -> None:
    store = ShadowStore()
    store.create("ds_a", "a").append([{"text": "x"}, {"n": 1}])
    with pytest.raises(TemplateError):
        store.derive("ds_a", 2, [{"op": "template", "into": "t", "template": "{text}"}], into=("ds_b", "b"))
    assert set(store.datasets) == {"ds_a"} and store.datasets["ds_a"].latest == 2


def test_shadow_delete_remembers_the_deleted() -> None:
    store = ShadowStore()
    store.create("ds_a", "a")
    store.delete("ds_a")
    assert store.datasets == {} and store.deleted == {"ds_a"}


@pytest.mark.parametrize(
    ("expected", "seen", "equal"),
    [
        ([{"n": 1}], [{"n": 1.0}], True),  # JSON does not tell 1 from 1.0
        ([{"n": 1}], [{"n": True}], False),  # but true is not 1
        ([{"a": 1, "b": 2}], [{"b": 2, "a": 1}], True),  # member order is not data
        ([{"a": 1}], [{"a": 1}, {"a": 2}], False),  # an extra record
        ([{"a": None}], [{}], False),  # null is not missing
    ],
)
def test_first_difference(expected: list[Any], seen: list[Any], equal: bool) -> None:
    assert (first_difference(expected, seen) is None) == equal


def test_first_difference_says_where() -> None:
    assert first_difference([{"a": 1}, {"a": 2}], [{"a": 1}, {"a": 3}]) == 'at position 1: expected {"a":2}, saw {"a":3}'
    assert "the first missing is" in str(first_difference([{"a": 1}, {"a": 2}], [{"a": 1}]))


def test_expected_query_is_strict_about_types_and_missing_fields() -> None:
    records: list[dict[str, Any]] = [{"k": 1}, {"k": 1.0}, {"k": True}, {"k": "1"}, {}, {"k": None}]
    assert [i for i, _ in expected_query(records, {"where": {"op": "eq", "field": "k", "value": 1}})] == [0, 1]
    assert [i for i, _ in expected_query(records, {"where": {"op": "not", "of": {"op": "ge", "field": "k", "value": 0}}})] == [2, 3, 4, 5]
    assert [i for i, _ in expected_query(records, {"where": {"op": "exists", "field": "k"}})] == [0, 1, 2, 3, 5]


def test_expected_query_sorts_across_types_then_by_index_and_projects() -> None:
    records: list[dict[str, Any]] = [{"k": "a", "x": 1}, {"k": 2}, {}, {"k": None}, {"k": False}, {"k": 2, "x": 2}]
    rows = expected_query(records, {"sort": [{"field": "k", "order": "asc"}], "fields": ["x"], "limit": 2, "cursor": "ignored"})
    assert rows == [(2, {}), (3, {}), (4, {}), (1, {}), (5, {"x": 2}), (0, {"x": 1})]


def test_normalized_pipeline_fills_defaults() -> None:
    assert normalized_pipeline([{"op": "normalize", "field": "t"}]) == [{"op": "normalize", "field": "t", "form": "NFC"}]
    assert normalized_pipeline([{"op": "normalize", "field": "t"}]) == normalized_pipeline([{"op": "normalize", "field": "t", "form": "NFC"}])
    with pytest.raises(ValidationError):
        steps_of([{"op": "uppercase", "field": "t"}])


def test_query_records_are_reproducible_and_varied() -> None:
    records = query_records(7)
    assert records == query_records(7) and records != query_records(8)
    assert {type(r.get("k")).__name__ for r in records} >= {"str", "int", "list", "dict", "NoneType"}


@settings(max_examples=200, deadline=None)
@given(queries)
def test_query_bodies_are_valid_requests(body: dict[str, Any]) -> None:
    request = QueryRequest.model_validate(body)
    if request.where is not None:
        assert filter_size(request.where)[0] == filter_depth(body["where"]) <= 8
    expected_query(query_records(0), body)  # never raises


def test_bounds_cases_agree_with_the_query_models() -> None:
    refused, accepted = bounds_cases()
    for field, body in refused:
        with pytest.raises(ValidationError) as caught:
            QueryRequest.model_validate(body)
        assert str(caught.value.errors()[0]["loc"][0]) == field, (field, body)
    for body in accepted:
        QueryRequest.model_validate(body)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789", min_size=12, max_size=18))
def test_luhn_complete_passes_the_standards_check(body: str) -> None:
    assert luhn_valid(luhn_complete(body))


@settings(max_examples=100, deadline=None)
@given(cards)
def test_cards_are_redacted(card: str) -> None:
    assert redact(f"pay {card} now") == "pay [CARD] now"


@settings(max_examples=300, deadline=None)
@given(pii_texts)
def test_planted_pii_is_fully_redacted_by_the_reference_semantics(case: tuple[str, list[tuple[str, str]]]) -> None:
    text, planted = case
    assert redaction_problem(redact(text), planted) is None
    assert redaction_problem(text, planted) is not None


@settings(max_examples=200, deadline=None)
@given(st.lists(text_records, min_size=1, max_size=6), local_pipelines)
def test_local_pipelines_are_valid_and_run_or_fail_as_templates_do(records: list[dict[str, Any]], pipeline: list[dict[str, Any]]) -> None:
    steps_of(pipeline)
    try:
        out = expected_output(pipeline, records)
    except TemplateError:
        assert any(s["op"] == "template" for s in pipeline)
    else:
        assert len(out) <= len(records)


@pytest.mark.parametrize(
    ("batch", "bad"),
    [
        ([{"text": "a"}, {"text": "b", "n": 2}], None),
        ([{"text": "a"}, 7, {"n": 1}], 1),  # not an object
        ([{"text": "a"}, {"text": "b", "n": 1.5}], 1),  # 1.5 is no integer
        ([{"n": 1}, "text"], 0),  # the first invalid one counts
    ],
)
def test_first_invalid(batch: list[Any], bad: int | None) -> None:
    assert RECORD_SCHEMA["required"] == ["text"]
    assert first_invalid(batch) == bad


def test_same_is_canonical() -> None:
    assert same({"a": [1, 2.0]}, {"a": [1.0, 2]}) and not same({"a": "1"}, {"a": 1})


@pytest.mark.parametrize(
    ("line", "position"),
    [
        ('{"a":"b c","d":[1,2]}', None),  # spaces inside strings are data
        ('{"a":"x\\" y"}', None),  # an escaped quote does not end the string
        ('{"a": 1}', 5),
        ('{"a":1}\r', 7),  # a CR at the end is white space too
    ],
)
def test_loose_white_space(line: str, position: int | None) -> None:
    assert loose_white_space(line) == position


def test_jsonl_blank_lines_and_crlf_hold_the_same_records() -> None:
    records = [{"a": 1}, {"b": "\u00e9\u2028"}]
    for body in (jsonl(records), jsonl(records, blank_lines=True)):
        lines = [line.rstrip("\r") for line in body.decode("utf-8").split("\n")]
        assert [json.loads(line) for line in lines if line.strip(" \t")] == records
    assert b"\\ud800" in jsonl([{"t": "\ud800"}])  # a lone surrogate travels as its escape


@pytest.mark.parametrize(
    ("record", "storable"),
    [
        ({"t": "a\u0001b", "u": ["\U0001F600"]}, True),  # controls and astral characters are text
        ({"t": "a\x00b"}, False),  # U+0000
        ({"k\x00": 1}, False),  # in a member name too
        ({"t": ["\udc00"]}, False),  # a lone surrogate, nested
    ],
)
def test_storable_text(record: dict[str, Any], storable: bool) -> None:
    assert storable_text(record) == storable
    assert (first_invalid([{"text": "ok"}, {"text": "x", **record}]) is None) == storable


@pytest.mark.parametrize(
    ("raw", "prompt", "prefix", "output"),
    [
        (" Bonjour \u00e0 tous.", "Translate.", "Translation:", "Bonjour \u00e0 tous."),  # the spec's base-model example, cut at its stop string
        ("Translation: Bonjour \u00e0 tous.", "Translate.", "Translation:", "Bonjour \u00e0 tous."),  # the spec's chat-model example
        ("\u3000Translate.\n Translation:\tOui ", "Translate.", "Translation:", "Oui"),  # echo of the prompt, then of the prefix
        ("Oui Translation:", "Translate.", None, "Oui Translation:"),  # only leading echoes go
    ],
)
def test_postprocessed_follows_the_spec_order(raw: str, prompt: str, prefix: str | None, output: str) -> None:
    assert postprocessed(raw, Template(prompt, prefix), prompt) == output
