"""inference: what a server does with each request field (unknown refused, gated refused, metadata accepted)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from llmos_std.parameters import DISPOSITIONS, disposition_of

from conformance.bodies import CAPABILITY_OF, SCHEMA_OF, minimal_body
from conformance.checks.core.errors import SCALARS
from conformance.context import Context
from conformance.judging import expect_error, ok_json, request_schemas
from conformance.properties import run_property
from conformance.registry import check
from conformance.traffic import available_ops, post, texts_of
from conformance.verdicts import CheckFailed, CheckOutcome, Failures, Skip

_FIELD_NAMES = st.from_regex(r"[a-z][a-z_]{2,14}", fullmatch=True) | st.sampled_from(["frobnicate", "top_k", "min_p", "repetition_penalty", "guided_json", "mirostat"])


@check("unknown_field_refused")
def unknown_field_refused(ctx: Context) -> CheckOutcome:
    ops = available_ops(ctx)
    if not ops:
        raise Skip("no claimed inference or embeddings operation")
    examples = st.tuples(st.sampled_from(ops), _FIELD_NAMES, SCALARS)

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
    "functions": [{"name": "f", "parameters": {"type": "object"}}], "function_call": "auto", "service_tier": "priority",
    "reasoning_effort": "high", "verbosity": "high", "modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"},
    "prediction": {"type": "content", "content": "x"}, "web_search_options": {}, "moderation": {"categories": ["hate"]},
}
"""A non-neutral, schema-valid value for each capability-gated field."""


@check("gated_field_refused")
def gated_field_refused(ctx: Context) -> CheckOutcome:
    count = 0
    undeclared: list[str] = []
    with Failures() as failures:
        for op in available_ops(ctx):
            model = ctx.model(CAPABILITY_OF[op])
            caps = ctx.plan.declared_capabilities(model)
            if caps is None:
                undeclared.append(str(model["id"]))
                continue
            for row in DISPOSITIONS:
                if row.operation != op or row.disposition != "capability-gated" or row.capability in caps:
                    continue
                body = {**minimal_body(op, model["id"]), row.field: GATED_VALUES[row.field]}
                count += 1
                with failures.each():
                    expect_error(post(ctx, op, body), ("unsupported_parameter",), param=row.field)
    if not count:
        if undeclared:
            raise Skip(f"the target declares no capabilities for {', '.join(map(repr, undeclared))}, so it had no way to say which gated fields they lack")
        raise Skip("every picked model has every gated capability")
    return CheckOutcome(examples=count, triggered=count)


METADATA_VALUES: dict[str, Any] = {
    "user": "llmos-conformance", "metadata": {"k": "v"}, "store": False, "prompt_cache_key": "llmos-conformance-cache",
    "prompt_cache_retention": "in-memory", "prompt_cache_options": {}, "safety_identifier": "llmos-conformance-user",
}


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


NEUTRAL_CHAT: dict[str, Any] = {"parallel_tool_calls": False, "modalities": ["text"], "service_tier": "auto", "tools": [], "tool_choice": "none", "logprobs": False}
"""Values OpenAI clients send that ask for nothing: every model accepts them (LLMOS-PARAM-004)."""


@check("neutral_values_accepted")
def neutral_values_accepted(ctx: Context) -> CheckOutcome:
    count = 0
    with Failures() as failures:
        if "create_chat_completion" in available_ops(ctx):
            model = ctx.model("chat")["id"]
            for field, value in NEUTRAL_CHAT.items():
                count += 1
                with failures.each():
                    ok_json(post(ctx, "create_chat_completion", {**minimal_body("create_chat_completion", model), field: value}), "ChatCompletionResponse")
        if "create_embedding" in available_ops(ctx):
            model_obj = ctx.model("embeddings")
            native = model_obj.get("dimensions")
            if isinstance(native, int):  # the LLMOS model list states it; a plain server cannot be asked this
                count += 1
                with failures.each():
                    ok_json(post(ctx, "create_embedding", {"model": model_obj["id"], "input": "hello", "dimensions": native}), "EmbeddingResponse")
    if not count:
        raise Skip("no claimed chat or embeddings operation with a model")
    return CheckOutcome(examples=count, triggered=count)
