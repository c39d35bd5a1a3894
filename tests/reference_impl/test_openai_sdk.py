"""The official openai SDK works unmodified against the reference server."""

from __future__ import annotations

from typing import Any

import httpx
import openai

from tests.support.server import RunningServer


def _sdk(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="unused-in-local-mode", max_retries=0)


def test_chat_plain_and_streamed(server: RunningServer, model_ids: dict[str, str]) -> None:
    sdk = _sdk(server)
    messages = [{"role": "user", "content": "Hello there"}]
    answer = sdk.chat.completions.create(model=model_ids["chat"], messages=messages, max_tokens=6, seed=4)  # type: ignore[arg-type]
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert answer.usage is not None and answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    stream = sdk.chat.completions.create(model=model_ids["chat"], messages=messages, max_tokens=6, seed=4, stream=True, stream_options={"include_usage": True})  # type: ignore[arg-type]
    text = ""
    usage = None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert text == answer.choices[0].message.content
    assert usage is not None and usage.completion_tokens == answer.usage.completion_tokens


def test_completions_embeddings_and_models(server: RunningServer, model_ids: dict[str, str]) -> None:
    sdk = _sdk(server)
    completion = sdk.completions.create(model=model_ids["text-generation"], prompt="Once upon a time", max_tokens=5)
    assert completion.choices[0].finish_reason == "length"
    # The SDK asks for base64 by default and decodes it itself.
    vectors = sdk.embeddings.create(model=model_ids["embeddings"], input=["the sea", "a cat"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) > 1
    floats = sdk.embeddings.create(model=model_ids["embeddings"], input=["the sea"], encoding_format="float")
    assert [round(x, 5) for x in floats.data[0].embedding] == [round(x, 5) for x in vectors.data[0].embedding]
    assert {m.id for m in sdk.models.list()} >= {model_ids["chat"], model_ids["embeddings"]}
    try:
        sdk.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])  # type: ignore[list-item]
    except openai.NotFoundError as exc:
        assert exc.code == "model_not_found"
    else:
        raise AssertionError("an unknown model must be a 404")


def test_retrieve_token_ids_and_the_fields_sdks_send_by_default(server: RunningServer, model_ids: dict[str, str]) -> None:
    sdk = _sdk(server)
    assert sdk.models.retrieve(model_ids["chat"]).id == model_ids["chat"]
    try:
        sdk.models.retrieve("acme/not-served")
        raise AssertionError("an unknown model was retrieved")
    except openai.NotFoundError as exc:
        assert exc.code == "model_not_found"
    # Prompts and inputs already tokenized (what LangChain's OpenAIEmbeddings sends by default).
    completion = sdk.completions.create(model=model_ids["text-generation"], prompt=[5, 6, 7], max_tokens=3)
    assert completion.usage is not None and completion.usage.prompt_tokens == 3
    batch = sdk.completions.create(model=model_ids["text-generation"], prompt=[[5, 6], [7, 8, 9]], max_tokens=2)
    assert sorted(c.index for c in batch.choices) == [0, 1]
    vectors = sdk.embeddings.create(model=model_ids["embeddings"], input=[[10, 11, 12], [13, 14]], encoding_format="float")
    assert len({len(d.embedding) for d in vectors.data}) == 1 and vectors.usage.prompt_tokens == 5
    # Values that ask for nothing are accepted by a model without the capability.
    answer = sdk.chat.completions.create(model=model_ids["chat"], messages=[{"role": "user", "content": "hi"}], max_tokens=2,
                                         parallel_tool_calls=False, modalities=["text"], service_tier="auto", safety_identifier="u1", prompt_cache_key="k")
    assert answer.choices[0].message.role == "assistant"
    native = len(vectors.data[0].embedding)
    assert len(sdk.embeddings.create(model=model_ids["embeddings"], input="hi", dimensions=native, encoding_format="float").data[0].embedding) == native


def test_token_ids_past_the_vocabulary_are_the_clients_error(client: httpx.Client, model_ids: dict[str, str]) -> None:
    for path, body, param in [
        ("/v1/completions", {"model": model_ids["text-generation"], "prompt": [1, 10**9], "max_tokens": 2}, "prompt"),
        ("/v1/completions", {"model": model_ids["text-generation"], "prompt": [[1], [10**9]], "max_tokens": 2}, "prompt.1"),
        ("/v1/embeddings", {"model": model_ids["embeddings"], "input": [10**9]}, "input"),
    ]:
        answer = client.post(path, json=body)
        assert (answer.status_code, answer.json()["error"]["code"], answer.json()["error"]["param"]) == (400, "invalid_value", param), path


def test_405_names_the_allowed_methods(client: httpx.Client) -> None:
    answer = client.delete("/v1/models")
    assert answer.status_code == 405
    assert "GET" in answer.headers["allow"].split(", ") and "DELETE" not in answer.headers["allow"]


WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Forecast for a city", "strict": True, "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "maxLength": 8}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
    "required": ["city", "days"], "additionalProperties": False}}}


def test_tool_calls_plain_streamed_and_answered(server: RunningServer, model_ids: dict[str, str]) -> None:
    import json

    sdk = _sdk(server)
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    answer = sdk.chat.completions.create(model=model_ids["chat"], messages=messages, tools=[WEATHER], tool_choice="required", max_tokens=100, temperature=0)  # type: ignore[list-item]
    call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert answer.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather", answer  # type: ignore[union-attr]
    arguments = json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert set(arguments) == {"city", "days"} and 1 <= arguments["days"] <= 7 and len(arguments["city"]) <= 8
    # The SDK's stream helper reassembles the fragments into the same call.
    with sdk.chat.completions.stream(model=model_ids["chat"], messages=messages, tools=[WEATHER], tool_choice="required", max_tokens=100, temperature=0) as stream:  # type: ignore[list-item]
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert (streamed.function.name, streamed.function.arguments) == (call.function.name, call.function.arguments)  # type: ignore[union-attr]
    # The result goes back as a tool message; a tool message answering no call is refused by name.
    history = [*messages, answer.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    assert sdk.chat.completions.create(model=model_ids["chat"], messages=history, tools=[WEATHER], max_tokens=4).choices  # type: ignore[arg-type]
    try:
        sdk.chat.completions.create(model=model_ids["chat"], messages=[*history[:2], {"role": "tool", "tool_call_id": "call_nobody", "content": "x"}], max_tokens=4)  # type: ignore[list-item]
        raise AssertionError("an orphan tool result was accepted")
    except openai.BadRequestError as exc:
        assert exc.code == "invalid_value" and exc.param == "messages.2.tool_call_id"


def test_structured_outputs_through_the_sdk_parse_helper(server: RunningServer, model_ids: dict[str, str]) -> None:
    from typing import Literal

    from pydantic import BaseModel, Field

    class Trip(BaseModel):
        ok: bool
        kind: Literal["rail", "air"]
        days: int = Field(ge=1, le=9)

    sdk = _sdk(server)
    for seed in range(3):
        parsed = sdk.chat.completions.parse(model=model_ids["chat"], messages=[{"role": "user", "content": "Plan a trip."}], response_format=Trip, max_tokens=40, seed=seed)
        trip = parsed.choices[0].message.parsed
        assert isinstance(trip, Trip) and 1 <= trip.days <= 9


def test_logprobs_through_the_sdk(server: RunningServer, model_ids: dict[str, str]) -> None:
    sdk = _sdk(server)
    answer = sdk.chat.completions.create(model=model_ids["chat"], messages=[{"role": "user", "content": "Hi"}], max_tokens=5, temperature=0, logprobs=True, top_logprobs=3)  # type: ignore[list-item]
    entries = answer.choices[0].logprobs.content  # type: ignore[union-attr]
    assert entries is not None and answer.usage is not None and len(entries) == answer.usage.completion_tokens
    for entry in entries:
        assert entry.logprob <= 0 and len(entry.top_logprobs) == 3 and entry.top_logprobs[0].token == entry.token
    legacy = sdk.completions.create(model=model_ids["text-generation"], prompt="Once", max_tokens=4, logprobs=2, temperature=0)
    assert legacy.choices[0].logprobs is not None and len(legacy.choices[0].logprobs.tokens or []) == legacy.usage.completion_tokens  # type: ignore[union-attr]


def test_responses_create_stream_and_function_call_round_trip(server: RunningServer, model_ids: dict[str, str]) -> None:
    import json

    sdk = _sdk(server)
    answer = sdk.responses.create(model=model_ids["chat"], input="Say hello.", instructions="Be brief.", max_output_tokens=8, temperature=0)
    assert answer.status in ("completed", "incomplete") and answer.output[0].type == "message"
    assert answer.usage is not None and answer.usage.total_tokens == answer.usage.input_tokens + answer.usage.output_tokens
    # The SDK's stream helper wants response.completed: a schema-bound answer completes on a random model too.
    boolean = {"format": {"type": "json_schema", "name": "yes_no", "schema": {"type": "boolean"}, "strict": True}}
    whole = sdk.responses.create(model=model_ids["chat"], input="Is it sunny?", text=boolean, max_output_tokens=8, temperature=0)  # type: ignore[arg-type]
    with sdk.responses.stream(model=model_ids["chat"], input="Is it sunny?", text=boolean, max_output_tokens=8, temperature=0) as stream:  # type: ignore[arg-type]
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed" and whole.status == "completed"
    assert final.output_text == whole.output_text and final.output_text in ("true", "false")
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER["function"]["parameters"], "strict": True}
    called = sdk.responses.create(model=model_ids["chat"], input="Weather in Paris?", tools=[tool], tool_choice="required", max_output_tokens=100, temperature=0)  # type: ignore[list-item]
    call = next(item for item in called.output if item.type == "function_call")
    assert call.name == "get_weather" and set(json.loads(call.arguments)) == {"city", "days"}  # type: ignore[union-attr]
    follow = sdk.responses.create(model=model_ids["chat"], tools=[tool], max_output_tokens=4, temperature=0, input=[  # type: ignore[list-item]
        {"role": "user", "content": "Weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},  # type: ignore[union-attr]
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},  # type: ignore[union-attr]
    ])
    assert follow.status in ("completed", "incomplete")
    try:
        sdk.responses.create(model=model_ids["chat"], input="hi", previous_response_id=follow.id)
        raise AssertionError("a stateless server continued a response")
    except openai.BadRequestError as exc:
        assert exc.code == "unsupported_parameter" and exc.param == "previous_response_id"
