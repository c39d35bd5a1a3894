"""Function tools on the chat wire: definitions, choices, calls in history, in answers and in streams.

Shapes follow the OpenAI chat API (openai-python 3.57 ``chat_completion_function_tool_param``,
``chat_completion_tool_choice_option_param``, ``chat_completion_chunk``); the rules a server must keep
are LLMOS-TOOL-001..005.
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import ConfigDict, Field, JsonValue

from llmos_std.wire import OpenWireModel, WireModel, optional_in_schema

TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"


class FunctionDefinition(WireModel):
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str | None = None
    parameters: dict[str, JsonValue] | None = None
    """A JSON Schema (2020-12) for the arguments object; absent means any object."""
    strict: bool | None = None
    """Accepted for the OpenAI wire; an LLMOS server validates every call's arguments either way (LLMOS-TOOL-001)."""


class FunctionTool(WireModel):
    type: Literal["function"]
    function: FunctionDefinition


class ToolChoiceFunction(WireModel):
    name: str = Field(pattern=TOOL_NAME_PATTERN)


class NamedToolChoice(WireModel):
    """Call exactly this function."""

    type: Literal["function"]
    function: ToolChoiceFunction


ToolChoice = Union[Literal["none", "auto", "required"], NamedToolChoice]
"""``none``: answer in text; ``auto``: the model decides; ``required``: at least one call; named: that call."""


class FunctionCallParam(WireModel):
    name: str = Field(min_length=1)
    arguments: str
    """The JSON text of the arguments object, as the call was made."""


class ToolCallParam(WireModel):
    """A call an earlier assistant turn made, sent back in the history."""

    id: str = Field(min_length=1)
    type: Literal["function"]
    function: FunctionCallParam


class FunctionCall(OpenWireModel):
    name: str
    arguments: str
    """A JSON text of an object valid against the function's ``parameters``."""


class ToolCall(OpenWireModel):
    id: str = Field(min_length=1)
    """Unique within the answer; a later ``tool`` message names it in ``tool_call_id``."""
    type: Literal["function"] = "function"
    function: FunctionCall


class FunctionCallDelta(OpenWireModel):
    model_config = ConfigDict(json_schema_extra=optional_in_schema("name", "arguments"))

    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(OpenWireModel):
    """One fragment of a streamed call: the first for an ``index`` names it, later ones extend ``arguments``.

    A fragment leaves out what it does not carry rather than sending null: the OpenAI SDK's stream
    helper merges fragments key by key, and a ``"type": null`` erases the call's type."""

    model_config = ConfigDict(json_schema_extra=optional_in_schema("id", "type", "function"))

    index: int = Field(ge=0)
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta | None = None
