"""RFC 8785 canonical JSON, pinned against the RFC's own examples."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmos_std.canonical import canonicalize

# Rows from RFC 8785 appendix B (IEEE 754 -> ECMAScript number serialisation).
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (-0.0, "0"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (9007199254740992.0, "9007199254740992"),
        (295147905179352830000.0, "295147905179352830000"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (333333333.3333333, "333333333.3333333"),
        (1e23, "1e+23"),
        (-1.5, "-1.5"),
        (0.1, "0.1"),
    ],
)
def test_numbers_serialise_as_ecmascript(value: float, text: str) -> None:
    assert canonicalize(value) == text.encode()


def test_rfc_8785_section_3_2_3_example_sorts_by_utf16_code_units() -> None:
    value = {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh",
             "1": "One", "\U0001f600": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}
    keys = [k for k in json.loads(canonicalize(value))]
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_strings_escape_only_what_json_requires() -> None:
    assert canonicalize("\u20ac$\u000f\nA'B\"\\\\\"/") == b'"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"'


def test_whitespace_free_and_nested() -> None:
    assert canonicalize({"b": [1, True, None], "a": {"d": 1.0, "c": "x"}}) == b'{"a":{"c":"x","d":1},"b":[1,true,null]}'


def test_non_finite_numbers_and_huge_integers_are_refused() -> None:
    with pytest.raises(ValueError):
        canonicalize(math.nan)
    with pytest.raises(ValueError):
        canonicalize(2**60)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_round_trip_exactly(value: float) -> None:
    assert float(canonicalize(value)) == value
