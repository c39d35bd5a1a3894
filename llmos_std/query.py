"""The dataset query language: a JSON filter grammar, sort keys, projection, and their semantics.

The models are the grammar (exported as JSON Schema); :func:`matches`, :func:`order` and
:func:`project` are the normative semantics written as code. Servers may evaluate queries any way
they like (the reference server compiles them to SQL); the kit holds every answer against these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, Union

from pydantic import Field, JsonValue, field_validator

from llmos_std.wire import WireModel

_SEGMENT = r"[^.\"'\\\[\]*\x00-\x1f\x7f]{1,128}"
FIELD_PATH_PATTERN = rf"^{_SEGMENT}(?:\.{_SEGMENT}){{0,7}}$"
"""A field path: 1 to 8 member names joined by ``.``; names cannot contain ``. " ' \\ [ ] *`` or controls."""

MAX_PAGE_SIZE = 1000
MAX_FILTER_DEPTH = 8
MAX_FILTER_NODES = 256
MAX_FILTER_CHILDREN = 64
MAX_SORT_KEYS = 4
MAX_IN_VALUES = 1000
MAX_PROJECTION = 64

FieldPath = Annotated[str, Field(pattern=FIELD_PATH_PATTERN)]
Scalar = Union[str, int, float, bool, None]
Orderable = Union[str, int, float]


class Eq(WireModel):
    op: Literal["eq"]
    field: FieldPath
    value: Scalar
    """Matches a field equal to this scalar: same JSON type and value (numbers by value)."""


class Compare(WireModel):
    op: Literal["lt", "le", "gt", "ge"]
    field: FieldPath
    value: Orderable
    """A number matches numbers only; a string matches strings only (compared by code point)."""


class In(WireModel):
    op: Literal["in"]
    field: FieldPath
    values: list[Scalar] = Field(min_length=1, max_length=MAX_IN_VALUES)
    """Matches a field equal (as ``eq``) to any of these."""


class Contains(WireModel):
    op: Literal["contains"]
    field: FieldPath
    value: Scalar
    """A string field containing this string, or an array field with an element equal to this scalar."""


class Prefix(WireModel):
    op: Literal["prefix"]
    field: FieldPath
    value: str
    """A string field that starts with this string."""


class Exists(WireModel):
    op: Literal["exists"]
    field: FieldPath
    """Matches when the field is present, whatever its value (``null`` included)."""


class And(WireModel):
    op: Literal["and"]
    of: list[Filter] = Field(min_length=1, max_length=MAX_FILTER_CHILDREN)


class Or(WireModel):
    op: Literal["or"]
    of: list[Filter] = Field(min_length=1, max_length=MAX_FILTER_CHILDREN)


class Not(WireModel):
    op: Literal["not"]
    of: Filter


Filter = Annotated[Union[Eq, Compare, In, Contains, Prefix, Exists, And, Or, Not], Field(discriminator="op")]
"""One node of a filter; ``and``/``or``/``not`` nest up to :data:`MAX_FILTER_DEPTH` levels."""

And.model_rebuild()
Or.model_rebuild()
Not.model_rebuild()

FILTER_OPS: tuple[str, ...] = ("eq", "lt", "le", "gt", "ge", "in", "contains", "prefix", "exists", "and", "or", "not")


class SortKey(WireModel):
    field: FieldPath
    order: Literal["asc", "desc"] = "asc"


class QueryRequest(WireModel):
    """``POST /llmos/v1/datasets/{dataset_ref}/query``: one page of the matching records."""

    where: Filter | None = None
    """Records to return; all of them when absent."""
    sort: list[SortKey] = Field(default_factory=list, max_length=MAX_SORT_KEYS)
    """Sort keys, most significant first; ties (and no keys) keep index order."""
    fields: list[FieldPath] | None = Field(default=None, min_length=1, max_length=MAX_PROJECTION)
    """Projection: only these paths of each record; the whole record when absent."""
    limit: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)
    """Page size."""
    cursor: str | None = Field(default=None, min_length=1, max_length=4096)
    """The ``next_cursor`` of the previous page, sent with the same ``where``, ``sort`` and ``fields``."""

    @field_validator("where")
    @classmethod
    def _bounded(cls, where: Filter | None) -> Filter | None:
        if where is not None:
            depth, nodes = filter_size(where)
            if depth > MAX_FILTER_DEPTH:
                raise ValueError(f"the filter nests {depth} levels; at most {MAX_FILTER_DEPTH}")
            if nodes > MAX_FILTER_NODES:
                raise ValueError(f"the filter has {nodes} nodes; at most {MAX_FILTER_NODES}")
        return where


def filter_size(node: Filter) -> tuple[int, int]:
    """(depth, node count) of a filter; a leaf has depth 1."""
    if isinstance(node, (And, Or)):
        sizes = [filter_size(child) for child in node.of]
        return 1 + max(d for d, _ in sizes), 1 + sum(n for _, n in sizes)
    if isinstance(node, Not):
        depth, nodes = filter_size(node.of)
        return depth + 1, nodes + 1
    return 1, 1


# ---------------------------------------------------------------- semantics


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""The value of a path that does not resolve (absent member, or a non-object on the way)."""


def resolve(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for name in path.split("."):
        if not isinstance(value, dict) or name not in value:
            return MISSING
        value = value[name]
    return value


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def scalar_equal(a: object, b: object) -> bool:
    """JSON equality of scalars: same type, same value; 1 and 1.0 are equal, true and 1 are not."""
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


def _compare(op: str, field: object, value: object) -> bool:
    if _is_number(value):
        if not _is_number(field):
            return False
    elif isinstance(value, str):
        if not isinstance(field, str):
            return False
    else:
        return False
    left: Any = field
    right: Any = value
    return bool({"lt": left < right, "le": left <= right, "gt": left > right, "ge": left >= right}[op])


def matches(node: Filter, record: Mapping[str, Any]) -> bool:
    """Whether a record satisfies a filter. A missing field satisfies no comparison (so ``not`` of one)."""
    if isinstance(node, And):
        return all(matches(child, record) for child in node.of)
    if isinstance(node, Or):
        return any(matches(child, record) for child in node.of)
    if isinstance(node, Not):
        return not matches(node.of, record)
    value = resolve(record, node.field)
    if isinstance(node, Exists):
        return value is not MISSING
    if value is MISSING:
        return False
    if isinstance(node, Eq):
        return scalar_equal(value, node.value)
    if isinstance(node, In):
        return any(scalar_equal(value, candidate) for candidate in node.values)
    if isinstance(node, Compare):
        return _compare(node.op, value, node.value)
    if isinstance(node, Prefix):
        return isinstance(value, str) and value.startswith(node.value)
    if isinstance(value, str):
        return isinstance(node.value, str) and node.value in value
    if isinstance(value, list):
        return any(scalar_equal(element, node.value) for element in value)
    return False


TYPE_RANK = {"missing": 0, "null": 1, "boolean": 2, "number": 3, "string": 4, "array": 5, "object": 6}
"""Sort order across types; within a type: false < true, numbers by value, strings by code point,
arrays and objects all equal (ties keep index order)."""


def sort_value(value: Any) -> tuple[int, Any]:
    if value is MISSING:
        return (0, 0)
    if value is None:
        return (1, 0)
    if isinstance(value, bool):
        return (2, int(value))
    if _is_number(value):
        return (3, value)
    if isinstance(value, str):
        return (4, value)
    return (5 if isinstance(value, list) else 6, 0)


def order(records: Sequence[tuple[int, Mapping[str, Any]]], keys: Sequence[SortKey]) -> list[tuple[int, Mapping[str, Any]]]:
    """``(index, record)`` pairs in query order: by each key in turn, then by index ascending."""
    def full(pair: tuple[int, Mapping[str, Any]]) -> tuple[Any, ...]:
        parts: list[Any] = []
        for key in keys:
            value = sort_value(resolve(pair[1], key.field))
            parts.append(_Desc(value) if key.order == "desc" else value)
        return (*parts, pair[0])

    return sorted(records, key=full)


class _Desc:
    """Inverts comparison, so that one sort handles keys of mixed direction."""

    __slots__ = ("value",)

    def __init__(self, value: tuple[int, Any]) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def project(record: Mapping[str, Any], fields: Sequence[str] | None) -> dict[str, JsonValue]:
    """The record with only the named paths, nested as in the record; missing paths are left out."""
    if fields is None:
        return dict(record)
    out: dict[str, Any] = {}
    for path in fields:
        value = resolve(record, path)
        if value is MISSING:
            continue
        names = path.split(".")
        target = out
        for name in names[:-1]:
            target = target.setdefault(name, {})
        target[names[-1]] = value
    return out
