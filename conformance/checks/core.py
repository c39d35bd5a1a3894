"""core: discovery, health, the model list, the error envelope, input validation and dispositions."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
from hypothesis import strategies as st

from llmos_std.errors import ERROR_CODES
from llmos_std.models import is_model_id
from llmos_std.operations import VERSION_HEADER
from llmos_std.parameters import DISPOSITIONS, disposition_of
from llmos_std.profiles import closure

from conformance.context import Context
from conformance.judging import expect_error, expect_status, ok_json, request_schemas, validate
from conformance.properties import run_property
from conformance.registry import check
from conformance.traffic import CAPABILITY_OF, PATH_OF, SCHEMA_OF, available_ops, first_op, minimal_body, post, texts_of
from conformance.verdicts import CheckFailed, CheckOutcome, Skip
from conformance.wire import Exchange


@check("discovery_document_valid")
def discovery_document_valid(ctx: Context) -> CheckOutcome:
    exchange = ctx.wire.request("GET", "/.well-known/llmos", auth=None)
    ok_json(exchange, "DiscoveryDocument")
    return CheckOutcome()


@check("discovery_claims_consistent")
def discovery_claims_consistent(ctx: Context) -> CheckOutcome:
    exchange = ctx.wire.request("GET", "/.well-known/llmos", auth=None)
    body = ok_json(exchange, "DiscoveryDocument")
    if not re.fullmatch(r"\d+\.\d+", str(body.get("standard_version"))):
        raise CheckFailed("standard_version MAJOR.MINOR", repr(body.get("standard_version")), exchange=exchange)
    claimed = body["profiles"]
    missing = [p for p in closure(claimed) if p not in claimed]
    if missing:
        raise CheckFailed("every profile a claimed profile depends on listed too", f"missing {missing}", exchange=exchange)
    return CheckOutcome()


@check("version_header_present")
def version_header_present(ctx: Context) -> CheckOutcome:
    want = ctx.plan.standard_version
    probes: list[tuple[str, str, dict[str, Any] | None]] = [("GET", "/v1/models", None), ("GET", "/llmos/v1/health/live", None), ("GET", f"/v1/{ctx.name('absent-route')}", None)]
    for op in available_ops(ctx):
        probes.append(("POST", PATH_OF[op], minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"])))
        probes.append(("POST", PATH_OF[op], {"model": ctx.name("absent")}))
    for method, path, body in probes:
        exchange = ctx.wire.request(method, path, json_body=body)
        seen = exchange.headers.get(VERSION_HEADER)
        if seen != want:
            raise CheckFailed(f"LLMOS-Version: {want}", f"{seen!r} on {method} {path} ({exchange.status})", exchange=exchange)
    return CheckOutcome(examples=len(probes), triggered=len(probes))


@check("declared_limits_enforced")
def declared_limits_enforced(ctx: Context) -> CheckOutcome:
    if ctx.plan.discovery is None:
        raise Skip("the target serves no discovery document, so declares no limits")
    probes: list[tuple[str, dict[str, Any], str]] = []
    ops = available_ops(ctx)
    gen = [op for op in ops if op != "create_embedding"]
    if gen:
        op = gen[0]
        base = minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"])
        if (n := ctx.limit("max_n")) is not None:
            probes.append((op, {**base, "n": n + 1}, "n"))
        if (s := ctx.limit("max_stop")) is not None:
            probes.append((op, {**base, "stop": [f"zz{i}" for i in range(s + 1)]}, "stop"))
        if (t := ctx.limit("max_tokens")) is not None:
            probes.append((op, {**base, "max_tokens": t + 1}, "max_tokens"))
        if (b := ctx.limit("max_batch")) is not None and "create_completion" in gen:
            probes.append(("create_completion", {**minimal_body("create_completion", ctx.model("text-generation")["id"]), "prompt": ["hi"] * (b + 1)}, "prompt"))
    if "create_embedding" in ops and (b := ctx.limit("max_batch")) is not None:
        probes.append(("create_embedding", {"model": ctx.model("embeddings")["id"], "input": ["hi"] * (b + 1)}, "input"))
    for op, body, param in probes:
        expect_error(post(ctx, op, body), ("limit_exceeded",), param=param)
    count = len(probes)
    size = ctx.limit("max_body_bytes")
    if size is not None and size <= 64 * 1024 * 1024 and ops:
        op = ops[0]
        filler = "x" * (size + 1)
        exchange = ctx.wire.request("POST", PATH_OF[op], content=json.dumps({**minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"]), "user": filler}).encode(), content_type="application/json")
        expect_error(exchange, ("payload_too_large",))
        count += 1
    if not count:
        raise Skip("no claimed operation to exceed a declared limit on")
    return CheckOutcome(examples=count, triggered=count)


@check("health_endpoints")
def health_endpoints(ctx: Context) -> CheckOutcome:
    for path in ("/llmos/v1/health/live", "/llmos/v1/health/ready"):
        exchange = ctx.wire.request("GET", path, auth=None)
        expect_status(exchange, 200, 503)
        body = exchange.json()
        validate("Health", body, exchange)
        if (exchange.status == 200) != (body["status"] == "ok"):
            raise CheckFailed("status ok with 200 and unavailable with 503", f"{exchange.status} with {body['status']!r}", exchange=exchange)
    return CheckOutcome(examples=2, triggered=2)


@check("ready_after_abuse")
def ready_after_abuse(ctx: Context) -> CheckOutcome:
    op = first_op(ctx)
    abuse = [b"{", b"\x00\xff\xfe", b"[]", json.dumps({"model": ctx.name("absent"), "prompt": 7}).encode(), b'{"model": ' + b"[" * 2000 + b"]" * 2000 + b"}"]
    for body in abuse:
        _tolerant(lambda: ctx.wire.request("POST", PATH_OF[op], content=body, content_type="application/json"))
    _tolerant(lambda: ctx.wire.request("GET", "/v1/" + "a" * 4000))
    exchange = ctx.wire.request("GET", "/llmos/v1/health/ready", auth=None)
    expect_status(exchange, 200)
    return CheckOutcome(examples=len(abuse) + 1, triggered=len(abuse) + 1)


def _tolerant(send: Any) -> None:
    """Abuse may be answered with anything, even a reset; only readiness afterwards is judged."""
    try:
        send()
    except CheckFailed:
        pass


@check("models_list_valid")
def models_list_valid(ctx: Context) -> CheckOutcome:
    body = ok_json(ctx.wire.request("GET", "/v1/models"), "ModelList")
    return CheckOutcome(examples=len(body["data"]), triggered=len(body["data"]))


@check("unknown_model_404")
def unknown_model_404(ctx: Context) -> CheckOutcome:
    ops = available_ops(ctx)
    if not ops:
        raise Skip("no claimed inference or embeddings operation")
    names = [ctx.name("absent"), ctx.name("absent") + "@1.0.0", ctx.name("absent") + "@sha256:" + "0" * 64]
    for model in ctx.plan.model_list[:1]:
        names += [f"{model['id']}@999.999.999", f"{model['id']}@sha256:{'f' * 64}"]
    for op in ops:
        for name in names:
            expect_error(post(ctx, op, minimal_body(op, name)), ("model_not_found",))
    return CheckOutcome(examples=len(ops) * len(names), triggered=len(ops) * len(names))


@check("model_id_syntax")
def model_id_syntax(ctx: Context) -> CheckOutcome:
    ops = available_ops(ctx)
    if not ops:
        raise Skip("no claimed inference or embeddings operation")
    count = 0
    for op in ops:
        model = ctx.model(CAPABILITY_OF[op])
        name = str(model["id"]).partition("@")[0]
        for ref in (name, f"{name}@{model.get('version')}", f"{name}@{model.get('digest')}"):
            exchange = post(ctx, op, minimal_body(op, ref))
            expect_status(exchange, 200)
            if exchange.served_digest != model.get("digest"):
                raise CheckFailed(f"served by the active version {model.get('digest')}", f"LLMOS-Model-Digest {exchange.served_digest!r}", exchange=exchange)
            count += 1
    return CheckOutcome(examples=count, triggered=count)


@check("malformed_model_id")
def malformed_model_id(ctx: Context) -> CheckOutcome:
    op = first_op(ctx)
    ids = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=20).filter(lambda s: not is_model_id(s)) | st.sampled_from(["UPPER", "a@b", "a@sha256:xyz", "-lead", "a b", "../x"])

    def prop(model_id: str) -> bool:
        expect_error(post(ctx, op, minimal_body(op, model_id)), ("invalid_model_id", "model_not_found"))
        return True

    return run_property(ctx, ids, prop, examples=ctx.settings.max_examples, what="malformed model ids")


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
    for exchange in exchanges:
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


_SCALARS = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
_INVALID_CANDIDATES: st.SearchStrategy[Any] = _SCALARS | st.lists(_SCALARS, max_size=3) | st.just({})


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
    for content_type in types:
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
    for exchange in exchanges:
        try:
            message = json.loads(exchange.body)["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exchange.body.decode("utf-8", errors="replace")
        judged += 1
        leak = leak_in(str(message))
        if leak:
            raise CheckFailed("an error message without traces, paths or exception class names", leak, exchange=exchange)
    return CheckOutcome(examples=len(exchanges), triggered=judged)


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
    for method, path, code in cases:
        expect_error(ctx.wire.request(method, path), (code,))
    return CheckOutcome(examples=len(cases), triggered=len(cases))


_FIELD_NAMES = st.from_regex(r"[a-z][a-z_]{2,14}", fullmatch=True) | st.sampled_from(["frobnicate", "top_k", "min_p", "repetition_penalty", "guided_json", "mirostat"])


@check("unknown_field_refused")
def unknown_field_refused(ctx: Context) -> CheckOutcome:
    ops = available_ops(ctx)
    if not ops:
        raise Skip("no claimed inference or embeddings operation")
    examples = st.tuples(st.sampled_from(ops), _FIELD_NAMES, _SCALARS)

    def prop(example: tuple[str, str, Any]) -> bool:
        op, field, value = example
        if disposition_of(op, field) is not None or field in request_schemas()[SCHEMA_OF[op] + ".json"]["properties"]:
            return False
        body = {**minimal_body(op, ctx.model(CAPABILITY_OF[op])["id"]), field: value}
        expect_error(post(ctx, op, body), ("unsupported_parameter",), param=field)
        return True

    return run_property(ctx, examples, prop, examples=ctx.settings.max_examples, min_triggered=2, what="unknown fields")


GATED_VALUES: dict[str, Any] = {
    "logprobs": True, "logit_bias": {"50": 1.0}, "presence_penalty": 1.0, "frequency_penalty": 1.0,
    "response_format": {"type": "json_object"}, "top_logprobs": 2, "tools": [{"type": "function", "function": {"name": "f"}}],
    "tool_choice": "auto", "parallel_tool_calls": True, "echo": True, "suffix": "x", "best_of": 2, "dimensions": 8,
}
"""A non-neutral, schema-valid value for each capability-gated field."""


@check("gated_field_refused")
def gated_field_refused(ctx: Context) -> CheckOutcome:
    count = 0
    for op in available_ops(ctx):
        model = ctx.model(CAPABILITY_OF[op])
        caps = set(model.get("capabilities") or [])
        for row in DISPOSITIONS:
            if row.operation != op or row.disposition != "capability-gated" or row.capability in caps:
                continue
            body = {**minimal_body(op, model["id"]), row.field: GATED_VALUES[row.field]}
            expect_error(post(ctx, op, body), ("unsupported_parameter",), param=row.field)
            count += 1
    if not count:
        raise Skip("every picked model has every gated capability")
    return CheckOutcome(examples=count, triggered=count)


METADATA_VALUES: dict[str, Any] = {"user": "llmos-conformance", "metadata": {"k": "v"}, "store": False}


@check("metadata_fields_accepted")
def metadata_fields_accepted(ctx: Context) -> CheckOutcome:
    count = 0
    for op in available_ops(ctx):
        model = ctx.model(CAPABILITY_OF[op])
        base = minimal_body(op, model["id"])
        if op != "create_embedding":
            base.update(temperature=0, seed=ctx.settings.seed)
        plain = post(ctx, op, base)
        expected = ok_json(plain)
        for row in DISPOSITIONS:
            if row.operation != op or row.disposition != "metadata":
                continue
            exchange = post(ctx, op, {**base, row.field: METADATA_VALUES[row.field]})
            answer = ok_json(exchange)
            count += 1
            if op == "create_embedding" or model.get("determinism") == "none":
                continue
            if texts_of(op, answer) != texts_of(op, expected):
                raise CheckFailed(f"the same output with {row.field} as without", f"{texts_of(op, answer)!r} vs {texts_of(op, expected)!r}", exchange=exchange)
    if not count:
        raise Skip("no claimed operation has metadata fields")
    return CheckOutcome(examples=count, triggered=count)
