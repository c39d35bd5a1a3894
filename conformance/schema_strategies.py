"""Hypothesis strategies for JSON Schemas inside the strict subset (llmos_std.structured.STRICT_SUBSET).

Small by design: bounded strings, short arrays and few properties, so a small model's constrained
answer fits the kit's token budget and a failure shrinks to a schema a person can read.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

_NAMES = st.sampled_from(["a", "b", "city", "days", "ok", "tags", "kind", "n"])
_WORDS = st.sampled_from(["x", "y", "red", "blue", "on", "off"])


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    strings = st.builds(lambda hi: {"type": "string", "maxLength": hi}, st.integers(1, 6))
    integers = st.builds(lambda lo, span: {"type": "integer", "minimum": lo, "maximum": lo + span}, st.integers(-50, 50), st.integers(0, 100))
    enums = st.lists(_WORDS, min_size=1, max_size=4, unique=True).map(lambda values: {"enum": values})
    return st.one_of(
        strings, integers, enums,
        st.just({"type": "boolean"}), st.just({"type": "null"}),
        _WORDS.map(lambda value: {"const": value}),
        st.builds(lambda hi: {"type": "string", "pattern": f"^[a-z]{{1,{hi}}}$"}, st.integers(1, 5)),
    )


def _object(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    def build(props: dict[str, dict[str, Any]], required_all: bool) -> dict[str, Any]:
        names = sorted(props)
        return {"type": "object", "properties": props, "required": names if required_all else names[:1], "additionalProperties": False}

    return st.builds(build, st.dictionaries(_NAMES, children, min_size=1, max_size=3), st.booleans())


def strict_schemas() -> st.SearchStrategy[dict[str, Any]]:
    """Any schema of the subset, nested at most twice."""
    return st.recursive(
        _leaf(),
        lambda children: st.one_of(
            _object(children),
            st.builds(lambda items, hi: {"type": "array", "items": items, "maxItems": hi}, children, st.integers(0, 3)),
            st.lists(children, min_size=2, max_size=2).map(lambda pair: {"anyOf": pair}),
        ),
        max_leaves=4,
    )


def object_schemas() -> st.SearchStrategy[dict[str, Any]]:
    """An object schema of the subset: a tool's ``parameters``."""
    return _object(st.one_of(_leaf(), _object(_leaf())))
