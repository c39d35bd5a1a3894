"""The ``responses`` profile: ``POST /v1/responses`` after Open Responses (release 2026-04-24), stateless.

What is in: text and message-item input, ``instructions``, function tools with ``function_call`` /
``function_call_output`` round trips carried in ``input``, ``text.format`` (``json_schema``,
``json_object``), ``max_output_tokens``, and streaming with the lifecycle, item, content-part and
delta events, each with ``sequence_number`` and an ``event:`` line equal to its ``type``.
What is out, and why: stored responses (``store: true``, ``previous_response_id``,
``/responses/compact``, the WebSocket mode). Keeping every response server-side makes a
stateless inference server a database of conversations, with retention, isolation and deletion
duties the standard would have to specify first; a client that sends the items back (which the
OpenAI SDKs make easy) loses nothing. Reasoning items, hosted tools and file/image inputs are out
with the matching chat features. Rules: LLMOS-RESP-001..005.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import ConfigDict, Field, JsonValue, RootModel

from llmos_std.structured import SCHEMA_NAME_PATTERN
from llmos_std.tool_calling import TOOL_NAME_PATTERN
from llmos_std.wire import OpenWireModel, WireModel, optional_in_schema

OPEN_RESPONSES_RELEASE = "2026-04-24"
"""The Open Responses release these shapes follow (openresponses.org, public/openapi/2026-04-24)."""
EXTENSION_EVENT_PATTERN = r"^[a-z0-9][a-z0-9_-]*:[A-Za-z0-9_.:-]+$"
"""Implementor events (``acme:progress``): clients ignore them; servers may send them."""


# ---------------------------------------------------------------- input items


class InputTextPart(WireModel):
    type: Literal["input_text"]
    text: str


class OutputTextPart(WireModel):
    """Assistant text sent back in the history."""

    type: Literal["output_text"]
    text: str
    annotations: list[JsonValue] | None = None
    logprobs: list[JsonValue] | None = None


ContentPartParam = Annotated[Union[InputTextPart, OutputTextPart], Field(discriminator="type")]


class MessageItemParam(WireModel):
    type: Literal["message"] | None = None
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[ContentPartParam]
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class FunctionCallItemParam(WireModel):
    """A call a previous response made, sent back so that its output can follow it."""

    type: Literal["function_call"]
    call_id: str = Field(min_length=1)
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    arguments: str
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class FunctionCallOutputItemParam(WireModel):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1)
    """Names a ``function_call`` item earlier in ``input``."""
    output: str
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


InputItem = Union[MessageItemParam, FunctionCallItemParam, FunctionCallOutputItemParam]


# ---------------------------------------------------------------- request


class ResponsesFunctionTool(WireModel):
    type: Literal["function"]
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str | None = None
    parameters: dict[str, JsonValue] | None = None
    strict: bool | None = None


class ResponsesNamedToolChoice(WireModel):
    type: Literal["function"]
    name: str = Field(pattern=TOOL_NAME_PATTERN)


ResponsesToolChoice = Union[Literal["none", "auto", "required"], ResponsesNamedToolChoice]


class TextFormatText(WireModel):
    type: Literal["text"]


class TextFormatJsonObject(WireModel):
    type: Literal["json_object"]


class TextFormatJsonSchema(WireModel):
    type: Literal["json_schema"]
    name: str = Field(pattern=SCHEMA_NAME_PATTERN)
    schema_: dict[str, JsonValue] | bool = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


TextFormat = Annotated[Union[TextFormatText, TextFormatJsonObject, TextFormatJsonSchema], Field(discriminator="type")]


class TextConfig(WireModel):
    format: TextFormat | None = None


class ResponseCreateRequest(WireModel):
    """``POST /v1/responses``."""

    model: str = Field(min_length=1)
    input: str | Annotated[list[InputItem], Field(min_length=1)]
    """A user message's text, or the conversation as items (messages, calls and their outputs)."""
    instructions: str | None = None
    """A system message placed before ``input``."""
    tools: list[ResponsesFunctionTool] | None = Field(default=None, max_length=128)
    tool_choice: ResponsesToolChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stream: bool | None = None
    store: bool | None = None
    """Only ``false`` (the default here): the profile keeps no responses (LLMOS-RESP-005)."""
    previous_response_id: str | None = None
    """Refused: the profile keeps no responses (LLMOS-RESP-005)."""
    metadata: dict[str, str] | None = None
    user: str | None = None


# ---------------------------------------------------------------- response


class OutputText(OpenWireModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[JsonValue] = Field(default_factory=list)
    logprobs: list[JsonValue] = Field(default_factory=list)


class OutputMessage(OpenWireModel):
    type: Literal["message"] = "message"
    id: str
    status: Literal["in_progress", "completed", "incomplete"]
    role: Literal["assistant"] = "assistant"
    content: list[OutputText]


class FunctionCallItem(OpenWireModel):
    type: Literal["function_call"] = "function_call"
    id: str
    call_id: str
    """What a ``function_call_output`` item names to answer this call."""
    name: str
    arguments: str
    """A JSON text of an object valid against the function's ``parameters``."""
    status: Literal["in_progress", "completed", "incomplete"]


OutputItem = Annotated[Union[OutputMessage, FunctionCallItem], Field(discriminator="type")]


class InputTokensDetails(OpenWireModel):
    cached_tokens: int = Field(default=0, ge=0)


class OutputTokensDetails(OpenWireModel):
    reasoning_tokens: int = Field(default=0, ge=0)


class ResponseUsage(OpenWireModel):
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)


class ResponseError(OpenWireModel):
    code: str
    message: str


class IncompleteDetails(OpenWireModel):
    reason: Literal["max_output_tokens", "content_filter"]


class ResponseObject(OpenWireModel):
    model_config = ConfigDict(json_schema_extra=optional_in_schema("usage", "text", "max_output_tokens", "user", "store", "previous_response_id"))

    id: str = Field(min_length=1)
    object: Literal["response"] = "response"
    created_at: int
    status: Literal["queued", "in_progress", "completed", "incomplete", "failed"]
    model: str
    output: list[OutputItem]
    usage: ResponseUsage | None = None
    error: ResponseError | None
    incomplete_details: IncompleteDetails | None
    instructions: str | None
    tools: list[JsonValue]
    tool_choice: JsonValue
    parallel_tool_calls: bool
    text: JsonValue = None
    temperature: float | None
    top_p: float | None
    max_output_tokens: int | None = None
    previous_response_id: str | None = None
    store: bool = False
    metadata: dict[str, str]
    user: str | None = None


# ---------------------------------------------------------------- stream events


class _Event(OpenWireModel):
    sequence_number: int = Field(ge=0)
    """0 for the first event, then one more for each event of the stream."""


class ResponseLifecycleEvent(_Event):
    type: Literal["response.created", "response.in_progress", "response.completed", "response.incomplete", "response.failed"]
    response: ResponseObject


class OutputItemEvent(_Event):
    type: Literal["response.output_item.added", "response.output_item.done"]
    output_index: int = Field(ge=0)
    item: OutputItem


class ContentPartEvent(_Event):
    type: Literal["response.content_part.added", "response.content_part.done"]
    item_id: str
    output_index: int = Field(ge=0)
    content_index: int = Field(ge=0)
    part: OutputText


class OutputTextDeltaEvent(_Event):
    type: Literal["response.output_text.delta"]
    item_id: str
    output_index: int = Field(ge=0)
    content_index: int = Field(ge=0)
    delta: str
    logprobs: list[JsonValue] = Field(default_factory=list)


class OutputTextDoneEvent(_Event):
    type: Literal["response.output_text.done"]
    item_id: str
    output_index: int = Field(ge=0)
    content_index: int = Field(ge=0)
    text: str
    """The part's whole text: its deltas concatenated."""
    logprobs: list[JsonValue] = Field(default_factory=list)


class FunctionCallArgumentsDeltaEvent(_Event):
    type: Literal["response.function_call_arguments.delta"]
    item_id: str
    output_index: int = Field(ge=0)
    delta: str


class FunctionCallArgumentsDoneEvent(_Event):
    type: Literal["response.function_call_arguments.done"]
    item_id: str
    output_index: int = Field(ge=0)
    name: str
    arguments: str
    """The call's whole arguments: its deltas concatenated."""


class ErrorEvent(_Event):
    """A failure after the stream began; ``response.failed`` follows."""

    type: Literal["error"]
    code: str | None
    message: str
    param: str | None = None


class ResponseStreamEvent(RootModel[Annotated[Union[
    ResponseLifecycleEvent, OutputItemEvent, ContentPartEvent, OutputTextDeltaEvent, OutputTextDoneEvent,
    FunctionCallArgumentsDeltaEvent, FunctionCallArgumentsDoneEvent, ErrorEvent,
], Field(discriminator="type")]]):
    """One event of a streamed response; its SSE ``event:`` line equals ``type``."""
