"""The worked examples of the pipeline steps: one step, records in, records out, as data.

The spec renders them (``{{table:pipeline-examples}}``), the package tests reproduce each with
:func:`llmos_std.pipeline.run_local`, and the kit runs them against a server's ``derive``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import JsonValue

Record = dict[str, JsonValue]


@dataclass(frozen=True)
class WorkedExample:
    title: str
    step: dict[str, JsonValue]
    records_in: tuple[Record, ...]
    records_out: tuple[Record, ...]


WORKED_EXAMPLES: tuple[WorkedExample, ...] = (
    WorkedExample(
        "normalize NFC: e + U+0301 composes to U+00E9, U+212B ANGSTROM SIGN becomes U+00C5; compatibility characters and non-strings stay",
        {"op": "normalize", "field": "text", "form": "NFC"},
        ({"text": "Cafe\u0301"}, {"text": "\u212b ngstr\u00f6m"}, {"text": "\ufb01ne \u2460"}, {"text": 42}),
        ({"text": "Caf\u00e9"}, {"text": "\u00c5 ngstr\u00f6m"}, {"text": "\ufb01ne \u2460"}, {"text": 42}),
    ),
    WorkedExample(
        "normalize NFKC on a nested path: ligatures, circled and full-width forms, superscripts and U+00A0 fold",
        {"op": "normalize", "field": "doc.body", "form": "NFKC"},
        (
            {"doc": {"body": "\ufb01ne \u2460\u2461", "lang": "en"}},
            {"doc": {"body": "\uff21\uff22\uff23 x\u00b2 1\u00a0000"}},
            {"doc": "flat"},
            {"doc": {"title": "no body"}},
        ),
        (
            {"doc": {"body": "fine 12", "lang": "en"}},
            {"doc": {"body": "ABC x2 1 000"}},
            {"doc": "flat"},
            {"doc": {"title": "no body"}},
        ),
    ),
    WorkedExample(
        "strip: only White_Space code points go; U+001C and U+200B are not White_Space; arrays are not entered",
        {"op": "strip", "field": "text"},
        (
            {"text": "\u3000 hello\u00a0\n"},
            {"text": "\u001chi\u001c"},
            {"text": "\u200bzero width\u200b "},
            {"text": ["  kept  "]},
            {"id": 5},
        ),
        (
            {"text": "hello"},
            {"text": "\u001chi\u001c"},
            {"text": "\u200bzero width\u200b"},
            {"text": ["  kept  "]},
            {"id": 5},
        ),
    ),
    WorkedExample(
        "collapse_whitespace: strip, then every run of White_Space becomes one U+0020",
        {"op": "collapse_whitespace", "field": "text"},
        ({"text": "  many \t\n spaces\u2003here  "}, {"text": "a\u00a0\u00a0b\r\nc"}, {"text": "a\u200bb"}, {"text": None}),
        ({"text": "many spaces here"}, {"text": "a b c"}, {"text": "a\u200bb"}, {"text": None}),
    ),
    WorkedExample(
        "lowercase: full Unicode mappings, final sigma, U+0130 becoming two code points, U+1E9E",
        {"op": "lowercase", "field": "text"},
        ({"text": "\u00c0\u00c9\u00ce STRASSE \u1e9e"}, {"text": "\u039f\u0394\u039f\u03a3 \u03a3\u039f\u03a6\u039f\u03a3"}, {"text": "\u0130STANBUL"}, {"text": True}),
        ({"text": "\u00e0\u00e9\u00ee strasse \u00df"}, {"text": "\u03bf\u03b4\u03bf\u03c2 \u03c3\u03bf\u03c6\u03bf\u03c2"}, {"text": "i\u0307stanbul"}, {"text": True}),
    ),
    WorkedExample(
        "dedupe by field: first per value; 1 and 1.0 are one value, true is another; records lacking the field all stay",
        {"op": "dedupe", "field": "text"},
        (
            {"id": 1, "text": "hi"},
            {"id": 2, "text": "hi"},
            {"id": 3},
            {"id": 4},
            {"id": 5, "text": 1},
            {"id": 6, "text": 1.0},
            {"id": 7, "text": True},
            {"id": 8, "text": None},
            {"id": 9, "text": None},
            {"id": 10, "text": {"a": 1, "b": 2}},
            {"id": 11, "text": {"b": 2, "a": 1}},
        ),
        (
            {"id": 1, "text": "hi"},
            {"id": 3},
            {"id": 4},
            {"id": 5, "text": 1},
            {"id": 7, "text": True},
            {"id": 8, "text": None},
            {"id": 10, "text": {"a": 1, "b": 2}},
        ),
    ),
    WorkedExample(
        "dedupe of whole records: member order does not matter, array order does",
        {"op": "dedupe"},
        ({"a": 1, "b": [1, 2]}, {"b": [1, 2], "a": 1}, {"a": 1, "b": [2, 1]}, {"a": 1.0, "b": [1, 2]}, {"a": "1", "b": [1, 2]}),
        ({"a": 1, "b": [1, 2]}, {"a": 1, "b": [2, 1]}, {"a": "1", "b": [1, 2]}),
    ),
    WorkedExample(
        "filter with a comparison: types are strict, so \"5\", true and a missing score do not match",
        {"op": "filter", "where": {"op": "ge", "field": "score", "value": 3}},
        ({"id": 1, "score": 5}, {"id": 2, "score": "5"}, {"id": 3, "score": 3.0}, {"id": 4, "score": True}, {"id": 5, "score": None}, {"id": 6}, {"id": 7, "score": 2.5}),
        ({"id": 1, "score": 5}, {"id": 3, "score": 3.0}),
    ),
    WorkedExample(
        "filter with not: a record lacking the field fails the comparison, so not keeps it",
        {"op": "filter", "where": {"op": "not", "of": {"op": "eq", "field": "lang", "value": "fr"}}},
        ({"id": 1, "lang": "fr"}, {"id": 2, "lang": "en"}, {"id": 3}, {"id": 4, "lang": None}, {"id": 5, "lang": ["fr"]}),
        ({"id": 2, "lang": "en"}, {"id": 3}, {"id": 4, "lang": None}, {"id": 5, "lang": ["fr"]}),
    ),
    WorkedExample(
        "length_filter in characters: code points, not bytes, UTF-16 units or graphemes; non-strings and missing fields drop",
        {"op": "length_filter", "field": "text", "unit": "characters", "min": 2, "max": 5},
        (
            {"text": "a"},
            {"text": "ab"},
            {"text": "h\u00e9llo"},
            {"text": "e\u0301"},
            {"text": "\U0001f600\U0001f600\U0001f600"},
            {"text": "too long"},
            {"text": 12345},
            {"id": 8},
        ),
        ({"text": "ab"}, {"text": "h\u00e9llo"}, {"text": "e\u0301"}, {"text": "\U0001f600\U0001f600\U0001f600"}),
    ),
    WorkedExample(
        "redact_pii, every kind: a number failing the Luhn check, times, dates and a dotted version stay",
        {"op": "redact_pii", "field": "text"},
        (
            {"text": "Mail jane.doe+test@example.co.uk or call +44 20 7946 0958."},
            {"text": "Card 4111 1111 1111 1111, not 4111 1111 1111 1112."},
            {"text": "From 192.168.0.1 and 2001:db8::8a2e:370:7334 at 12:30:45 on 2024-01-15."},
            {"text": "Call (555) 123-4567 about version 1.2.3.4.5 or ::1."},
            {"text": "Mapped ::ffff:192.0.2.1 is form 3: its IPv4 part goes."},
            {"text": ["jane@example.com"]},
        ),
        (
            {"text": "Mail [EMAIL] or call [PHONE]."},
            {"text": "Card [CARD], not 4111 1111 1111 1112."},
            {"text": "From [IPV4] and [IPV6] at 12:30:45 on 2024-01-15."},
            {"text": "Call [PHONE] about version 1.2.3.4.5 or [IPV6]."},
            {"text": "Mapped ::ffff:[IPV4] is form 3: its IPv4 part goes."},
            {"text": ["jane@example.com"]},
        ),
    ),
    WorkedExample(
        "redact_pii with some kinds only: the others stay",
        {"op": "redact_pii", "field": "text", "kinds": ["email", "ipv4"]},
        ({"text": "jane@example.com from 10.0.0.7, card 4111111111111111, phone 555-123-4567"},),
        ({"text": "[EMAIL] from [IPV4], card 4111111111111111, phone 555-123-4567"},),
    ),
    WorkedExample(
        "template: non-strings as canonical JSON, {{ and }} as braces, values never expanded again, into replaced",
        {"op": "template", "into": "prompt", "template": "Q: {question} | tags {meta.tags} | n={n} | {{literal}} | {meta}"},
        (
            {"question": "Why {n}?", "meta": {"tags": ["a", "b"], "w": None}, "n": 1.50},
            {"question": "Ok", "meta": {"w": 0.5, "tags": []}, "n": True, "prompt": "old"},
        ),
        (
            {
                "question": "Why {n}?",
                "meta": {"tags": ["a", "b"], "w": None},
                "n": 1.50,
                "prompt": 'Q: Why {n}? | tags ["a","b"] | n=1.5 | {literal} | {"tags":["a","b"],"w":null}',
            },
            {"question": "Ok", "meta": {"w": 0.5, "tags": []}, "n": True, "prompt": 'Q: Ok | tags [] | n=true | {literal} | {"tags":[],"w":0.5}'},
        ),
    ),
)
"""At least one example per model-free step, each chosen for its edge cases."""
