"""What the data checks send: records that probe the query semantics' edges, filters, texts for pipelines, planted PII.

Pure (hypothesis strategies and a seeded record builder); the unit tests hold the generators against
``llmos_std``'s own semantics, so that the kit never expects what the standard does not say.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import strategies as st

from llmos_std.pipeline import PII_PLACEHOLDERS, luhn_valid

# ---------------------------------------------------------------- query records

SCALARS: tuple[Any, ...] = (
    None, True, False, 0, 1, 1.0, -3, 2.5, 10, -0.5,
    # Code-point order: "B" < "a" < "é" < "中" < "\uff5e" < "😀"; UTF-16 order would put the emoji before "\uff5e".
    "", "a", "ab", "abc", "B", "b", "é", "e\u0301", "中", "\uff5e", "\U0001F600", "1", "true", "null",
)
ARRAYS: tuple[Any, ...] = ([], ["a", 1], [True, None], ["ab", "b"], [1.0, 2])
OBJECTS: tuple[Any, ...] = ({}, {"x": 1}, {"x": "a", "y": None})
FILTER_PATHS: tuple[str, ...] = ("k", "n", "s", "t", "o", "o.x", "o.y", "sp ace", "ü", "m", "o.x.z")
"""Top-level, nested, with a space and a non-ASCII name; ``m`` is never present and ``o.x.z`` runs through non-objects."""
PROJECT_PATHS: tuple[str, ...] = ("k", "s", "o", "o.x", "sp ace", "m", "o.x.z")
QUERY_RECORDS = 24


def query_records(seed: int, count: int = QUERY_RECORDS) -> list[dict[str, Any]]:
    """Records whose fields take every JSON type, go missing, and repeat values, from one seed."""
    rng = random.Random(seed)
    anything = (*SCALARS, *ARRAYS, *OBJECTS)
    numbers = [v for v in SCALARS if isinstance(v, (int, float)) and not isinstance(v, bool)]
    strings = [v for v in SCALARS if isinstance(v, str)]
    records: list[dict[str, Any]] = []
    for i in range(count):
        record: dict[str, Any] = {"id": i}
        if rng.random() < 0.85:
            record["k"] = rng.choice(anything)
        if rng.random() < 0.85:
            record["n"] = rng.choice([*numbers, None, "10"])
        if rng.random() < 0.85:
            record["s"] = rng.choice(strings)
        if rng.random() < 0.8:
            record["t"] = rng.choice([*ARRAYS, "ab"])
        if rng.random() < 0.85:
            record["o"] = rng.choice([{"x": rng.choice(SCALARS), "y": rng.choice(SCALARS)}, {"x": rng.choice(strings)}, {"y": 1}, 5, None])
        if rng.random() < 0.7:
            record["sp ace"] = rng.choice([*strings[:6], 1, 2.5])
        if rng.random() < 0.7:
            record["ü"] = rng.choice([True, False])
        records.append(record)
    return records


_paths = st.sampled_from(FILTER_PATHS)
_values = st.sampled_from(SCALARS)
_orderables = st.sampled_from([v for v in SCALARS if isinstance(v, (int, float, str)) and not isinstance(v, bool)])
_strings = st.sampled_from([v for v in SCALARS if isinstance(v, str)])

_leaf: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.builds(lambda f, v: {"op": "eq", "field": f, "value": v}, _paths, _values),
    st.builds(lambda o, f, v: {"op": o, "field": f, "value": v}, st.sampled_from(("lt", "le", "gt", "ge")), _paths, _orderables),
    st.builds(lambda f, vs: {"op": "in", "field": f, "values": vs}, _paths, st.lists(_values, min_size=1, max_size=4)),
    st.builds(lambda f, v: {"op": "contains", "field": f, "value": v}, _paths, _values),
    st.builds(lambda f, v: {"op": "prefix", "field": f, "value": v}, _paths, _strings),
    st.builds(lambda f: {"op": "exists", "field": f}, _paths),
)


def filter_depth(node: dict[str, Any]) -> int:
    of = node.get("of")
    if isinstance(of, list):
        return 1 + max(filter_depth(child) for child in of)
    if isinstance(of, dict):
        return 1 + filter_depth(of)
    return 1


filters: st.SearchStrategy[dict[str, Any]] = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.builds(lambda of: {"op": "and", "of": of}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda of: {"op": "or", "of": of}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda of: {"op": "not", "of": of}, inner),
    ),
    max_leaves=6,
).filter(lambda node: filter_depth(node) <= 8)

sort_keys = st.lists(st.builds(lambda f, o: {"field": f, "order": o}, _paths, st.sampled_from(("asc", "desc"))), max_size=2)
projections = st.none() | st.lists(st.sampled_from(PROJECT_PATHS), min_size=1, max_size=3)


def _query(where: dict[str, Any] | None, sort: list[dict[str, Any]], fields: list[str] | None, limit: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if where is not None:
        body["where"] = where
    if sort:
        body["sort"] = sort
    if fields is not None:
        body["fields"] = fields
    if limit is not None:
        body["limit"] = limit
    return body


queries: st.SearchStrategy[dict[str, Any]] = st.builds(_query, st.none() | filters, sort_keys, projections, st.sampled_from((None, 2, 3, 5, 8)))
"""Query bodies over :func:`query_records`: small pages so that every example pages too."""

# ---------------------------------------------------------------- pipeline texts

TEXT_ALPHABET = (
    "a", "b", "B", "x", "1", " ", "  ", "\t", "\n", "\u3000", "\u00a0", "\u0085", "\u2028",
    "\u200b",  # ZERO WIDTH SPACE is not White_Space: strip keeps it
    "\ufb01", "\u00c5", "A\u030a", "\u0130", "\u03a3", "\u00df", "\u00e9", "e\u0301", "\u2460",
)
"""Unicode white space (and one look-alike), compatibility and combining forms, and case pairs with no 1:1 mapping."""
_texts = st.lists(st.sampled_from(TEXT_ALPHABET), max_size=6).map("".join)
_repeated = st.sampled_from((" Hello ", "hello", "HELLO", "a\u3000b ", "\ufb01ne", "fine", "", "\u00c0\u00c9 \u03a3\u0391\u03a3", "\u0130stanbul"))
text_values = st.one_of(_texts, _repeated)


def _text_record(text: Any, n: int, present: bool) -> dict[str, Any]:
    return {"text": text, "n": n} if present else {"n": n}


text_records: st.SearchStrategy[dict[str, Any]] = st.builds(
    _text_record, st.one_of(text_values, text_values, st.integers(-2, 2)), st.integers(0, 3), st.booleans() | st.just(True),
)
"""Mostly ``{"text": str, "n": int}``; some records lack ``text`` or hold a number there (steps pass them unchanged)."""

text_filters: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.sampled_from((
        {"op": "prefix", "field": "text", "value": "a"},
        {"op": "exists", "field": "text"},
        {"op": "not", "of": {"op": "eq", "field": "text", "value": ""}},
        {"op": "ge", "field": "n", "value": 2},
        {"op": "contains", "field": "text", "value": " "},
    )),
    st.builds(lambda v: {"op": "eq", "field": "text", "value": v}, _repeated),
    st.builds(lambda v, k: {"op": "or", "of": [{"op": "lt", "field": "text", "value": v}, {"op": "eq", "field": "n", "value": k}]}, _repeated, st.integers(0, 3)),
)
"""Filters over :data:`text_records`."""

local_steps: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.sampled_from(({"op": "strip", "field": "text"}, {"op": "collapse_whitespace", "field": "text"}, {"op": "lowercase", "field": "text"})),
    st.builds(lambda form: {"op": "normalize", "field": "text", "form": form}, st.sampled_from(("NFC", "NFKC"))),
    st.sampled_from(({"op": "dedupe", "field": "text"}, {"op": "dedupe"}, {"op": "redact_pii", "field": "text"})),
    st.builds(lambda where: {"op": "filter", "where": where}, text_filters),
    st.builds(lambda low, high: {"op": "length_filter", "field": "text", "min": low, **({"max": high} if high is not None else {})},
              st.integers(0, 3), st.none() | st.integers(2, 8)),
    st.sampled_from((
        {"op": "template", "into": "prompt", "template": "Q: {text} #{n}"},
        {"op": "template", "into": "text", "template": "{{{text}}}"},  # literal braces, and replacing its own source
        {"op": "template", "into": "whole", "template": "{n}"},
    )),
)
"""Every model-free step (``template`` fails on a record without ``text``: the derive must then fail)."""
local_pipelines = st.lists(local_steps, min_size=1, max_size=4)

# ---------------------------------------------------------------- planted PII

FILLER = ("note", "contact", "server", "paid", "with", "card", "at", "the", "reach", "via")


def luhn_complete(body: str) -> str:
    """``body`` with the check digit that makes it pass the Luhn check."""
    return next(body + digit for digit in "0123456789" if luhn_valid(body + digit))


def _card(digits: str, separator: str) -> str:
    groups = [digits[i : i + 4] for i in range(0, len(digits), 4)]
    return separator.join(groups)


_local = st.from_regex(r"[a-z][a-z0-9._%+-]{0,8}[a-z0-9]", fullmatch=True)
_domain = st.from_regex(r"[a-z][a-z0-9-]{0,8}[a-z0-9]", fullmatch=True)
emails = st.builds(lambda local, domain, tld: f"{local}@{domain}.{tld}", _local, _domain, st.sampled_from(("com", "org", "net", "io", "example")))
ipv4s = st.tuples(*[st.integers(0, 255)] * 4).map(lambda parts: ".".join(str(p) for p in parts))
cards = st.builds(
    _card,
    st.integers(12, 18).flatmap(lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)).map(luhn_complete),
    st.sampled_from((" ", "-", "")),
)
"""13 to 19 digits that pass the Luhn check, in groups of four separated by a space, a dash or nothing."""

_planted = st.one_of(st.tuples(st.just("email"), emails), st.tuples(st.just("ipv4"), ipv4s), st.tuples(st.just("card"), cards))


def _pii_text(items: list[tuple[str, str]], words: list[str]) -> tuple[str, list[tuple[str, str]]]:
    # A word between any two items keeps each a match of its own (a card's digits must not run into an address).
    parts: list[str] = []
    for i, (_, value) in enumerate(items):
        parts += [words[i % len(words)], value]
    parts.append(words[-1])
    return " ".join(parts), items


pii_texts: st.SearchStrategy[tuple[str, list[tuple[str, str]]]] = st.builds(
    _pii_text, st.lists(_planted, min_size=1, max_size=4), st.lists(st.sampled_from(FILLER), min_size=1, max_size=5),
)
"""(text, [(kind, planted value)]): emails, IPv4 addresses and Luhn-valid card numbers among plain words."""


def redaction_problem(text: str, planted: list[tuple[str, str]]) -> str | None:
    """Why ``text`` is not a full redaction of what was planted in it, or None."""
    for kind, value in planted:
        if value in text:
            return f"the {kind} {value!r} still in {text!r}"
    for kind in {k for k, _ in planted}:
        want = sum(1 for k, _ in planted if k == kind)
        seen = text.count(PII_PLACEHOLDERS[kind])
        if seen != want:
            return f"{want} {PII_PLACEHOLDERS[kind]} placeholder(s) in {text!r}, saw {seen}"
    return None
