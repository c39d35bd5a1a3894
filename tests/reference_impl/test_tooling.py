"""Tool calls and structured outputs in the reference server: grammars, reading calls back, streams, refusals."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import jsonschema
import pytest

from llmos_std.errors import LLMOSError
from llmos_std.inference import ChatCompletionRequest

from reference_impl.constraints import ConstraintError, Grammar, call_grammar, json_grammar
from reference_impl.engine import SamplingParams, TextModel, load_text_model
from reference_impl.tooling import CallStream, chat_messages, plan_structure, read_call

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "maxLength": 6}}, "required": ["city"], "additionalProperties": False}}}
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def model(tiny_llama_dir: Path) -> TextModel:
    return load_text_model(tiny_llama_dir)


def test_a_call_reads_back_as_name_and_argument_text() -> None:
    text = '{"name":"get_weather","arguments":{"city":"Paris"}}'
    assert read_call(text, complete=True) == ("get_weather", '{"city":"Paris"}')
    assert read_call(text[:-5], complete=False) == ("get_weather", '{"city":"Par')
    assert read_call("Hello", complete=True) is None


def test_the_stream_of_a_call_concatenates_to_the_unstreamed_arguments() -> None:
    text = '{"name":"get_weather","arguments":{"city":"Paris"}}'
    reader = CallStream("call-or-text")
    fragments = []
    for i in range(0, len(text), 3):
        content, pieces = reader.push(text[i:i + 3])
        assert content is None
        fragments += pieces
    fragments += reader.finish(complete=True)
    assert fragments[0].id and fragments[0].function and fragments[0].function.name == "get_weather"
    assert all(f.id is None and f.function and f.function.name is None for f in fragments[1:])
    assert "".join(f.function.arguments or "" for f in fragments if f.function) == '{"city":"Paris"}'


def test_text_under_auto_streams_as_content() -> None:
    reader = CallStream("call-or-text")
    assert reader.push("Hel") == ("Hel", []) and reader.push("lo") == ("lo", []) and reader.finish(complete=True) == []


@pytest.mark.parametrize(("body", "code", "param"), [
    ({"tool_choice": "required"}, "invalid_value", "tool_choice"),
    ({"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "other"}}}, "invalid_value", "tool_choice"),
    ({"tools": [TOOL, TOOL]}, "invalid_value", "tools"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "nonsense"}}}]}, "invalid_value", "tools.0.function.parameters"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"minimum": "zero"}}}}, "invalid_value", "response_format.json_schema.schema"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": False}}}, "schema_unsupported", "response_format.json_schema.schema"),
    ({"tools": [TOOL], "response_format": {"type": "json_object"}}, "schema_unsupported", "response_format"),
])
def test_requests_the_decoder_cannot_serve_are_refused_by_name(body: dict[str, object], code: str, param: str) -> None:
    with pytest.raises(LLMOSError) as caught:
        plan_structure(ChatCompletionRequest.model_validate({**CHAT, **body}))
    assert (caught.value.code, caught.value.param) == (code, param)


def test_no_structure_for_plain_text_or_tool_choice_none() -> None:
    assert plan_structure(ChatCompletionRequest.model_validate(CHAT)) is None
    assert plan_structure(ChatCompletionRequest.model_validate({**CHAT, "tools": [TOOL], "tool_choice": "none"})) is None


def test_the_engine_refuses_what_it_cannot_enforce(model: TextModel) -> None:
    model.check_grammar(json_grammar({"type": "string", "pattern": "^[a-z]+$"}))
    with pytest.raises(ConstraintError, match="look-around"):
        model.check_grammar(json_grammar({"type": "string", "pattern": "(?=a)b"}))


def _generate(model: TextModel, grammar: Grammar, seed: int, max_tokens: int = 64) -> tuple[str, str | None]:
    async def run() -> tuple[str, str | None]:
        text, reason = "", None
        async for delta in model.generate("Tell me", SamplingParams(max_tokens=max_tokens, temperature=1.0, seed=seed), chat=False, grammar=grammar):
            text += delta.text
            reason = delta.finish_reason
        return text, reason

    return asyncio.run(run())


@pytest.mark.parametrize("seed", range(4))
def test_a_random_model_returns_schema_valid_json_under_the_mask(model: TextModel, seed: int) -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer", "minimum": 0, "maximum": 9},
                                               "tag": {"enum": ["a", "b"]}}, "required": ["ok", "n", "tag"], "additionalProperties": False}
    text, reason = _generate(model, json_grammar(schema), seed)
    assert reason == "stop"
    jsonschema.validate(json.loads(text), schema)
    assert _generate(model, json_grammar(schema), seed) == (text, reason)  # seeded rows stay reproducible under a mask


def test_a_required_call_is_a_call_of_a_listed_tool(model: TextModel) -> None:
    parameters = TOOL["function"]["parameters"]  # type: ignore[index]
    text, reason = _generate(model, call_grammar({"get_weather": parameters}, optional=False), 3)
    call = read_call(text, complete=reason == "stop")
    assert reason == "stop" and call is not None and call[0] == "get_weather"
    jsonschema.validate(json.loads(call[1]), parameters)


def _history() -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({**CHAT, "tools": [TOOL], "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sun"},
    ]})


def test_a_template_that_takes_tools_gets_them_and_the_history_as_is() -> None:
    messages, tools = chat_messages(_history(), lambda content, param: content or "", template_takes_tools=True)
    assert tools == [TOOL["function"]]
    assert messages[1]["tool_calls"][0]["function"]["name"] == "get_weather" and messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "sun"}


def test_without_such_a_template_tools_and_results_become_plain_messages() -> None:
    messages, tools = chat_messages(_history(), lambda content, param: content or "", template_takes_tools=False)
    assert tools is None and messages[0]["role"] == "system" and '"name":"get_weather"' in messages[0]["content"]
    assert messages[2] == {"role": "assistant", "content": '{"name":"get_weather","arguments":{"city":"Paris"}}'}
    assert messages[3] == {"role": "user", "content": "Result of get_weather (call_1): sun"}
