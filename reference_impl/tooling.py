"""Tool calls and structured outputs on the chat route: what a request asks the decoder for, how
tools reach the prompt, and how decoded text becomes ``tool_calls`` (whole or streamed).

A call is decoded as the compact JSON text ``{"name":"<name>","arguments":<object>}`` (see
reference_impl/constraints.py): the name sits at a fixed prefix and the arguments are the text
between it and the final ``}``, so the unstreamed answer and the concatenated stream read the same
slice of the same text (LLMOS-TOOL-003).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonschema

from llmos_std.errors import LLMOSError
from llmos_std.inference import AssistantMessage, ChatCompletionRequest, ToolMessage
from llmos_std.structured import ResponseFormatJsonObject, ResponseFormatJsonSchema
from llmos_std.tool_calling import FunctionCall, FunctionCallDelta, NamedToolChoice, ToolCall, ToolCallDelta

from reference_impl.constraints import ConstraintError, Grammar, call_grammar, json_grammar

Mode = Literal["json", "call", "call-or-text"]
_CALL_PREFIX = re.compile(r'^\{"name":"([A-Za-z0-9_-]{1,64})","arguments":')

FALLBACK_TOOL_PROMPT = 'To call a function, reply with only {"name":<name>,"arguments":<object>}. Functions:\n'
"""How tools reach a model whose chat template takes no ``tools`` (documented in spec 12-tools)."""


@dataclass(frozen=True)
class Structure:
    """What the decoder must produce for one chat request; ``param`` is the field a refusal names."""

    grammar: Grammar
    mode: Mode
    param: str


def _check_schema(schema: Any, param: str) -> None:
    if schema is False:
        raise LLMOSError("schema_unsupported", f"{param}: the schema `false` admits no value", param=param)
    if schema is None or schema is True:
        return
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise LLMOSError("invalid_value", f"{param} is not a valid JSON Schema: {exc.message}", param=param) from None


def plan_structure(body: ChatCompletionRequest) -> Structure | None:
    """The grammar the request needs (None: free text), refusing what LLMOS-TOOL-005 and LLMOS-SO-003 name."""
    tools = body.tools or []
    choice = body.tool_choice if body.tool_choice is not None else ("auto" if tools else "none")
    if choice != "none" and not tools:
        raise LLMOSError("invalid_value", "tool_choice needs tools", param="tool_choice")
    names = [tool.function.name for tool in tools]
    if len(set(names)) != len(names):
        raise LLMOSError("invalid_value", "tool names must be unique", param="tools")
    for i, tool in enumerate(tools):
        _check_schema(tool.function.parameters, f"tools.{i}.function.parameters")
    if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
        raise LLMOSError("invalid_value", f"tool_choice names {choice.function.name!r}, which is not among tools", param="tool_choice")
    fmt = body.response_format
    if choice != "none":
        if isinstance(choice, NamedToolChoice):
            chosen = {choice.function.name: next(t.function.parameters for t in tools if t.function.name == choice.function.name)}
        else:
            chosen = {t.function.name: t.function.parameters for t in tools}
        if choice == "auto" and isinstance(fmt, (ResponseFormatJsonObject, ResponseFormatJsonSchema)):
            raise LLMOSError("schema_unsupported", "this server cannot combine tool_choice auto with a JSON response_format", param="response_format")
        return Structure(call_grammar(chosen, optional=choice == "auto"), "call-or-text" if choice == "auto" else "call", "tools")
    if isinstance(fmt, ResponseFormatJsonObject):
        return Structure(json_grammar({"type": "object"}), "json", "response_format")
    if isinstance(fmt, ResponseFormatJsonSchema):
        param = "response_format.json_schema.schema"
        _check_schema(fmt.json_schema.schema_, param)
        return Structure(json_grammar(fmt.json_schema.schema_), "json", param)
    return None


def enforceable(structure: Structure, check: Any) -> None:
    """Runs the engine's grammar check, turning what it cannot enforce into ``schema_unsupported``."""
    try:
        check(structure.grammar)
    except ConstraintError as exc:
        raise LLMOSError("schema_unsupported", f"{structure.param}: {exc}", param=structure.param) from None


# ---------------------------------------------------------------- prompts


def _call_text(name: str, arguments: str) -> str:
    try:
        parsed = json.loads(arguments)
    except ValueError:
        parsed = arguments
    return json.dumps({"name": name, "arguments": parsed}, separators=(",", ":"), ensure_ascii=False)


def chat_messages(body: ChatCompletionRequest, text_of: Any, *, template_takes_tools: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """Messages for the chat template (and the tools list when the template renders it), history checked."""
    tools = [tool.function.model_dump(exclude_none=True) for tool in body.tools or []]
    called: dict[str, str] = {}
    messages: list[dict[str, Any]] = []
    for i, message in enumerate(body.messages):
        content = text_of(message.content, f"messages.{i}.content")
        if isinstance(message, AssistantMessage) and message.tool_calls:
            for call in message.tool_calls:
                called[call.id] = call.function.name
            if template_takes_tools:
                calls = [{"id": c.id, "type": "function", "function": {"name": c.function.name, "arguments": c.function.arguments}} for c in message.tool_calls]
                messages.append({"role": "assistant", "content": content, "tool_calls": calls})
            else:
                messages.append({"role": "assistant", "content": "\n".join(_call_text(c.function.name, c.function.arguments) for c in message.tool_calls)})
        elif isinstance(message, ToolMessage):
            if message.tool_call_id not in called:
                raise LLMOSError("invalid_value", f"tool_call_id {message.tool_call_id!r} answers no earlier call", param=f"messages.{i}.tool_call_id")
            if template_takes_tools:
                messages.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": content})
            else:
                messages.append({"role": "user", "content": f"Result of {called[message.tool_call_id]} ({message.tool_call_id}): {content}"})
        else:
            messages.append({"role": message.role, "content": content})
    if tools and not template_takes_tools and body.tool_choice != "none":
        listing = "\n".join(json.dumps(tool, ensure_ascii=False, separators=(",", ":")) for tool in tools)
        system = FALLBACK_TOOL_PROMPT + listing
        if messages and messages[0]["role"] in ("system", "developer"):
            messages[0] = {**messages[0], "content": f"{messages[0]['content']}\n\n{system}"}
        else:
            messages.insert(0, {"role": "system", "content": system})
    return messages, (tools if template_takes_tools and tools else None)


# ---------------------------------------------------------------- reading calls back


def new_call_id() -> str:
    return "call_" + secrets.token_hex(12)


def read_call(text: str, *, complete: bool) -> tuple[str, str] | None:
    """(name, arguments text) of a decoded call, or None when the text is not a call."""
    match = _CALL_PREFIX.match(text)
    if match is None:
        return None
    rest = text[match.end():]
    return match.group(1), (rest[:-1] if complete and rest.endswith("}") else rest)


def tool_calls(text: str, *, complete: bool, call_id: str) -> list[ToolCall] | None:
    call = read_call(text, complete=complete)
    if call is None:
        return None
    return [ToolCall(id=call_id, function=FunctionCall(name=call[0], arguments=call[1]))]


@dataclass
class CallStream:
    """Turns one choice's text deltas into chat deltas: content, or ``tool_calls`` fragments of one call.

    Undecided until the first character (a call starts with ``{``); a call's header waits for its full
    name; the last character is held back, since when the call completes it is the wrapper's ``}``.
    """

    mode: Mode
    call_id: str = field(default_factory=new_call_id)
    text: str = ""
    is_call: bool | None = None
    named: bool = False
    sent: int = 0
    """Characters of the arguments already sent."""

    def push(self, piece: str) -> tuple[str | None, list[ToolCallDelta]]:
        """(content to send, call fragments to send) for a new piece of decoded text."""
        self.text += piece
        if self.is_call is None and self.text:
            self.is_call = self.mode == "call" or self.text.startswith("{")
        if not self.is_call:
            return (piece or None), []
        return None, self._fragments(final=False, complete=False)

    def finish(self, *, complete: bool) -> list[ToolCallDelta]:
        return self._fragments(final=True, complete=complete) if self.is_call else []

    def _fragments(self, *, final: bool, complete: bool) -> list[ToolCallDelta]:
        fragments: list[ToolCallDelta] = []
        match = _CALL_PREFIX.match(self.text)
        if match is None:
            return fragments
        if not self.named:
            self.named = True
            fragments.append(ToolCallDelta(index=0, id=self.call_id, type="function", function=FunctionCallDelta(name=match.group(1), arguments="")))
        rest = self.text[match.end():]
        if final:
            upto = len(rest) - 1 if complete and rest.endswith("}") else len(rest)
        else:
            upto = len(rest) - 1
        if upto > self.sent:
            fragments.append(ToolCallDelta(index=0, function=FunctionCallDelta(arguments=rest[self.sent:upto])))
            self.sent = upto
        return fragments
