"""OpenAI-wire request, response and stream-chunk types for completions, chat and embeddings.

Requests are closed (an unknown field is an ``unsupported_parameter`` error, never ignored);
responses are open, because vendors may add fields that clients ignore.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, JsonValue

from pydantic import ConfigDict

from llmos_std.logprobs import MAX_COMPLETION_LOGPROBS, MAX_TOP_LOGPROBS, ChatLogprobs, CompletionLogprobs
from llmos_std.structured import ResponseFormat
from llmos_std.tool_calling import FunctionTool, ToolCall, ToolCallDelta, ToolCallParam, ToolChoice
from llmos_std.wire import OpenWireModel, WireModel, optional_in_schema

FinishReason = Literal["stop", "length", "content_filter", "tool_calls"]
"""Why a choice ended: ``stop`` (end of sequence or a stop string), ``length`` (token limit)."""

StopField = Union[str, Annotated[list[str], Field(min_length=1)], None]


# ---------------------------------------------------------------- messages


class TextContentPart(WireModel):
    """A text fragment of a message's content array."""

    type: Literal["text"]
    text: str


class ImageUrl(WireModel):
    url: str
    """A data: URL. Servers never fetch client-supplied network URLs."""
    detail: Literal["auto", "low", "high"] | None = None


class ImageContentPart(WireModel):
    """An image fragment; only models with the ``vision`` capability accept it."""

    type: Literal["image_url"]
    image_url: ImageUrl


ContentPart = Annotated[Union[TextContentPart, ImageContentPart], Field(discriminator="type")]
MessageContent = Union[str, list[ContentPart]]


class SystemMessage(WireModel):
    role: Literal["system"]
    content: MessageContent
    name: str | None = None


class DeveloperMessage(WireModel):
    """OpenAI's newer name for system instructions; treated as a system message."""

    role: Literal["developer"]
    content: MessageContent
    name: str | None = None


class UserMessage(WireModel):
    role: Literal["user"]
    content: MessageContent
    name: str | None = None


class AssistantMessage(WireModel):
    role: Literal["assistant"]
    content: MessageContent | None = None
    name: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallParam] | None = None
    """Calls this turn made; only with the ``tools`` capability."""


class ToolMessage(WireModel):
    """A tool result; only with the ``tools`` capability."""

    role: Literal["tool"]
    content: MessageContent
    tool_call_id: str


ChatMessage = Annotated[
    Union[SystemMessage, DeveloperMessage, UserMessage, AssistantMessage, ToolMessage],
    Field(discriminator="role"),
]


class StreamOptions(WireModel):
    include_usage: bool | None = None
    """When true, one extra chunk with empty ``choices`` and the request's ``usage`` precedes ``[DONE]``."""


# ---------------------------------------------------------------- requests

TokenIds = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
"""A prompt already tokenized with the model's own tokenizer (the OpenAI wire allows it; LangChain sends it)."""


class _SamplingFields(WireModel):
    """Fields shared by chat and text completions."""

    model: str = Field(min_length=1)
    """A model id: ``name``, ``name@<semver>`` or ``name@sha256:<hex>``."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Upper bound on generated tokens per choice."""
    n: int | None = Field(default=None, ge=1)
    """Number of choices to generate."""
    stop: StopField = None
    """Up to ``max_stop`` strings; output ends before the first occurrence, which is never included."""
    seed: int | None = None
    """Seeds sampling; with ``determinism`` ``sequential`` identical requests give identical output."""
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    user: str | None = None
    """End-user identifier; metadata only."""
    logit_bias: dict[str, float] | None = None
    """Capability ``logit-bias``."""
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    """Capability ``penalties``."""
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    """Capability ``penalties``."""


class ChatCompletionRequest(_SamplingFields):
    """``POST /v1/chat/completions``."""

    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    """Synonym of ``max_tokens``; sending both with different values is an error."""
    logprobs: bool | None = None
    """Capability ``logprobs``: each choice carries ``logprobs.content``, one entry per token."""
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)
    """Capability ``logprobs``: alternatives per token (needs ``logprobs: true``)."""
    metadata: dict[str, str] | None = None
    """Metadata only."""
    store: bool | None = None
    """Metadata only."""
    response_format: ResponseFormat | None = None
    """``{type: text}`` asks for nothing; ``json_object``/``json_schema`` need the ``structured-outputs`` capability."""
    tools: list[FunctionTool] | None = Field(default=None, max_length=128)
    """Capability ``tools``."""
    tool_choice: ToolChoice | None = None
    """Capability ``tools``; ``none`` asks for nothing. Default: ``auto`` with tools, ``none`` without."""
    parallel_tool_calls: bool | None = None
    """Capability ``tools``; ``false`` (asks for nothing without tools) is accepted by every model."""
    functions: list[JsonValue] | None = None
    """Deprecated OpenAI form of ``tools``; capability ``legacy-functions``."""
    function_call: JsonValue = None
    """Deprecated OpenAI form of ``tool_choice``; capability ``legacy-functions``."""
    service_tier: str | None = Field(default=None, max_length=64)
    """``auto`` and ``default`` ask for nothing; any other tier needs the ``service-tiers`` capability."""
    reasoning_effort: str | None = Field(default=None, max_length=64)
    """Capability ``reasoning``."""
    verbosity: str | None = Field(default=None, max_length=64)
    """Capability ``verbosity``."""
    modalities: list[str] | None = Field(default=None, max_length=8)
    """``["text"]`` asks for nothing; audio output needs the ``audio-output`` capability."""
    audio: JsonValue = None
    """Capability ``audio-output``."""
    prediction: JsonValue = None
    """Capability ``predicted-outputs``."""
    web_search_options: JsonValue = None
    """Capability ``web-search``."""
    moderation: JsonValue = None
    """Capability ``moderation``."""
    prompt_cache_key: str | None = Field(default=None, max_length=1024)
    """A prompt-caching hint; metadata only."""
    prompt_cache_retention: str | None = Field(default=None, max_length=64)
    """A prompt-caching hint; metadata only."""
    prompt_cache_options: JsonValue = None
    """A prompt-caching hint; metadata only."""
    safety_identifier: str | None = Field(default=None, max_length=1024)
    """A stable end-user identifier for abuse detection; metadata only."""


class CompletionRequest(_SamplingFields):
    """``POST /v1/completions``."""

    prompt: Union[str, Annotated[list[str], Field(min_length=1)], TokenIds, Annotated[list[TokenIds], Field(min_length=1)]]
    """One prompt, or a batch of prompts (each gets ``n`` choices); text or token ids of the model's own vocabulary."""
    logprobs: int | None = Field(default=None, ge=0, le=MAX_COMPLETION_LOGPROBS)
    """Capability ``logprobs``: the legacy form, with this many alternatives per token."""
    echo: bool | None = None
    """Capability ``echo``."""
    suffix: str | None = None
    """Capability ``suffix``."""
    best_of: int | None = Field(default=None, ge=1)
    """Capability ``best-of``."""


def prompt_batch(value: str | list[str] | list[int] | list[list[int]]) -> list[str | list[int]]:
    """``prompt``/``input`` as a list of items: one text or token-id list is a batch of one."""
    if isinstance(value, str):
        return [value]
    items: list[str | list[int]] = []
    for item in value:
        if isinstance(item, int):  # one token-id prompt
            return [[v for v in value if isinstance(v, int)]]
        items.append(item)
    return items


class EmbeddingRequest(WireModel):
    """``POST /v1/embeddings``."""

    model: str = Field(min_length=1)
    input: Union[str, Annotated[list[str], Field(min_length=1)], TokenIds, Annotated[list[TokenIds], Field(min_length=1)]]
    """One text or a batch; each gets one vector, in order. Token ids are of the model's own vocabulary."""
    encoding_format: Literal["float", "base64"] | None = None
    """``base64``: little-endian float32 bytes, base64-encoded (the OpenAI SDK's default)."""
    dimensions: int | None = Field(default=None, ge=1)
    """Capability ``dimensions``: truncate and re-normalise to this many dimensions."""
    user: str | None = None
    """Metadata only."""


# ---------------------------------------------------------------- responses


class Usage(OpenWireModel):
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)


class AssistantReply(OpenWireModel):
    model_config = ConfigDict(json_schema_extra=optional_in_schema('refusal', 'tool_calls'))

    role: Literal["assistant"]
    content: str | None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None
    """The calls the model made (``finish_reason`` is then ``tool_calls``)."""


class ChatChoice(OpenWireModel):
    model_config = ConfigDict(json_schema_extra=optional_in_schema('logprobs'))

    index: int = Field(ge=0)
    message: AssistantReply
    finish_reason: FinishReason
    logprobs: ChatLogprobs | None = None


class ChatCompletionResponse(OpenWireModel):
    model_config = ConfigDict(json_schema_extra=optional_in_schema('system_fingerprint'))

    id: str = Field(min_length=1)
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    """Unix time in seconds, an integer."""
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None
    """The serving package's digest (``sha256:<hex>``) on LLMOS servers."""


class ChatDelta(OpenWireModel):
    model_config = ConfigDict(json_schema_extra=optional_in_schema('role', 'content', 'refusal', 'tool_calls'))

    role: Literal["assistant"] | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChatChunkChoice(OpenWireModel):
    model_config = ConfigDict(json_schema_extra=optional_in_schema('logprobs'))

    index: int = Field(ge=0)
    delta: ChatDelta
    finish_reason: FinishReason | None = None
    logprobs: ChatLogprobs | None = None


class ChatCompletionChunk(OpenWireModel):
    """One ``data:`` event of a streamed chat completion."""

    model_config = ConfigDict(json_schema_extra=optional_in_schema('usage', 'system_fingerprint'))

    id: str = Field(min_length=1)
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
    """Only on the final usage chunk (whose ``choices`` is empty)."""
    system_fingerprint: str | None = None


class CompletionChoice(OpenWireModel):
    model_config = ConfigDict(json_schema_extra=optional_in_schema('logprobs'))

    index: int = Field(ge=0)
    text: str
    finish_reason: FinishReason
    logprobs: CompletionLogprobs | None = None


class CompletionResponse(OpenWireModel):
    model_config = ConfigDict(json_schema_extra=optional_in_schema('system_fingerprint'))

    id: str = Field(min_length=1)
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    system_fingerprint: str | None = None


class CompletionChunkChoice(OpenWireModel):
    model_config = ConfigDict(json_schema_extra=optional_in_schema('logprobs'))

    index: int = Field(ge=0)
    text: str
    finish_reason: FinishReason | None = None
    logprobs: CompletionLogprobs | None = None


class CompletionChunk(OpenWireModel):
    """One ``data:`` event of a streamed text completion (OpenAI reuses ``text_completion``)."""

    model_config = ConfigDict(json_schema_extra=optional_in_schema('usage', 'system_fingerprint'))

    id: str = Field(min_length=1)
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class EmbeddingUsage(OpenWireModel):
    prompt_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)


class Embedding(OpenWireModel):
    object: Literal["embedding"] = "embedding"
    index: int = Field(ge=0)
    embedding: Union[list[float], str]
    """Floats, or base64 of little-endian float32 when ``encoding_format`` is ``base64``."""


class EmbeddingResponse(OpenWireModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
