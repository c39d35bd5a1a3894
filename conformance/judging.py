"""Judging the wire: schema validation against the exported schemas, statuses, and the error envelope."""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema

from llmos_std.errors import ERROR_CODES
from llmos_std.export import schema_files

from conformance.verdicts import CheckFailed
from conformance.wire import Exchange


@cache
def request_schemas() -> dict[str, dict[str, Any]]:
    return schema_files()


@cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = request_schemas()[f"{name}.json"]
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def schema_errors(name: str, document: Any) -> list[str]:
    errors = sorted(_validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}" for e in errors[:3]]


def validate(name: str, document: Any, exchange: Exchange | None = None) -> None:
    problems = schema_errors(name, document)
    if problems:
        raise CheckFailed(f"a body valid against {name}.json", "; ".join(problems), exchange=exchange)


def expect_status(exchange: Exchange, *statuses: int) -> None:
    if exchange.status not in statuses:
        want = " or ".join(str(s) for s in statuses)
        raise CheckFailed(f"status {want}", f"{exchange.status}: {exchange.body[:300]!r}", exchange=exchange)


def ok_json(exchange: Exchange, schema: str | None = None, status: int = 200) -> Any:
    expect_status(exchange, status)
    content_type = exchange.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "application/json":
        raise CheckFailed("Content-Type application/json", repr(content_type), exchange=exchange)
    body = exchange.json()
    if schema is not None:
        validate(schema, body, exchange)
    return body


def error_code(exchange: Exchange) -> str | None:
    """The envelope's ``code``, or None when the body is not an error envelope."""
    try:
        body = exchange.json()
    except CheckFailed:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def expect_error(exchange: Exchange, codes: tuple[str, ...], *, param: str | None = None, param_prefix: bool = False) -> dict[str, Any]:
    """The response is an error envelope with one of ``codes`` at the code's bound status."""
    statuses = sorted({ERROR_CODES[c].status for c in codes})
    if exchange.status not in statuses:
        raise CheckFailed(f"status {' or '.join(map(str, statuses))} with code {' or '.join(codes)}", f"{exchange.status}: {exchange.body[:300]!r}", exchange=exchange)
    body = exchange.json()
    validate("ErrorEnvelope", body, exchange)
    error = body["error"]
    if error.get("code") not in codes:
        raise CheckFailed(f"error code {' or '.join(codes)}", f"{error.get('code')!r} ({error.get('message')!r})", exchange=exchange)
    if param is not None:
        seen = error.get("param")
        good = seen == param or (param_prefix and isinstance(seen, str) and seen.startswith(param + "."))
        if not good:
            raise CheckFailed(f"param {param!r}", f"param {seen!r}", exchange=exchange)
    return dict(error)
