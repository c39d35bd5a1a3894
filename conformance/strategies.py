"""Hypothesis strategies derived from the exported JSON Schemas of ``llmos_std`` models.

A small generator for the subset of JSON Schema 2020-12 that pydantic emits, so that valid and
invalid request bodies come from the same definitions the server validates with.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=12)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local references are supported, not {ref!r}")
        node: Any = root
        for part in ref[2:].split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _number(schema: dict[str, Any], integer: bool) -> st.SearchStrategy[Any]:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    if integer:
        lo = None if low is None else math.ceil(low) + (1 if "exclusiveMinimum" in schema and low == math.ceil(low) else 0)
        hi = None if high is None else math.floor(high) - (1 if "exclusiveMaximum" in schema and high == math.floor(high) else 0)
        lo = -(2**40) if lo is None else lo
        hi = 2**40 if hi is None else hi
        return st.integers(lo, hi)
    return st.floats(
        min_value=low, max_value=high, allow_nan=False, allow_infinity=False,
        exclude_min="exclusiveMinimum" in schema, exclude_max="exclusiveMaximum" in schema,
        width=64,
    )


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    min_size = schema.get("minLength", 0)
    if "pattern" in schema:
        max_len = schema.get("maxLength", math.inf)
        return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: min_size <= len(s) <= max_len)
    max_size = schema.get("maxLength", min_size + 24)
    return st.text(min_size=min_size, max_size=min(max_size, min_size + 24))


_REFS: dict[int, tuple[dict[str, Any], dict[str, st.SearchStrategy[Any]]]] = {}


def from_schema(schema: dict[str, Any], root: dict[str, Any] | None = None) -> st.SearchStrategy[Any]:
    """Documents valid under ``schema`` (object keywords, types, ranges, patterns, enums, unions)."""
    root = schema if root is None else root
    if "$ref" in schema and len(schema) == 1:
        # A named definition may refer to itself (the query language's filters): one deferred strategy
        # per definition lets hypothesis draw nested values without building an infinite strategy.
        owner, cache = _REFS.get(id(root), (None, {}))
        if owner is not root:  # keyed by identity; holding the root keeps its id from being reused
            cache = {}
            _REFS[id(root)] = (root, cache)
        ref = schema["$ref"]
        if ref not in cache:
            cache[ref] = st.deferred(lambda: from_schema(_resolve(schema, root), root))
        return cache[ref]
    schema = _resolve(schema, root)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(sub, root) for sub in schema[key]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}, root) for k in kind])
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return _number(schema, integer=True)
    if kind == "number":
        return _number(schema, integer=False)
    if kind == "string":
        return _string(schema)
    if kind == "array":
        items = from_schema(schema.get("items", {}), root)
        min_size = schema.get("minItems", 0)
        return st.lists(items, min_size=min_size, max_size=max(min_size, schema.get("maxItems", min_size + 3)))
    if kind == "object" or "properties" in schema:
        return _object(schema, root)
    return JSON_VALUES


def _object(schema: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    extra = schema.get("additionalProperties", True)
    if not properties and isinstance(extra, dict):
        return st.dictionaries(st.text(min_size=1, max_size=8), from_schema(extra, root), max_size=3)
    fixed = {name: from_schema(sub, root) for name, sub in properties.items() if name in required}
    optional = {name: from_schema(sub, root) for name, sub in properties.items() if name not in required}
    return st.fixed_dictionaries(fixed, optional=optional)
