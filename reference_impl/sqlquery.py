"""The query language compiled to SQLite SQL over JSON records, with the standard's exact semantics.

Every leaf tests the JSON type as well as the value (SQLite's ``json_extract`` turns ``true`` into
``1``), a missing path makes every comparison false (``NOT`` goes through ``ifnull``, so three-valued
logic never leaks), and equality is written ``json_extract(...) = ?`` first so that an expression
index on the path serves it. Paths are inlined as literals, which the field-path grammar makes safe
(no quotes, backslashes or brackets), because SQLite matches expression indexes only on literals.
"""

from __future__ import annotations

from typing import Any

from llmos_std.query import And, Compare, Contains, Eq, Exists, Filter, In, Not, Or, Prefix, SortKey

Sql = tuple[str, list[Any]]
_OPS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_NUMERIC = "('integer','real')"
_INT64 = 2**63


def json_path(field: str) -> str:
    return "'$" + "".join(f'."{name}"' for name in field.split(".")) + "'"


def extract(field: str) -> str:
    return f"json_extract(data, {json_path(field)})"


def _type(field: str) -> str:
    return f"json_type(data, {json_path(field)})"


def _param(value: Any) -> Any:
    # SQLite integers are 64-bit; larger JSON integers are stored as reals, so compare them as reals.
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= _INT64:
        return float(value)
    return value


def _scalar_equals(kind: str, value_sql: str, value: Any) -> Sql:
    """Equality of a JSON scalar whose JSON type is ``kind`` and SQL value ``value_sql`` (a path, or a json_each element)."""
    if value is None:
        return f"{kind} = 'null'", []
    if isinstance(value, bool):
        return f"{kind} = '{'true' if value else 'false'}'", []
    if isinstance(value, str):
        return f"({value_sql} = ? AND {kind} = 'text')", [value]
    return f"({value_sql} = ? AND {kind} IN {_NUMERIC})", [_param(value)]


def _equals(field: str, value: Any) -> Sql:
    return _scalar_equals(_type(field), extract(field), value)


def compile_filter(node: Filter) -> Sql:
    if isinstance(node, (And, Or)):
        parts = [compile_filter(child) for child in node.of]
        joiner = " AND " if isinstance(node, And) else " OR "
        return "(" + joiner.join(sql for sql, _ in parts) + ")", [p for _, params in parts for p in params]
    if isinstance(node, Not):
        sql, params = compile_filter(node.of)
        return f"(NOT ifnull({sql}, 0))", params
    if isinstance(node, Exists):
        return f"{_type(node.field)} IS NOT NULL", []
    if isinstance(node, Eq):
        return _equals(node.field, node.value)
    if isinstance(node, In):
        parts = [_equals(node.field, value) for value in node.values]
        return "(" + " OR ".join(sql for sql, _ in parts) + ")", [p for _, params in parts for p in params]
    if isinstance(node, Compare):
        kind = "= 'text'" if isinstance(node.value, str) else f"IN {_NUMERIC}"
        return f"({_type(node.field)} {kind} AND {extract(node.field)} {_OPS[node.op]} ?)", [_param(node.value)]
    if isinstance(node, Prefix):
        return f"({_type(node.field)} = 'text' AND substr({extract(node.field)}, 1, ?) = ?)", [len(node.value), node.value]
    if isinstance(node, Contains):
        element, params = _scalar_equals("e.type", "e.value", node.value)
        in_array = f"EXISTS (SELECT 1 FROM json_each(data, {json_path(node.field)}) AS e WHERE {element})"
        if isinstance(node.value, str):
            return (f"(({_type(node.field)} = 'text' AND instr({extract(node.field)}, ?) > 0) OR "
                    f"({_type(node.field)} = 'array' AND {in_array}))"), [node.value, *params]
        return f"({_type(node.field)} = 'array' AND {in_array})", params
    raise ValueError(f"unknown filter node {node!r}")


def order_by(keys: list[SortKey]) -> str:
    """ORDER BY for sort keys: type rank, then value (arrays and objects tie), then index ascending."""
    terms: list[str] = []
    for key in keys:
        direction = "DESC" if key.order == "desc" else "ASC"
        kind = _type(key.field)
        rank = (f"CASE {kind} WHEN 'null' THEN 1 WHEN 'true' THEN 2 WHEN 'false' THEN 2 WHEN 'integer' THEN 3 "
                f"WHEN 'real' THEN 3 WHEN 'text' THEN 4 WHEN 'array' THEN 5 WHEN 'object' THEN 6 ELSE 0 END")
        value = f"CASE WHEN {kind} IN ('array','object') THEN NULL ELSE {extract(key.field)} END"
        terms += [f"{rank} {direction}", f"{value} {direction}"]
    return ", ".join([*terms, "key ASC"])
