"""Structured outputs (LLMOS-SO-001..004): generated strict-subset schemas, refusals, streams."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from hypothesis import strategies as st

from conformance.context import Context
from conformance.judging import expect_error, ok_json
from conformance.properties import run_property
from conformance.registry import check
from conformance.schema_strategies import strict_schemas
from conformance.streams import open_stream
from conformance.traffic import PROMPTS, feature_budget, feature_model, post
from conformance.verdicts import CheckFailed, CheckOutcome, Skip
from conformance.wire import Exchange

OP = "create_chat_completion"


def structured_body(ctx: Context, model: str, prompt: str, response_format: dict[str, Any], seed: int) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "response_format": response_format,
            "max_tokens": feature_budget(ctx), "temperature": 0, "seed": seed}


def schema_format(schema: Any) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}


_STARTS = {"object": "{", "array": "[", "string": '"', "boolean": "tf", "null": "n", "integer": "-0123456789", "number": "-0123456789"}


def first_characters(schema: Any) -> set[str] | None:
    """The characters a JSON text valid against ``schema`` can begin with; None when the kit cannot tell."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return {json.dumps(schema["const"])[0]}
    if "enum" in schema:
        return {json.dumps(value)[0] for value in schema["enum"]}
    if "anyOf" in schema:
        parts = [first_characters(sub) for sub in schema["anyOf"]]
        return None if any(p is None for p in parts) else set().union(*(p for p in parts if p is not None))
    kind = schema.get("type")
    return set(_STARTS[kind]) if isinstance(kind, str) and kind in _STARTS else None


def judge_content(exchange: Exchange, answer: dict[str, Any], schema: Any, what: str) -> bool:
    """Whether the chat answer counted (not cut by length); raises when its content breaks the schema."""
    choice = answer["choices"][0]
    return judge_json_text(exchange, choice["message"].get("content"), schema, what, cut=choice.get("finish_reason") == "length")


def judge_json_text(exchange: Exchange, content: Any, schema: Any, what: str, *, cut: bool) -> bool:
    """Whether a complete answer was judged; raises when it breaks the schema.

    A cut answer need not parse, but it is still the beginning of a valid one: its first character
    is one a valid JSON text can begin with (free text from a server that ignored the schema is not)."""
    if cut:
        allowed = first_characters(schema)
        if allowed is not None and isinstance(content, str) and content and content[0] not in allowed:
            raise CheckFailed(f"{what}: content cut short still beginning a valid JSON text ({''.join(sorted(allowed))})", repr(content)[:300], exchange=exchange)
        return False
    try:
        value = json.loads(content) if isinstance(content, str) else None
    except ValueError:
        raise CheckFailed(f"{what}: content that is a JSON text", repr(content)[:300], exchange=exchange) from None
    if value is None and content != "null":
        raise CheckFailed(f"{what}: content that is a JSON text", repr(content)[:300], exchange=exchange)
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(value)]
    if errors:
        raise CheckFailed(f"{what}: content valid against {json.dumps(schema)[:200]}", f"{content!r}: {errors[0]}"[:400], exchange=exchange)
    return True


@check("strict_outputs_validate")
def strict_outputs_validate(ctx: Context) -> CheckOutcome:
    model = feature_model(ctx, "structured-outputs")["id"]
    cases = st.tuples(strict_schemas(), st.sampled_from(PROMPTS), st.integers(0, 2**31 - 1))

    def prop(case: tuple[dict[str, Any], str, int]) -> bool:
        schema, prompt, seed = case
        exchange = post(ctx, OP, structured_body(ctx, model, prompt, schema_format(schema), seed))
        return judge_content(exchange, ok_json(exchange, "ChatCompletionResponse"), schema, "strict json_schema")

    return run_property(ctx, cases, prop, examples=ctx.settings.generation_examples * 2, what="strict schemas")


@check("json_object_output")
def json_object_output(ctx: Context) -> CheckOutcome:
    model = feature_model(ctx, "structured-outputs")["id"]
    cases = st.tuples(st.sampled_from(PROMPTS), st.integers(0, 2**31 - 1))

    def prop(case: tuple[str, int]) -> bool:
        prompt, seed = case
        exchange = post(ctx, OP, structured_body(ctx, model, prompt, {"type": "json_object"}, seed))
        answer = ok_json(exchange, "ChatCompletionResponse")
        content = answer["choices"][0]["message"].get("content")
        if answer["choices"][0].get("finish_reason") == "length":
            # Cut short it need not parse, but it is the beginning of an object.
            if not isinstance(content, str) or not content.lstrip().startswith("{"):
                raise CheckFailed("json_object: content beginning an object, even when cut by length", repr(content)[:300], exchange=exchange)
            return True
        return judge_content(exchange, answer, {"type": "object"}, "json_object")

    return run_property(ctx, cases, prop, examples=ctx.settings.generation_examples, what="json_object answers")


@check("structured_refusals")
def structured_refusals(ctx: Context) -> CheckOutcome:
    model = feature_model(ctx, "structured-outputs")["id"]
    invalid = post(ctx, OP, structured_body(ctx, model, PROMPTS[0], schema_format({"type": "nonsense"}), 0))
    expect_error(invalid, ("invalid_value",), param="response_format", param_prefix=True)
    # A look-around: enforced (and then honoured), or refused as unenforceable; never answered unconstrained.
    schema = {"type": "string", "pattern": "^(?=a)[a-z]{1,4}$"}
    exchange = post(ctx, OP, structured_body(ctx, model, PROMPTS[0], schema_format(schema), 0))
    if exchange.status == 200:
        judge_content(exchange, ok_json(exchange, "ChatCompletionResponse"), schema, "a schema the server says it enforces")
    else:
        expect_error(exchange, ("schema_unsupported",), param="response_format", param_prefix=True)
    return CheckOutcome(examples=2, triggered=2)


@check("structured_stream_equal")
def structured_stream_equal(ctx: Context) -> CheckOutcome:
    picked = feature_model(ctx, "structured-outputs")
    if picked.get("determinism") not in ("sequential", "batch_invariant"):
        raise Skip("the structured-outputs model claims no sequential or batch_invariant determinism")
    cases = st.tuples(strict_schemas(), st.sampled_from(PROMPTS), st.integers(0, 2**31 - 1), st.sampled_from([0, 1.0]))

    def prop(case: tuple[dict[str, Any], str, int, float]) -> bool:
        schema, prompt, seed, temperature = case
        body = {**structured_body(ctx, picked["id"], prompt, schema_format(schema), seed), "temperature": temperature}
        first = ok_json(post(ctx, OP, body), "ChatCompletionResponse")
        again_exchange = post(ctx, OP, body)
        again = ok_json(again_exchange, "ChatCompletionResponse")
        text = first["choices"][0]["message"].get("content") or ""
        if (again["choices"][0]["message"].get("content") or "") != text:
            raise CheckFailed("the same seeded structured request giving the same content", f"{text!r} then {again['choices'][0]['message'].get('content')!r}", exchange=again_exchange)
        stream = open_stream(ctx, OP, body)
        if stream.texts.get(0, "") != text:
            raise CheckFailed(f"the stream reassembling to the unstreamed content {text!r}", repr(stream.texts.get(0, "")), exchange=stream.exchange)
        return True

    return run_property(ctx, cases, prop, examples=ctx.settings.generation_examples, what="seeded structured requests")
