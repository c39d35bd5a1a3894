"""Tool calling (LLMOS-TOOL-001..005): generated parameter schemas, every tool_choice, streams, history."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
from hypothesis import strategies as st

from conformance.context import Context
from conformance.judging import error_code, expect_error, ok_json
from conformance.properties import run_property
from conformance.registry import check
from conformance.schema_strategies import object_schemas
from conformance.streams import open_stream
from conformance.traffic import PROMPTS, feature_budget, feature_model, post
from conformance.verdicts import CheckFailed, CheckOutcome, Skip
from conformance.wire import Exchange

OP = "create_chat_completion"
FIXED = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 8}}, "required": ["city"], "additionalProperties": False}


def tool(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": f"the {name} function", "parameters": parameters, "strict": True}}


def tool_body(ctx: Context, model: str, prompt: str, tools: list[dict[str, Any]], choice: Any, seed: int) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "tools": tools, "tool_choice": choice,
            "max_tokens": feature_budget(ctx), "temperature": 0, "seed": seed}


def too_long(exchange: Exchange) -> bool:
    """A generated schema whose description does not fit the model's context is refused rightly: not a trigger."""
    return exchange.status == 400 and error_code(exchange) == "context_length_exceeded"


def judge_calls(exchange: Exchange, choice: dict[str, Any], tools: list[dict[str, Any]], *, at_least: int, only: str | None = None) -> list[dict[str, Any]]:
    """The choice's calls, each judged against LLMOS-TOOL-001; returns them."""
    calls = choice["message"].get("tool_calls") or []
    cut = choice.get("finish_reason") == "length"
    if len(calls) < at_least and not cut:
        raise CheckFailed(f"at least {at_least} tool call(s)", f"{len(calls)}; content {choice['message'].get('content')!r}"[:300], exchange=exchange)
    if only is not None and len(calls) > 1:
        raise CheckFailed(f"exactly one call of {only}", f"{len(calls)} calls", exchange=exchange)
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools}
    ids = [c.get("id") for c in calls]
    if len(set(ids)) != len(ids) or not all(isinstance(i, str) and i for i in ids):
        raise CheckFailed("unique non-empty call ids", repr(ids), exchange=exchange)
    for call in calls:
        name = call["function"]["name"]
        if name not in schemas or (only is not None and name != only):
            raise CheckFailed(f"a call of {only or ' or '.join(schemas)}", repr(name), exchange=exchange)
        if cut:
            continue
        try:
            arguments = json.loads(call["function"]["arguments"])
        except ValueError:
            raise CheckFailed("arguments that are a JSON text", repr(call["function"]["arguments"])[:300], exchange=exchange) from None
        errors = [e.message for e in jsonschema.Draft202012Validator(schemas[name]).iter_errors(arguments)]
        if not isinstance(arguments, dict) or errors:
            raise CheckFailed(f"arguments valid against {json.dumps(schemas[name])[:200]}", f"{arguments!r}: {errors[:1]}"[:400], exchange=exchange)
    expected = "length" if cut else ("tool_calls" if calls else None)
    if expected is not None and choice.get("finish_reason") != expected:
        raise CheckFailed(f"finish_reason {expected}", repr(choice.get("finish_reason")), exchange=exchange)
    if not calls and choice.get("finish_reason") == "tool_calls":
        raise CheckFailed("finish_reason tool_calls only with calls", "tool_calls without any call", exchange=exchange)
    return calls


@check("tool_calls_valid")
def tool_calls_valid(ctx: Context) -> CheckOutcome:
    model = feature_model(ctx, "tools")["id"]
    cases = st.tuples(object_schemas(), st.sampled_from(PROMPTS), st.integers(0, 2**31 - 1))

    def prop(case: tuple[dict[str, Any], str, int]) -> bool:
        parameters, prompt, seed = case
        tools = [tool("lookup", parameters)]
        exchange = post(ctx, OP, tool_body(ctx, model, prompt, tools, "required", seed))
        if too_long(exchange):
            return False
        choice = ok_json(exchange, "ChatCompletionResponse")["choices"][0]
        judge_calls(exchange, choice, tools, at_least=1)
        return bool(choice.get("finish_reason") != "length")

    return run_property(ctx, cases, prop, examples=ctx.settings.generation_examples * 2, what="required tool calls")


@check("tool_choice_honoured")
def tool_choice_honoured(ctx: Context) -> CheckOutcome:
    model = feature_model(ctx, "tools")["id"]
    tools = [tool("get_weather", FIXED), tool("get_time", {"type": "object", "properties": {"zone": {"enum": ["utc", "cet"]}}, "required": ["zone"], "additionalProperties": False})]
    cases = st.tuples(st.sampled_from(["none", "auto", "named"]), st.sampled_from(PROMPTS), st.integers(0, 2**31 - 1))

    def prop(case: tuple[str, str, int]) -> bool:
        kind, prompt, seed = case
        choice_value: Any = {"type": "function", "function": {"name": "get_time"}} if kind == "named" else kind
        exchange = post(ctx, OP, tool_body(ctx, model, prompt, tools, choice_value, seed))
        if too_long(exchange):
            return False
        choice = ok_json(exchange, "ChatCompletionResponse")["choices"][0]
        if kind == "none":
            if choice["message"].get("tool_calls") or choice.get("finish_reason") == "tool_calls":
                raise CheckFailed("no tool call with tool_choice none", repr(choice["message"].get("tool_calls"))[:300], exchange=exchange)
        else:
            judge_calls(exchange, choice, tools, at_least=1 if kind == "named" else 0, only="get_time" if kind == "named" else None)
        return True

    return run_property(ctx, cases, prop, examples=ctx.settings.generation_examples * 2, what="tool choices")


@check("tool_call_stream")
def tool_call_stream(ctx: Context) -> CheckOutcome:
    picked = feature_model(ctx, "tools")
    deterministic = picked.get("determinism") in ("sequential", "batch_invariant")
    cases = st.tuples(object_schemas(), st.sampled_from(PROMPTS), st.integers(0, 2**31 - 1))

    def prop(case: tuple[dict[str, Any], str, int]) -> bool:
        parameters, prompt, seed = case
        tools = [tool("lookup", parameters)]
        body = tool_body(ctx, picked["id"], prompt, tools, "required", seed)
        plain = post(ctx, OP, body)
        if too_long(plain):
            return False
        whole = ok_json(plain, "ChatCompletionResponse")["choices"][0]
        stream = open_stream(ctx, OP, body)
        calls: dict[int, dict[str, Any]] = {}
        for payload in stream.payloads:
            for choice in payload.get("choices") or [] if isinstance(payload, dict) else []:
                for fragment in (choice.get("delta") or {}).get("tool_calls") or []:
                    index = fragment.get("index")
                    function = fragment.get("function") or {}
                    if index not in calls:
                        if not (fragment.get("id") and fragment.get("type") == "function" and function.get("name")):
                            raise CheckFailed("the first fragment of a call carrying id, type and function.name", json.dumps(fragment)[:300], exchange=stream.exchange)
                        calls[index] = {"id": fragment["id"], "name": function["name"], "arguments": function.get("arguments") or ""}
                    else:
                        if set(fragment) - {"index", "function"} or set(function) - {"arguments"}:
                            # Not even nulls: the OpenAI SDK's stream helper merges fragments key by key.
                            raise CheckFailed("later fragments carrying only index and function.arguments", json.dumps(fragment)[:300], exchange=stream.exchange)
                        calls[index]["arguments"] += function.get("arguments") or ""
        reasons = stream.finish.get(0, [])
        if len(reasons) != 1:
            raise CheckFailed("finish_reason exactly once", repr(reasons), exchange=stream.exchange)
        streamed = {"finish_reason": reasons[0], "message": {"content": None, "tool_calls": [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}} for _, c in sorted(calls.items())]}}
        judge_calls(stream.exchange, streamed, tools, at_least=1)
        if deterministic:
            want = [(c["function"]["name"], c["function"]["arguments"]) for c in whole["message"].get("tool_calls") or []]
            got = [(c["name"], c["arguments"]) for _, c in sorted(calls.items())]
            if want != got:
                raise CheckFailed(f"the stream's calls equal to the unstreamed {want!r}", repr(got), exchange=stream.exchange)
        return True

    return run_property(ctx, cases, prop, examples=ctx.settings.generation_examples, what="streamed tool calls")


@check("tool_result_round_trip")
def tool_result_round_trip(ctx: Context) -> CheckOutcome:
    model = feature_model(ctx, "tools")["id"]
    tools = [tool("get_weather", FIXED)]
    first = post(ctx, OP, tool_body(ctx, model, "What is the weather in Paris?", tools, "required", ctx.settings.seed))
    choice = ok_json(first, "ChatCompletionResponse")["choices"][0]
    calls = judge_calls(first, choice, tools, at_least=1)
    if not calls:
        raise Skip("the required call was cut by max_tokens")
    history = [{"role": "user", "content": "What is the weather in Paris?"},
               {"role": "assistant", "content": None, "tool_calls": calls},
               {"role": "tool", "tool_call_id": calls[0]["id"], "content": "{\"forecast\": \"sun\"}"}]
    body = {"model": model, "messages": history, "tools": tools, "max_tokens": ctx.settings.max_tokens, "temperature": 0}
    ok_json(post(ctx, OP, body), "ChatCompletionResponse")
    orphan = [*history[:2], {"role": "tool", "tool_call_id": "call_llmos_kit_answers_nothing", "content": "{}"}]
    expect_error(post(ctx, OP, {**body, "messages": orphan}), ("invalid_value",), param="messages.2.tool_call_id")
    return CheckOutcome(examples=2, triggered=2)


@check("tool_request_refusals")
def tool_request_refusals(ctx: Context) -> CheckOutcome:
    model = feature_model(ctx, "tools")["id"]
    tools = [tool("get_weather", FIXED)]
    base = tool_body(ctx, model, PROMPTS[0], tools, "auto", 0)
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({**base, "tool_choice": {"type": "function", "function": {"name": "not_a_listed_tool"}}}, "invalid_value", "tool_choice"),
        ({**{k: v for k, v in base.items() if k != "tools"}, "tool_choice": "required"}, "invalid_value", "tool_choice"),
        ({**base, "tools": [tool("get_weather", {"type": "nonsense"})]}, "invalid_value", "tools.0.function.parameters"),
    ]
    for body, code, param in cases:
        expect_error(post(ctx, OP, body), (code,), param=param)
    return CheckOutcome(examples=len(cases), triggered=len(cases))
