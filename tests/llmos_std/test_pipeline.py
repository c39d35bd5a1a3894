"""The pipeline steps as code: the worked examples reproduce, redaction, White_Space, templates, step models."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from pydantic import TypeAdapter, ValidationError

from llmos_std.data import DeriveDatasetRequest
from llmos_std.export import schema_files
from llmos_std.pipeline import (
    MAX_PIPELINE_STEPS,
    MODEL_STEPS,
    PII_PLACEHOLDERS,
    STEP_OPS,
    WHITE_SPACE,
    PipelineStep,
    TemplateError,
    apply_local_step,
    collapse_whitespace,
    ipv6_valid,
    luhn_valid,
    placeholders,
    redact,
    render_template,
    run_local,
    strip,
    template_problem,
)
from llmos_std.pipeline_examples import WORKED_EXAMPLES, WorkedExample

STEP: TypeAdapter[Any] = TypeAdapter(PipelineStep)


def _exact(records: Any) -> str:
    """JSON text keeps what Python equality hides: 1, 1.0 and true differ."""
    return json.dumps(records, sort_keys=True, ensure_ascii=False)


# ---------------------------------------------------------------- worked examples


@pytest.mark.parametrize("example", WORKED_EXAMPLES, ids=[e.title.split(":")[0] for e in WORKED_EXAMPLES])
def test_every_worked_example_reproduces(example: WorkedExample) -> None:
    records_in = [dict(r) for r in example.records_in]
    before = _exact(records_in)
    out = run_local([STEP.validate_python(example.step)], records_in)
    assert _exact(out) == _exact(list(example.records_out))
    assert _exact(records_in) == before, "a step never changes its input records"


@pytest.mark.parametrize("example", WORKED_EXAMPLES, ids=[e.title.split(":")[0] for e in WORKED_EXAMPLES])
def test_every_worked_example_step_is_valid_against_the_exported_schema(example: WorkedExample) -> None:
    name = type(STEP.validate_python(example.step)).__name__
    defs = schema_files()["DeriveDatasetRequest.json"]["$defs"]
    assert name in defs
    jsonschema.Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": defs}).validate(example.step)


def test_the_worked_examples_cover_every_model_free_step_and_its_edges() -> None:
    steps = [e.step for e in WORKED_EXAMPLES]
    assert {s["op"] for s in steps} == set(STEP_OPS) - set(MODEL_STEPS) | {"length_filter"}
    assert {s.get("form", "NFC") for s in steps if s["op"] == "normalize"} == {"NFC", "NFKC"}
    assert {"field" in s for s in steps if s["op"] == "dedupe"} == {True, False}
    assert all(s.get("unit", "characters") == "characters" for s in steps if s["op"] == "length_filter")
    redacted = " ".join(json.dumps(r) for e in WORKED_EXAMPLES if e.step["op"] == "redact_pii" for r in e.records_out)
    assert all(placeholder in redacted for placeholder in PII_PLACEHOLDERS.values())
    assert "4111 1111 1111 1112" in redacted, "a number failing the Luhn check is left alone"


# ---------------------------------------------------------------- White_Space


def test_white_space_is_exactly_the_25_code_points() -> None:
    expected = {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F, 0x205F, 0x3000}
    assert {ord(c) for c in WHITE_SPACE} == expected and len(WHITE_SPACE) == 25
    # Python's isspace() is White_Space plus the four information separators U+001C..U+001F
    everything = (chr(c) for c in range(0x110000))
    assert {c for c in everything if c.isspace()} - WHITE_SPACE == {"\x1c", "\x1d", "\x1e", "\x1f"}


@pytest.mark.parametrize("char", ["\x1c", "\x1d", "\x1e", "\x1f", "\u200b", "\ufeff", "\u180e"])
def test_strip_keeps_what_is_not_white_space(char: str) -> None:
    text = f"{char}x{char}"
    assert strip(text) == text
    assert collapse_whitespace(f"a{char}{char}b") == f"a{char}{char}b"
    if char.isspace():
        assert text.strip() == "x", "the case str.strip gets wrong"


def test_strip_and_collapse_use_every_white_space_code_point() -> None:
    run = "".join(sorted(WHITE_SPACE))
    assert strip(run + "x" + run) == "x"
    assert collapse_whitespace(run + "a" + run + "b" + run) == "a b"


# ---------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # one of each kind
        ("write to a.b-c+d@sub.example.org today", "write to [EMAIL] today"),
        ("pay with 4012-8888-8888-1881 now", "pay with [CARD] now"),
        ("pay with 378282246310005", "pay with [CARD]"),
        ("ping 2001:0db8:85a3:0000:0000:8a2e:0370:7334 now", "ping [IPV6] now"),
        ("ping 8.8.4.4, then", "ping [IPV4], then"),
        ("call +1 (555) 123-4567", "call [PHONE]"),
        ("call 555.123.4567", "call [PHONE]"),
        # Luhn negatives stay, whether grouped or not
        ("not 4111111111111112", "not 4111111111111112"),
        ("not 1234 5678 9012 3456", "not 1234 5678 9012 3456"),
        # fewer than 13 digits is no card (and, unseparated, no phone)
        ("order 123456789012", "order 123456789012"),
        # IPv6 form 2 in its shapes
        ("lo ::1 up", "lo [IPV6] up"),
        ("any :: up", "any [IPV6] up"),
        ("net fe80:: up", "net [IPV6] up"),
        ("net 2001:db8::1/64", "net [IPV6]/64"),
        ("at end fe80::1.", "at end [IPV6]."),
        # form 3: the IPv4 part is redacted as ipv4, nothing is left half-redacted
        ("mapped ::ffff:192.0.2.128 ok", "mapped ::ffff:[IPV4] ok"),
        # not IPv6: times, a single colon, two ::, nine groups, non-hex
        ("at 12:30:45 sharp", "at 12:30:45 sharp"),
        ("ratio 16:9", "ratio 16:9"),
        ("bad 1::2::3", "bad 1::2::3"),
        ("bad 1:2:3:4:5:6:7:8:9", "bad 1:2:3:4:5:6:7:8:9"),
        ("bad 1::2:3:4:5:6:7:8", "bad 1::2:3:4:5:6:7:8"),
        ("bad 12345::1", "bad 12345::1"),
        # not IPv4: octets over 255, too many parts, leading zeros
        ("v 256.1.1.1", "v 256.1.1.1"),
        ("v 1.2.3.4.5", "v 1.2.3.4.5"),
        ("v 01.02.03.04", "v 01.02.03.04"),
        # dates and times are not phones
        ("on 2024-01-15 at 10:30", "on 2024-01-15 at 10:30"),
        ("on 15.01.2024", "on 15.01.2024"),
        ("id 1234567890", "id 1234567890"),
    ],
)
def test_redaction(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_kinds_run_in_order_each_over_what_the_previous_left() -> None:
    # email runs before ipv4: the address inside the domain goes with the whole e-mail address
    assert redact("jane@10.0.0.1.example.com") == "[EMAIL]"
    assert redact("jane@10.0.0.1.example.com", ["ipv4"]) == "jane@[IPV4].example.com"
    # a match failing its check is kept whole: no shorter card inside it is tried
    assert redact("4111111111111111 2") == "4111111111111111 2"
    assert redact("jane@example.com 10.0.0.1", ["ipv4"]) == "jane@example.com [IPV4]"


def test_luhn_and_ipv6_checks() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("0") and not luhn_valid("4111111111111112")
    assert all(ipv6_valid(a) for a in ("::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "fe80::1:2"))
    assert not any(ipv6_valid(a) for a in ("1:2:3:4:5:6:7", "1:::2", "1::2::3", "12345::", "g::1", "1:2:3:4:5:6:7:8:9", "::1:2:3:4:5:6:7:8"))


# ---------------------------------------------------------------- template


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        # escapes: {{ and }} are literal braces, and {{x}} is not a placeholder
        ("{{x}}", "{x}"),
        ("{{{x}}}", "{1}"),
        ("}}{{", "}{"),
        # non-strings are canonical JSON
        ("{n} {f} {t} {z} {l} {o}", '1 1.5 true null [1,"a"] {"a":null,"b":2}'),
        # nested paths
        ("{o.b}", "2"),
        # substituted text is never expanded again
        ("{s}", "{x} {{"),
    ],
)
def test_template_rendering(template: str, expected: str) -> None:
    record = {"x": 1, "n": 1, "f": 1.50, "t": True, "z": None, "l": [1, "a"], "o": {"b": 2, "a": None}, "s": "{x} {{"}
    assert template_problem(template) is None
    assert render_template(template, record) == expected


def test_a_missing_template_field_is_an_error_that_fails_the_derive() -> None:
    step = STEP.validate_python({"op": "template", "into": "p", "template": "{title}: {text}"})
    with pytest.raises(TemplateError, match="title"):
        run_local([step], [{"title": "a", "text": "b"}, {"text": "no title"}])


@pytest.mark.parametrize(
    "template",
    [
        "{",  # unmatched opening brace
        "a } b",  # unmatched closing brace
        "{a",
        "{}",  # an empty placeholder is not a path
        "{a..b}",
        "{a[0]}",
    ],
)
def test_malformed_templates_are_found_before_running(template: str) -> None:
    assert template_problem(template) is not None


def test_placeholders_lists_paths_only() -> None:
    assert placeholders("{a} {{b}} {c.d}") == ["a", "c.d"]


# ---------------------------------------------------------------- record steps


def test_dedupe_keeps_every_record_lacking_the_field() -> None:
    step = STEP.validate_python({"op": "dedupe", "field": "k"})
    records = [{"i": 0}, {"i": 1, "k": None}, {"i": 2}, {"i": 3, "k": None}, {"i": 4, "k": {}}, {"i": 5}]
    assert [r["i"] for r in run_local([step], records)] == [0, 1, 2, 4, 5]


def test_length_filter_without_max_is_unbounded_above() -> None:
    step = STEP.validate_python({"op": "length_filter", "field": "t", "min": 3})
    assert run_local([step], [{"t": "ab"}, {"t": "abc"}, {"t": "x" * 10000}, {"t": None}]) == [{"t": "abc"}, {"t": "x" * 10000}]


def test_text_steps_on_a_nested_path_copy_rather_than_change() -> None:
    record = {"a": {"b": "  X  ", "c": 1}}
    out = run_local([STEP.validate_python({"op": "strip", "field": "a.b"}), STEP.validate_python({"op": "lowercase", "field": "a.b"})], [record])
    assert out == [{"a": {"b": "x", "c": 1}}]
    assert record == {"a": {"b": "  X  ", "c": 1}}


@pytest.mark.parametrize("op", MODEL_STEPS)
def test_model_steps_are_left_to_the_server(op: str) -> None:
    step = {
        "length_filter": {"op": "length_filter", "field": "t", "unit": "tokens", "max": 3, "model": "m"},
        "truncate_tokens": {"op": "truncate_tokens", "field": "t", "max_tokens": 3, "model": "m"},
        "token_count": {"op": "token_count", "field": "t", "into": "n", "model": "m"},
        "annotate": {"op": "annotate", "task": "summarize", "field": "t", "into": "s", "model": "m"},
    }[op]
    with pytest.raises(ValueError, match="needs a model"):
        apply_local_step(STEP.validate_python(step), [{"t": "x"}])


# ---------------------------------------------------------------- step models


@pytest.mark.parametrize(
    "step",
    [
        {"op": "uppercase", "field": "t"},  # unknown step
        {"op": "strip"},  # missing member
        {"op": "strip", "field": "t", "extra": 1},  # unknown member
        {"op": "strip", "field": "a..b"},  # malformed path
        {"op": "normalize", "field": "t", "form": "NFD"},  # only NFC and NFKC
        {"op": "redact_pii", "field": "t", "kinds": []},
        {"op": "redact_pii", "field": "t", "kinds": ["ssn"]},
        {"op": "length_filter", "field": "t", "min": -1},
        {"op": "length_filter", "field": "t", "unit": "bytes"},
        {"op": "length_filter", "field": "t", "max": "5"},  # no coercion
        {"op": "template", "into": "a.b", "template": "x"},  # into is top-level
        {"op": "template", "into": "p", "template": ""},
        {"op": "truncate_tokens", "field": "t", "max_tokens": 0, "model": "m"},
        {"op": "truncate_tokens", "field": "t", "max_tokens": 5},  # a model is required
        {"op": "annotate", "task": "classify", "field": "t", "into": "o", "model": "m"},
        {"op": "annotate", "task": "translate", "field": "t", "into": "o", "model": "m", "target_language": "French"},
        {"op": "filter", "where": {"op": "eq", "field": "t"}},
        {"op": "dedupe", "field": None, "extra": True},
    ],
)
def test_malformed_steps_are_refused(step: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        STEP.validate_python(step)


def test_a_pipeline_has_1_to_32_steps() -> None:
    strip_step = {"op": "strip", "field": "t"}
    assert len(DeriveDatasetRequest.model_validate({"pipeline": [strip_step] * MAX_PIPELINE_STEPS}).pipeline) == 32
    for size in (0, MAX_PIPELINE_STEPS + 1):
        with pytest.raises(ValidationError):
            DeriveDatasetRequest.model_validate({"pipeline": [strip_step] * size})
