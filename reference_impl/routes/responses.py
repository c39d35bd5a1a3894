"""responses: ``POST /v1/responses`` (Open Responses, stateless) on the chat pipeline.

A request becomes the chat request it means (instructions and items as messages, calls as
assistant ``tool_calls``, outputs as ``tool`` messages, ``text.format`` as ``response_format``), runs
through the same planning, grammar and batcher, and the deltas come back as items and events.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from starlette.responses import Response, StreamingResponse

from llmos_std.errors import LLMOSError
from llmos_std.inference import ChatCompletionRequest
from llmos_std.operations import MODEL_DIGEST_HEADER
from llmos_std.responses import (
    ContentPartEvent,
    ErrorEvent,
    FunctionCallArgumentsDeltaEvent,
    FunctionCallArgumentsDoneEvent,
    FunctionCallItem,
    FunctionCallItemParam,
    FunctionCallOutputItemParam,
    MessageItemParam,
    OutputItemEvent,
    OutputMessage,
    OutputText,
    OutputTextDeltaEvent,
    OutputTextDoneEvent,
    ResponseCreateRequest,
    ResponseError,
    ResponseLifecycleEvent,
    ResponseObject,
    ResponseUsage,
    TextFormatJsonObject,
    TextFormatJsonSchema,
)
from llmos_std.validation import error_from_validation

from reference_impl.engine import EngineError
from reference_impl.generation import collect, engine_failure, merged
from reference_impl.http import Context, Handler, wire_json
from reference_impl.routes.inference import Prepared, prepare_chat
from reference_impl.tooling import CallStream, read_call

_PARAMS = (
    (re.compile(r"^response_format\.json_schema\.schema"), "text.format.schema"),
    (re.compile(r"^response_format"), "text.format"),
    (re.compile(r"^max_tokens$"), "max_output_tokens"),
    (re.compile(r"^tools\.(\d+)\.function\.(\w+)"), r"tools.\1.\2"),
    (re.compile(r"^messages.*"), "input"),
)
"""A refusal of the chat request names the Responses field it came from."""


def _param(param: str | None) -> str | None:
    if param is None:
        return None
    for pattern, replacement in _PARAMS:
        if pattern.match(param):
            return pattern.sub(replacement, param)
    return param


def _text(content: Any) -> str:
    return content if isinstance(content, str) else "".join(part.text for part in content)


def _as_chat(body: ResponseCreateRequest) -> dict[str, Any]:
    """The chat request a Responses request means; LLMOS-RESP-002's call_id rule is judged here."""
    messages: list[dict[str, Any]] = []
    if body.instructions is not None:
        messages.append({"role": "system", "content": body.instructions})
    items = [MessageItemParam(role="user", content=body.input)] if isinstance(body.input, str) else body.input
    called: set[str] = set()
    for i, item in enumerate(items):
        if isinstance(item, FunctionCallItemParam):
            called.add(item.call_id)
            call = {"id": item.call_id, "type": "function", "function": {"name": item.name, "arguments": item.arguments}}
            if messages and messages[-1].get("tool_calls") and messages[-1]["role"] == "assistant":
                messages[-1]["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif isinstance(item, FunctionCallOutputItemParam):
            if item.call_id not in called:
                raise LLMOSError("invalid_value", f"call_id {item.call_id!r} answers no function_call earlier in input", param=f"input.{i}.call_id")
            messages.append({"role": "tool", "tool_call_id": item.call_id, "content": item.output})
        else:
            messages.append({"role": item.role, "content": _text(item.content)})
    chat: dict[str, Any] = {"model": body.model, "messages": messages}
    if body.tools:
        chat["tools"] = [{"type": "function", "function": tool.model_dump(exclude={"type"}, exclude_none=True)} for tool in body.tools]
    if body.tool_choice is not None:
        chat["tool_choice"] = body.tool_choice if isinstance(body.tool_choice, str) else {"type": "function", "function": {"name": body.tool_choice.name}}
    fmt = body.text.format if body.text else None
    if isinstance(fmt, TextFormatJsonObject):
        chat["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, TextFormatJsonSchema):
        spec = {"name": fmt.name, "schema": fmt.schema_, **({"strict": fmt.strict} if fmt.strict is not None else {}),
                **({"description": fmt.description} if fmt.description is not None else {})}
        chat["response_format"] = {"type": "json_schema", "json_schema": spec}
    for ours, theirs in (("max_tokens", body.max_output_tokens), ("temperature", body.temperature), ("top_p", body.top_p),
                         ("parallel_tool_calls", body.parallel_tool_calls)):
        if theirs is not None:
            chat[ours] = theirs
    return chat


def _chat_request(body: ResponseCreateRequest) -> ChatCompletionRequest:
    if body.store:
        raise LLMOSError("unsupported_parameter", "this server keeps no responses (store); send the conversation as input items", param="store")
    if body.previous_response_id is not None:
        raise LLMOSError("unsupported_parameter", "this server keeps no responses (previous_response_id); send the conversation as input items", param="previous_response_id")
    try:
        return ChatCompletionRequest.model_validate(_as_chat(body))
    except ValidationError as exc:
        error = error_from_validation(exc)
        raise LLMOSError(error.code, error.message, param=_param(error.param)) from None


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


@dataclass
class _Build:
    """The response under construction: echoes of the request, output items, usage."""

    body: ResponseCreateRequest
    id: str = field(default_factory=lambda: _new_id("resp"))
    created_at: int = field(default_factory=lambda: int(time.time()))

    def response(self, status: str, output: list[Any], usage: ResponseUsage | None = None, *, reason: str | None = None,
                 error: ResponseError | None = None) -> ResponseObject:
        body = self.body
        return ResponseObject.model_validate({
            "id": self.id, "created_at": self.created_at, "status": status, "model": body.model,
            "output": [item.model_dump() for item in output], "usage": usage.model_dump() if usage else None,
            "error": error.model_dump() if error else None,
            "incomplete_details": {"reason": "max_output_tokens"} if reason == "length" else None,
            "instructions": body.instructions, "tools": [t.model_dump(exclude_none=True) for t in body.tools or []],
            "tool_choice": (body.tool_choice if isinstance(body.tool_choice, str) else body.tool_choice.model_dump()) if body.tool_choice is not None else ("auto" if body.tools else "none"),
            "parallel_tool_calls": body.parallel_tool_calls if body.parallel_tool_calls is not None else True,
            "text": body.text.model_dump(by_alias=True, exclude_none=True) if body.text and body.text.format else {"format": {"type": "text"}},
            "temperature": body.temperature, "top_p": body.top_p, "max_output_tokens": body.max_output_tokens,
            "metadata": body.metadata or {}, "user": body.user,
        })


def _item(text: str, reason: str, calls: bool, ids: tuple[str, str]) -> FunctionCallItem | OutputMessage:
    status: Literal["completed", "incomplete"] = "completed" if reason != "length" else "incomplete"
    call = read_call(text, complete=reason == "stop") if calls else None
    if call is not None:
        return FunctionCallItem(id=ids[0].replace("msg_", "fc_"), call_id=ids[1], name=call[0], arguments=call[1], status=status)
    return OutputMessage(id=ids[0], status=status, content=[OutputText(text=text)])


async def create_response(ctx: Context) -> Response:
    body = ctx.body
    if not isinstance(body, ResponseCreateRequest):
        raise LLMOSError("invalid_request", "unexpected body")
    chat = _chat_request(body)
    try:
        prepared = prepare_chat(ctx, chat)
    except LLMOSError as exc:
        raise LLMOSError(exc.code, exc.message, param=_param(exc.param), headers=exc.headers) from None
    build = _Build(body)
    headers = {MODEL_DIGEST_HEADER: prepared.lease.version.digest}
    calls = prepared.structure is not None and prepared.structure.mode != "json"
    ids = (_new_id("msg"), _new_id("call"))
    if body.stream:
        return StreamingResponse(_events(prepared, build, calls, ids), media_type="text/event-stream", headers={**headers, "Cache-Control": "no-cache"})
    try:
        answers = await collect(prepared.model, prepared.jobs, chat=True)
    finally:
        prepared.lease.release()
    (index,) = answers.texts  # a response has one choice
    text, reason, output_tokens = answers.texts[index], answers.reasons[index], answers.completion_tokens
    usage = ResponseUsage(input_tokens=prepared.prompt_tokens, output_tokens=output_tokens, total_tokens=prepared.prompt_tokens + output_tokens)
    item = _item(text, reason, calls, ids)
    return wire_json(build.response("incomplete" if reason == "length" else "completed", [item], usage, reason=reason), headers=headers)


class _Events:
    """Numbers events in order and writes each with its ``event:`` line (LLMOS-RESP-004)."""

    def __init__(self) -> None:
        self.sequence = 0

    def __call__(self, event: BaseModel) -> bytes:
        data = event.model_dump(mode="json")
        data["sequence_number"] = self.sequence
        self.sequence += 1
        return f"event: {data['type']}\ndata: {json.dumps(data, separators=(',', ':'), ensure_ascii=False)}\n\n".encode()


async def _events(prepared: Prepared, build: _Build, calls: bool, ids: tuple[str, str]) -> AsyncIterator[bytes]:
    emit = _Events()
    reader = CallStream("call" if prepared.structure is not None and prepared.structure.grammar.kind == "call" else "call-or-text") if calls else None
    message_id, call_id = ids
    item_id = message_id.replace("msg_", "fc_")
    text, reason, output_tokens, opened = "", "stop", 0, False
    try:
        yield emit(ResponseLifecycleEvent(type="response.created", sequence_number=0, response=build.response("in_progress", [])))
        yield emit(ResponseLifecycleEvent(type="response.in_progress", sequence_number=0, response=build.response("in_progress", [])))
        try:
            async for _index, delta in merged(prepared.model, prepared.jobs, chat=True):
                text += delta.text
                if delta.finish_reason is not None:
                    reason, output_tokens = delta.finish_reason, delta.completion_tokens
                if reader is not None:
                    _content, fragments = reader.push(delta.text)
                    if delta.finish_reason is not None:
                        fragments += reader.finish(complete=delta.finish_reason == "stop")
                    if reader.is_call:
                        for fragment in fragments:
                            if fragment.id is not None and fragment.function is not None:
                                opened = True
                                added = FunctionCallItem(id=item_id, call_id=call_id, name=fragment.function.name or "", arguments="", status="in_progress")
                                yield emit(OutputItemEvent(type="response.output_item.added", sequence_number=0, output_index=0, item=added))
                            elif fragment.function is not None and fragment.function.arguments:
                                yield emit(FunctionCallArgumentsDeltaEvent(type="response.function_call_arguments.delta", sequence_number=0, item_id=item_id, output_index=0, delta=fragment.function.arguments))
                        continue
                if delta.text:
                    if not opened:
                        opened = True
                        for event in _open_message(message_id):
                            yield emit(event)
                    yield emit(OutputTextDeltaEvent(type="response.output_text.delta", sequence_number=0, item_id=message_id, output_index=0, content_index=0, delta=delta.text))
        except EngineError as exc:
            failure = engine_failure(exc)
            yield emit(ErrorEvent(type="error", sequence_number=0, code=failure.code, message=failure.message))
            yield emit(ResponseLifecycleEvent(type="response.failed", sequence_number=0, response=build.response(
                "failed", [], error=ResponseError(code=failure.code, message=failure.message))))
            yield b"data: [DONE]\n\n"
            return
        item = _item(text, reason, calls, ids)
        if isinstance(item, FunctionCallItem):
            if not opened:
                yield emit(OutputItemEvent(type="response.output_item.added", sequence_number=0, output_index=0, item=item.model_copy(update={"arguments": "", "status": "in_progress"})))
            yield emit(FunctionCallArgumentsDoneEvent(type="response.function_call_arguments.done", sequence_number=0, item_id=item.id, output_index=0, name=item.name, arguments=item.arguments))
        else:
            if not opened:
                for event in _open_message(message_id):
                    yield emit(event)
            part = item.content[0]
            yield emit(OutputTextDoneEvent(type="response.output_text.done", sequence_number=0, item_id=item.id, output_index=0, content_index=0, text=part.text))
            yield emit(ContentPartEvent(type="response.content_part.done", sequence_number=0, item_id=item.id, output_index=0, content_index=0, part=part))
        yield emit(OutputItemEvent(type="response.output_item.done", sequence_number=0, output_index=0, item=item))
        usage = ResponseUsage(input_tokens=prepared.prompt_tokens, output_tokens=output_tokens, total_tokens=prepared.prompt_tokens + output_tokens)
        status = "incomplete" if reason == "length" else "completed"
        terminal: Literal["response.completed", "response.incomplete"] = "response.incomplete" if reason == "length" else "response.completed"
        yield emit(ResponseLifecycleEvent(type=terminal, sequence_number=0, response=build.response(status, [item], usage, reason=reason)))
        yield b"data: [DONE]\n\n"
    finally:
        prepared.lease.release()


def _open_message(message_id: str) -> list[BaseModel]:
    empty = OutputMessage(id=message_id, status="in_progress", content=[])
    return [
        OutputItemEvent(type="response.output_item.added", sequence_number=0, output_index=0, item=empty),
        ContentPartEvent(type="response.content_part.added", sequence_number=0, item_id=message_id, output_index=0, content_index=0, part=OutputText(text="")),
    ]


HANDLERS: dict[str, Handler] = {"create_response": create_response}
