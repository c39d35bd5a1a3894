"""The official openai SDK works unmodified against the reference server."""

from __future__ import annotations

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
