"""core: schema-driven fuzzing. Valid requests generated from the exported request schemas never get a 5xx.

Every claimed inference operation gets requests generated from its own request schema (empty and
unicode strings, long and odd stop lists, boundary numbers, every optional field, token-id arrays
where the schema allows them), tightened to the declared limits and to a small ``max_tokens`` so
the run stays cheap. A 200 must match the response schema (streamed: every chunk, and no error
event); a 4xx must be an error envelope. Failing examples are shrunk by hypothesis.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import jsonschema
from hypothesis import strategies as st

from llmos_std.sse import DataEvent

from conformance.bodies import CAPABILITY_OF, CHUNK_OF, PATH_OF, RESPONSE_OF, SCHEMA_OF
from conformance.context import Context
from conformance.judging import request_schemas, schema_errors
from conformance.properties import run_property
from conformance.registry import check
from conformance.strategies import from_schema
from conformance.traffic import available_ops
from conformance.verdicts import CheckFailed, CheckOutcome, Skip
from conformance.wire import Exchange

FUZZ_MAX_TOKENS = 6
"""Generated requests ask for at most this many tokens: the property is about status and shape, not length."""
FUZZ_MAX_N = 2
COUNT_FIELDS = {"max_tokens": FUZZ_MAX_TOKENS, "max_completion_tokens": FUZZ_MAX_TOKENS, "n": FUZZ_MAX_N, "best_of": FUZZ_MAX_N, "top_logprobs": 2}
"""Integer fields whose generated values are capped (after the declared limit) to keep generation small."""


def _cap(node: Any, kind: str, keyword: str, cap: int) -> None:
    """Lower ``keyword`` (``maximum`` or ``maxItems``) to ``cap`` in every ``kind`` schema of ``node`` and its alternatives."""
    if not isinstance(node, dict):
        return
    if node.get("type") == kind:
        node[keyword] = min(node.get(keyword, cap), cap)
        if keyword == "maximum":
            node.pop("exclusiveMaximum", None)
    for key in ("anyOf", "oneOf"):
        for sub in node.get(key, []):
            _cap(sub, kind, keyword, cap)


def bounded_schema(ctx: Context, op: str, model: str) -> dict[str, Any]:
    """The operation's request schema, pinned to the picked model and tightened to the declared limits."""
    schema = copy.deepcopy(request_schemas()[SCHEMA_OF[op] + ".json"])
    props: dict[str, Any] = schema.get("properties", {})
    props["model"] = {"const": model}
    for name, cap in COUNT_FIELDS.items():
        if name in props:
            limit = ctx.limit("max_n" if name in ("n", "best_of") else "max_tokens")
            _cap(props[name], "integer", "maximum", min(cap, limit) if limit is not None else cap)
    if "stop" in props:
        _cap(props["stop"], "array", "maxItems", ctx.limit("max_stop") or 4)
    for batch in ("prompt", "input"):
        if batch in props:
            _cap(props[batch], "array", "maxItems", min(ctx.limit("max_batch") or 4, 4))
    return schema


@cache
def _request_validator(name: str) -> jsonschema.protocols.Validator:
    schema = request_schemas()[name + ".json"]
    return jsonschema.validators.validator_for(schema)(schema)


def _judge(op: str, exchange: Exchange, streamed: bool) -> bool:
    """Raise for a 5xx, a 200 off its schema, an in-stream error or a 4xx off the envelope; True for a 200."""
    if exchange.status >= 500:
        if exchange.status == 503 and "retry-after" in exchange.headers:
            return False  # overload, governed by LLMOS-INF-013
        raise CheckFailed("no 5xx for a schema-valid request within the declared limits", f"{exchange.status}: {exchange.body[:300]!r}", exchange=exchange)
    if exchange.status >= 400:
        try:
            body = json.loads(exchange.body)
        except ValueError:
            body = None
        problems = schema_errors("ErrorEnvelope", body) if body is not None else ["not JSON"]
        if problems:
            raise CheckFailed("a 4xx carrying an error envelope", f"{exchange.status}: {'; '.join(problems)}: {exchange.body[:200]!r}", exchange=exchange)
        return False
    if exchange.status != 200:
        raise CheckFailed("200, or a 4xx error envelope", f"{exchange.status}", exchange=exchange)
    if not streamed or op not in CHUNK_OF:
        try:
            body = json.loads(exchange.body)
        except ValueError:
            raise CheckFailed(f"a body valid against {RESPONSE_OF[op]}.json", f"not JSON: {exchange.body[:200]!r}", exchange=exchange) from None
        problems = schema_errors(RESPONSE_OF[op], body)
        if problems:
            raise CheckFailed(f"a body valid against {RESPONSE_OF[op]}.json", "; ".join(problems), exchange=exchange)
        return True
    if exchange.stream_error is not None:
        raise CheckFailed("a well-formed event stream", exchange.stream_error, exchange=exchange)
    for event in exchange.events:
        if not isinstance(event, DataEvent):
            continue
        try:
            chunk = json.loads(event.data)
        except ValueError:
            raise CheckFailed("every event a JSON chunk", f"{event.data[:200]!r}", exchange=exchange) from None
        if isinstance(chunk, dict) and "error" in chunk:
            raise CheckFailed("a valid request served to the end", f"an error event after the 200: {event.data[:300]}", exchange=exchange)
        problems = schema_errors(CHUNK_OF[op], chunk)
        if problems:
            raise CheckFailed(f"every chunk valid against {CHUNK_OF[op]}.json", "; ".join(problems), exchange=exchange)
    return True


def _requests(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Whole bodies with any optional fields, and bodies with one optional field at a time.

    Many optional fields together are mostly refused (a gated field is enough), so the single-field
    half keeps most examples reaching the model and makes a failure point at its field.
    """
    props: dict[str, Any] = schema.get("properties", {})
    required = {name: from_schema(props[name], schema) for name in schema.get("required", [])}
    optional = sorted(name for name in props if name not in required)
    single = st.sampled_from(optional).flatmap(
        lambda name: st.fixed_dictionaries({**required, name: from_schema(props[name], schema)})
    ) if optional else st.fixed_dictionaries(required)
    return st.one_of(st.fixed_dictionaries(required), single, from_schema(schema))


@check("valid_requests_never_5xx")
def valid_requests_never_5xx(ctx: Context) -> CheckOutcome:
    ops = available_ops(ctx)
    if not ops:
        raise Skip("no claimed inference or embeddings operation with a model to send it to")
    per_op = {op: _requests(bounded_schema(ctx, op, str(ctx.model(CAPABILITY_OF[op])["id"]))) for op in ops}
    requests = st.sampled_from(ops).flatmap(lambda op: st.tuples(st.just(op), per_op[op]))

    def prop(example: tuple[str, dict[str, Any]]) -> bool:
        op, body = example
        if not _request_validator(SCHEMA_OF[op]).is_valid(body):
            return False  # the generator's subset of JSON Schema let an invalid body through
        streamed = body.get("stream") is True
        try:
            return _judge(op, ctx.wire.request("POST", PATH_OF[op], json_body=body, stream=streamed), streamed)
        except CheckFailed as exc:
            exc.example = body  # the request itself, so the report shows what was sent
            raise

    return run_property(ctx, requests, prop, examples=ctx.settings.max_examples * 2 * len(ops), min_triggered=1, what="schema-valid requests answered with 200")
