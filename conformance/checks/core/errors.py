"""core: the error envelope and its codes, malformed and invalid requests, media types, leaks, unknown routes."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
from hypothesis import strategies as st

from llmos_std.errors import ERROR_CODES
from llmos_std.operations import allowed_methods

from conformance.bodies import CAPABILITY_OF, PATH_OF, SCHEMA_OF, minimal_body
from conformance.context import Context
from conformance.judging import expect_error, request_schemas, validate
from conformance.properties import run_property
from conformance.registry import check
from conformance.traffic import available_ops, first_op, post
from conformance.verdicts import CheckFailed, CheckOutcome, Failures, Skip
from conformance.wire import Exchange


def _error_triggers(ctx: Context) -> list[Exchange]:
    """Requests that must fail, one per kind of error the core profile defines."""
    exchanges = [
        ctx.wire.request("GET", f"/v1/{ctx.name('absent-route')}"),
        ctx.wire.request("GET", f"/llmos/v1/{ctx.name('absent-route')}"),
        ctx.wire.request("DELETE", "/v1/models"),
    ]
    for op in available_ops(ctx):
        model = ctx.model(CAPABILITY_OF[op])["id"]
        exchanges += [
            post(ctx, op, minimal_body(op, ctx.name("absent"))),
            ctx.wire.request("POST", PATH_OF[op], content=b'{"model": ', content_type="application/json"),
            ctx.wire.request("POST", PATH_OF[op], content=b"[1, 2]", content_type="application/json"),
            ctx.wire.request("POST", PATH_OF[op], content=b"model=x", content_type="application/x-www-form-urlencoded"),
            post(ctx, op, {**minimal_body(op, model), "model": 17}),
            post(ctx, op, {"model": model}),
            post(ctx, op, {**minimal_body(op, model), ctx.name("field").replace("-", "_"): 1}),
        ]
    return exchanges


@check("error_envelope_shape")
def error_envelope_shape(ctx: Context) -> CheckOutcome:
    exchanges = _error_triggers(ctx)
    with Failures() as failures:
        for exchange in exchanges:
            with failures.each():
                if exchange.status < 400:
                    raise CheckFailed("an error status for an invalid request", f"{exchange.status}", exchange=exchange)
                body = exchange.json()
                validate("ErrorEnvelope", body, exchange)
                code = body["error"].get("code")
                if code is not None and code not in ERROR_CODES:
                    raise CheckFailed("code from the error-code table or null", repr(code), exchange=exchange)
    return CheckOutcome(examples=len(exchanges), triggered=len(exchanges))


@check("error_code_status_binding")
def error_code_status_binding(ctx: Context) -> CheckOutcome:
    exchanges = _error_triggers(ctx)
    bound = 0
    with Failures() as failures:
        for exchange in exchanges:
            try:
                body = json.loads(exchange.body)
                error = body["error"]
                code = error["code"]
            except (ValueError, KeyError, TypeError):
                continue  # the envelope itself is judged by error_envelope_shape
            spec = ERROR_CODES.get(code) if isinstance(code, str) else None
            if spec is None:
                continue
            bound += 1
            with failures.each():
                if (exchange.status, error.get("type")) != (spec.status, spec.type):
                    raise CheckFailed(f"{code} with status {spec.status} and type {spec.type}", f"status {exchange.status} and type {error.get('type')!r}", exchange=exchange)
    if not bound:
        raise Skip("no error response carried a code from the table")
    return CheckOutcome(examples=len(exchanges), triggered=bound)


@check("malformed_json_400")
def malformed_json_400(ctx: Context) -> CheckOutcome:
    op = first_op(ctx)
    valid = json.dumps(minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"])).encode()
    broken = st.one_of(
        st.integers(1, len(valid) - 1).map(lambda i: valid[:i]),
        st.sampled_from([b"{'model': 'x'}", b"{,}", b"NaN", b'{"a": 1,}', b"\xff\xfe", b"{\"model\": \"x\"} trailing"]),
        st.binary(min_size=1, max_size=20).filter(lambda b: not _is_json(b)),
    )

    def prop(body: bytes) -> bool:
        if _is_json(body):
            return False
        expect_error(ctx.wire.request("POST", PATH_OF[op], content=body, content_type="application/json"), ("invalid_json",))
        return True

    return run_property(ctx, broken, prop, examples=ctx.settings.max_examples, what="malformed JSON bodies")


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


SCALARS = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
_INVALID_CANDIDATES: st.SearchStrategy[Any] = SCALARS | st.lists(SCALARS, max_size=3) | st.just({})


def _property_schema(op: str, field: str) -> tuple[dict[str, Any], dict[str, Any]]:
    root = request_schemas()[SCHEMA_OF[op] + ".json"]
    return root["properties"][field], root


def _invalid_for(op: str, field: str, value: Any) -> bool:
    sub, root = _property_schema(op, field)
    schema = {**sub, "$defs": root.get("$defs", {})}
    return not jsonschema.Draft202012Validator(schema).is_valid(value)


@check("invalid_requests_400")
def invalid_requests_400(ctx: Context) -> CheckOutcome:
    ops = available_ops(ctx)
    if not ops:
        raise Skip("no claimed inference or embeddings operation")
    cases = st.sampled_from(ops).flatmap(lambda op: st.tuples(st.just(op), st.sampled_from(sorted(request_schemas()[SCHEMA_OF[op] + ".json"]["properties"]))))
    examples = st.tuples(cases, _INVALID_CANDIDATES, st.booleans())

    def prop(example: tuple[tuple[str, str], Any, bool]) -> bool:
        (op, field), value, drop = example
        root = request_schemas()[SCHEMA_OF[op] + ".json"]
        body = minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"])
        if drop and field in root.get("required", []):
            body.pop(field, None)
            expect_error(post(ctx, op, body), ("missing_required_parameter",), param=field)
            return True
        if not _invalid_for(op, field, value):
            return False
        body[field] = value
        expect_error(post(ctx, op, body), ("invalid_value", "missing_required_parameter", "invalid_request"), param=field, param_prefix=True)
        return True

    return run_property(ctx, examples, prop, examples=ctx.settings.max_examples * 2, min_triggered=2, what="invalid field values")


@check("wrong_content_type_415")
def wrong_content_type_415(ctx: Context) -> CheckOutcome:
    op = first_op(ctx)
    body = json.dumps(minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"])).encode()
    types = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None]
    with Failures() as failures:
        for content_type in types:
            with failures.each():
                expect_error(ctx.wire.request("POST", PATH_OF[op], content=body, content_type=content_type), ("unsupported_media_type",))
    return CheckOutcome(examples=len(types), triggered=len(types))


_LEAKS = (
    (re.compile(r"Traceback \(most recent call last\)"), "a Python traceback"),
    (re.compile(r"File \"[^\"]+\", line \d+"), "a traceback frame"),
    (re.compile(r"\bat [\w.$]+\([\w]+\.(java|kt|scala):\d+\)"), "a JVM stack frame"),
    (re.compile(r"(?:^|[\s'\"(=])/(?:usr|home|opt|var|srv|app|root|tmp|Users)/\S+"), "a server file-system path"),
    (re.compile(r"\b[\w/\\.-]+\.(?:py|pyc|js|go|rs|java|rb)\b(?::\d+)?"), "a source file name"),
    (re.compile(r"[A-Za-z]:\\\\?[\w\\]+"), "a Windows path"),
    (re.compile(r"\b[A-Z][A-Za-z0-9]*(?:Error|Exception)\b"), "an exception class name"),
)


def leak_in(message: str) -> str | None:
    for pattern, what in _LEAKS:
        found = pattern.search(message)
        if found:
            return f"{what}: {found.group(0)!r}"
    return None


@check("no_stack_traces")
def no_stack_traces(ctx: Context) -> CheckOutcome:
    exchanges = _error_triggers(ctx)
    judged = 0
    # Model ids are public (the model list shows them), and some servers list file-system paths as ids:
    # echoing one is no leak, so they are masked before the message is scanned.
    public = sorted({str(m["id"]) for m in ctx.plan.model_list}, key=len, reverse=True)
    with Failures() as failures:
        for exchange in exchanges:
            try:
                message = json.loads(exchange.body)["error"]["message"]
            except (ValueError, KeyError, TypeError):
                message = exchange.body.decode("utf-8", errors="replace")
            judged += 1
            leak = leak_in(_masked(str(message), public))
            with failures.each():
                if leak:
                    raise CheckFailed("an error message without traces, paths or exception class names", leak, exchange=exchange)
    return CheckOutcome(examples=len(exchanges), triggered=judged)


def _masked(message: str, public: list[str]) -> str:
    for text in public:
        message = message.replace(text, "<model>")
    return message


@check("unknown_route_envelope")
def unknown_route_envelope(ctx: Context) -> CheckOutcome:
    cases: list[tuple[str, str, str]] = [
        ("GET", f"/v1/{ctx.name('absent-route')}", "not_found"),
        ("GET", f"/llmos/v1/{ctx.name('absent-route')}", "not_found"),
        ("DELETE", "/v1/models", "method_not_allowed"),
        ("PUT", "/llmos/v1/health/live", "method_not_allowed"),
    ]
    for op in available_ops(ctx):
        cases.append(("GET", PATH_OF[op], "method_not_allowed"))
    with Failures() as failures:
        for method, path, code in cases:
            with failures.each():
                exchange = ctx.wire.request(method, path)
                expect_error(exchange, (code,))
                if code == "method_not_allowed":
                    _expect_allow(exchange, method, allowed_methods(path, ctx.plan.claimed))
    return CheckOutcome(examples=len(cases), triggered=len(cases))


def _expect_allow(exchange: Exchange, refused: str, defined: tuple[str, ...]) -> None:
    """RFC 9110: a 405 lists the target's methods in ``Allow``; more (OPTIONS, HEAD) may be listed, never the refused one."""
    listed = {m.strip().upper() for m in exchange.headers.get("allow", "").split(",") if m.strip()}
    if not set(defined) <= listed or refused in listed:
        raise CheckFailed(f"Allow listing {', '.join(defined)} and not {refused}", f"Allow: {exchange.headers.get('allow')!r}", exchange=exchange)
