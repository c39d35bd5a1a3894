"""responses (LLMOS-RESP-001..005): the Responses API, its items, its event stream and its statelessness."""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
from hypothesis import strategies as st

from llmos_std.responses import EXTENSION_EVENT_PATTERN

from conformance.checks.inference.structured import judge_json_text
from conformance.context import Context
from conformance.judging import expect_error, expect_status, ok_json, schema_errors
from conformance.properties import run_property
from conformance.registry import check
from conformance.schema_strategies import strict_schemas
from conformance.traffic import PROMPTS, feature_budget, feature_model
from conformance.verdicts import CheckFailed, CheckOutcome
from conformance.wire import Exchange

PATH = "/v1/responses"
FIXED = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 8}}, "required": ["city"], "additionalProperties": False}
TOOL = {"type": "function", "name": "get_weather", "description": "Forecast for a city", "parameters": FIXED, "strict": True}
_EXTENSION = re.compile(EXTENSION_EVENT_PATTERN)


def _post(ctx: Context, body: dict[str, Any]) -> Exchange:
    return ctx.wire.request("POST", PATH, json_body=body)


def _model(ctx: Context) -> str:
    return str(feature_model(ctx, "chat")["id"])


def _response(ctx: Context, body: dict[str, Any]) -> tuple[Exchange, dict[str, Any]]:
    exchange = _post(ctx, body)
    answer = ok_json(exchange, "ResponseObject")
    _judge_status(exchange, answer)
    return exchange, answer


def _judge_status(exchange: Exchange, answer: dict[str, Any]) -> None:
    status = answer.get("status")
    if status not in ("completed", "incomplete"):
        raise CheckFailed("status completed or incomplete", repr(status), exchange=exchange)
    if status == "incomplete" and (answer.get("incomplete_details") or {}).get("reason") != "max_output_tokens":
        raise CheckFailed("an incomplete response naming max_output_tokens", repr(answer.get("incomplete_details")), exchange=exchange)
    usage = answer.get("usage") or {}
    if usage.get("total_tokens") != usage.get("input_tokens", -1) + usage.get("output_tokens", -1):
        raise CheckFailed("usage adding up (input_tokens + output_tokens)", repr(usage), exchange=exchange)


def _message_text(exchange: Exchange, answer: dict[str, Any]) -> str:
    messages = [item for item in answer["output"] if item.get("type") == "message"]
    if len(messages) != 1 or messages[0].get("role") != "assistant":
        raise CheckFailed("one assistant message item in output", json.dumps(answer["output"])[:300], exchange=exchange)
    return "".join(part.get("text", "") for part in messages[0]["content"] if part.get("type") == "output_text")


@check("responses_basic")
def responses_basic(ctx: Context) -> CheckOutcome:
    model = _model(ctx)
    bodies = [
        {"model": model, "input": "Say hello.", "instructions": "Answer briefly.", "max_output_tokens": ctx.settings.max_tokens, "temperature": 0},
        {"model": model, "input": [{"role": "user", "content": "Say hello."}, {"role": "assistant", "content": [{"type": "output_text", "text": "Hello."}]},
                                   {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Again."}]}],
         "max_output_tokens": ctx.settings.max_tokens, "temperature": 0},
    ]
    for body in bodies:
        exchange, answer = _response(ctx, body)
        _message_text(exchange, answer)
    return CheckOutcome(examples=len(bodies), triggered=len(bodies))


def _calls(exchange: Exchange, answer: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    calls = [item for item in answer["output"] if item.get("type") == "function_call"]
    if not calls and answer["status"] == "completed":
        raise CheckFailed("a function_call item with tool_choice required", json.dumps(answer["output"])[:300], exchange=exchange)
    for call in calls:
        if not call.get("call_id") or call.get("name") != "get_weather":
            raise CheckFailed("function_call items with a call_id and a listed name", json.dumps(call)[:300], exchange=exchange)
        if answer["status"] == "completed":
            try:
                arguments = json.loads(call["arguments"])
            except ValueError:
                raise CheckFailed("arguments that are a JSON text", repr(call["arguments"])[:300], exchange=exchange) from None
            errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(arguments)]
            if errors:
                raise CheckFailed("arguments valid against the tool's parameters", f"{arguments!r}: {errors[0]}", exchange=exchange)
    return calls


@check("responses_tools")
def responses_tools(ctx: Context) -> CheckOutcome:
    model = _model(ctx)
    question = {"role": "user", "content": "Weather in Paris?"}
    body = {"model": model, "input": [question], "tools": [TOOL], "tool_choice": "required", "max_output_tokens": feature_budget(ctx), "temperature": 0}
    exchange, answer = _response(ctx, body)
    calls = _calls(exchange, answer, FIXED)
    call = calls[0] if calls else {"type": "function_call", "call_id": "call_kit", "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}
    echoed = {k: call[k] for k in ("type", "call_id", "name", "arguments")}
    follow = {**body, "input": [question, echoed, {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}], "tool_choice": "none",
              "max_output_tokens": ctx.settings.max_tokens}
    _response(ctx, follow)
    orphan = {**follow, "input": [question, {"type": "function_call_output", "call_id": "call_llmos_kit_answers_nothing", "output": "x"}]}
    expect_error(_post(ctx, orphan), ("invalid_value",), param="input.1.call_id")
    return CheckOutcome(examples=3, triggered=3)


@check("responses_structured")
def responses_structured(ctx: Context) -> CheckOutcome:
    model = feature_model(ctx, "structured-outputs")["id"]
    cases = st.tuples(strict_schemas(), st.sampled_from(PROMPTS), st.integers(0, 2**31 - 1))

    def prop(case: tuple[dict[str, Any], str, int]) -> bool:
        schema, prompt, _seed = case
        body = {"model": model, "input": prompt, "max_output_tokens": feature_budget(ctx), "temperature": 0,
                "text": {"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}}}
        exchange, answer = _response(ctx, body)
        text = _message_text(exchange, answer)
        return judge_json_text(exchange, text, schema, "strict text.format", cut=answer["status"] == "incomplete")

    return run_property(ctx, cases, prop, examples=ctx.settings.generation_examples, what="strict text formats")


def named_events(exchange: Exchange) -> list[dict[str, Any]]:
    """The stream's events, each with an ``event:`` line equal to its ``type``; ends with ``data: [DONE]``."""
    expect_status(exchange, 200)
    if exchange.headers.get("content-type", "").split(";")[0].strip() != "text/event-stream":
        raise CheckFailed("Content-Type text/event-stream", exchange.headers.get("content-type", ""), exchange=exchange)
    blocks = [b for b in exchange.body.decode("utf-8").replace("\r\n", "\n").split("\n\n") if b.strip()]
    events: list[dict[str, Any]] = []
    for i, block in enumerate(blocks):
        lines = [line for line in block.split("\n") if not line.startswith(":")]
        if lines == ["data: [DONE]"]:
            if i != len(blocks) - 1:
                raise CheckFailed("data: [DONE] last", f"{len(blocks) - 1 - i} events after it", exchange=exchange)
            return events
        if len(lines) != 2 or not lines[0].startswith("event: ") or not lines[1].startswith("data: "):
            raise CheckFailed("events of an 'event: <type>' line and a 'data: <json>' line", repr(block)[:200], exchange=exchange)
        data = json.loads(lines[1][len("data: "):])
        if not isinstance(data, dict) or data.get("type") != lines[0][len("event: "):]:
            raise CheckFailed("the event: line equal to the data's type", repr(block)[:200], exchange=exchange)
        events.append(data)
    raise CheckFailed("the stream ending with data: [DONE]", repr(exchange.body[-100:]), exchange=exchange)


_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def judge_stream(exchange: Exchange, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Order, numbering, schemas and concatenation of one stream; returns the terminal response."""
    known = [e for e in events if not _EXTENSION.match(str(e.get("type")))]  # implementor events: ignored, as clients must
    numbers = [e.get("sequence_number") for e in events]
    if numbers != list(range(len(events))):
        raise CheckFailed("sequence_number 0, 1, 2, ... in order", repr(numbers[:20]), exchange=exchange)
    for event in known:
        problems = schema_errors("ResponseStreamEvent", event)
        if problems:
            raise CheckFailed("every event valid against ResponseStreamEvent.json", f"{event.get('type')}: {problems[0]}", exchange=exchange)
    types = [e["type"] for e in known]
    if types[:2] != ["response.created", "response.in_progress"]:
        raise CheckFailed("response.created then response.in_progress first", repr(types[:3]), exchange=exchange)
    terminal = [i for i, t in enumerate(types) if t in _TERMINAL]
    if terminal != [len(types) - 1]:
        raise CheckFailed("exactly one terminal event (completed, incomplete or failed), last", repr(types[-3:]), exchange=exchange)
    texts: dict[tuple[str, int], str] = {}
    arguments: dict[str, str] = {}
    open_items: dict[int, str] = {}
    for event, kind in zip(known, types):
        if kind == "response.output_item.added":
            open_items[event["output_index"]] = event["item"]["id"]
        elif kind in ("response.content_part.added", "response.output_text.delta", "response.function_call_arguments.delta") and open_items.get(event["output_index"]) != event["item_id"]:
            raise CheckFailed(f"{kind} inside its output item (added first)", json.dumps(event)[:200], exchange=exchange)
        if kind == "response.output_text.delta":
            texts[(event["item_id"], event["content_index"])] = texts.get((event["item_id"], event["content_index"]), "") + event["delta"]
        elif kind == "response.output_text.done" and texts.get((event["item_id"], event["content_index"]), "") != event["text"]:
            raise CheckFailed("output_text deltas concatenating to output_text.done", f"{texts.get((event['item_id'], event['content_index']), '')!r} vs {event['text']!r}"[:300], exchange=exchange)
        elif kind == "response.function_call_arguments.delta":
            arguments[event["item_id"]] = arguments.get(event["item_id"], "") + event["delta"]
        elif kind == "response.function_call_arguments.done" and arguments.get(event["item_id"], "") != event["arguments"]:
            raise CheckFailed("argument deltas concatenating to function_call_arguments.done", f"{arguments.get(event['item_id'], '')!r} vs {event['arguments']!r}"[:300], exchange=exchange)
        elif kind == "response.output_item.done":
            open_items.pop(event["output_index"], None)
    if open_items and types[-1] != "response.failed":
        raise CheckFailed("every output item done before the terminal event", repr(sorted(open_items)), exchange=exchange)
    return dict(known[-1]["response"])


def _comparable(answer: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(i.get("type"), i.get("status"), i.get("name"), i.get("arguments"), json.dumps(i.get("content"))) for i in answer["output"]] + [(answer["status"],)]


@check("responses_stream")
def responses_stream(ctx: Context) -> CheckOutcome:
    picked = feature_model(ctx, "chat")
    deterministic = picked.get("determinism") in ("sequential", "batch_invariant")
    cases = st.tuples(st.sampled_from(PROMPTS), st.booleans())

    def prop(case: tuple[str, bool]) -> bool:
        prompt, with_tool = case
        body: dict[str, Any] = {"model": picked["id"], "input": prompt, "max_output_tokens": feature_budget(ctx, 32), "temperature": 0}
        if with_tool:
            body.update(tools=[TOOL], tool_choice="required")
        exchange = ctx.wire.request("POST", PATH, json_body={**body, "stream": True})
        final = judge_stream(exchange, named_events(exchange))
        if deterministic:
            _plain, whole = _response(ctx, body)
            if _comparable(final) != _comparable(whole):
                raise CheckFailed("the terminal event's response equal to the unstreamed one (ids aside)", f"{_comparable(final)!r} vs {_comparable(whole)!r}"[:400], exchange=exchange)
        return True

    return run_property(ctx, cases, prop, examples=ctx.settings.generation_examples, what="streamed responses")


@check("responses_stateless")
def responses_stateless(ctx: Context) -> CheckOutcome:
    model = _model(ctx)
    base = {"model": model, "input": "hi", "max_output_tokens": 2}
    expect_error(_post(ctx, {**base, "store": True}), ("unsupported_parameter",), param="store")
    expect_error(_post(ctx, {**base, "previous_response_id": "resp_llmos_kit_never_stored"}), ("unsupported_parameter",), param="previous_response_id")
    return CheckOutcome(examples=2, triggered=2)
