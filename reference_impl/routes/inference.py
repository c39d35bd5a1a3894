"""inference: OpenAI-compatible chat and text completions, unstreamed and as server-sent events."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.responses import Response, StreamingResponse

from llmos_std.errors import LLMOSError
from llmos_std.inference import (
    AssistantReply,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatDelta,
    CompletionChoice,
    CompletionChunk,
    CompletionChunkChoice,
    CompletionRequest,
    CompletionResponse,
    FinishReason,
    ImageContentPart,
    MessageContent,
    ToolMessage,
    Usage,
    prompt_batch,
)
from llmos_std.logprobs import ChatLogprobs
from llmos_std.operations import MODEL_DIGEST_HEADER
from llmos_std.parameters import CHAT, COMPLETION

from reference_impl.capabilities import served_capabilities
from reference_impl.engine import ChatTemplateError, Delta, EngineError, TextModel
from reference_impl.generation import Job, SamplingRequest, check_request, check_token_ids, collect, engine_failure, merged, plan_jobs, requested_logprobs
from reference_impl.token_logprobs import chat_entries, completion_logprobs
from reference_impl.tooling import CallStream, Structure, chat_messages, enforceable, new_call_id, plan_structure, tool_calls
from reference_impl.http import Context, Handler, wire_json
from reference_impl.runtime import Lease



def _sse(payload: BaseModel | dict[str, Any] | str) -> bytes:
    if isinstance(payload, ChatCompletionChunk) and any(c.delta.tool_calls for c in payload.choices):
        text = json.dumps(_fragments_without_nulls(payload.model_dump(mode="json")), separators=(",", ":"))
    elif isinstance(payload, BaseModel):
        text = payload.model_dump_json(exclude_none=False)
    elif isinstance(payload, dict):
        text = json.dumps(payload)
    else:
        text = payload
    return f"data: {text}\n\n".encode()


def _fragments_without_nulls(chunk: dict[str, Any]) -> dict[str, Any]:
    """Tool-call fragments name only what they carry (see llmos_std.tool_calling.ToolCallDelta)."""
    for choice in chunk["choices"]:
        fragments = choice["delta"].get("tool_calls") or []
        choice["delta"]["tool_calls"] = [
            {**{k: v for k, v in f.items() if v is not None and k != "function"},
             **({"function": {k: v for k, v in f["function"].items() if v is not None}} if f.get("function") else {})}
            for f in fragments
        ]
    return chunk


def _text_of(content: MessageContent | None, param: str, capabilities: list[str]) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for i, part in enumerate(content):
        if isinstance(part, ImageContentPart):
            if "vision" not in capabilities:
                raise LLMOSError("unsupported_parameter", "image content needs the model capability 'vision'", param=f"{param}.{i}")
            continue
        parts.append(part.text)
    return "".join(parts)


def _chat_prompt(model: TextModel, body: ChatCompletionRequest, capabilities: list[str]) -> str:
    if not model.has_chat_template:
        raise LLMOSError("capability_not_supported", "this model has no chat template; use /v1/completions", param="model")
    for i, message in enumerate(body.messages):
        if isinstance(message, ToolMessage) or getattr(message, "tool_calls", None):
            if "tools" not in capabilities:
                raise LLMOSError("unsupported_parameter", "tool messages need the model capability 'tools'", param=f"messages.{i}")
    messages, tools = chat_messages(body, lambda content, param: _text_of(content, param, capabilities), template_takes_tools=model.template_takes_tools)
    try:
        return model.render_chat(messages, tools)
    except ChatTemplateError as exc:
        raise LLMOSError("invalid_value", str(exc), param="messages") from None


def _lease_text_model(ctx: Context, body: SamplingRequest, capability: str) -> tuple[Lease, TextModel]:
    lease = ctx.state.runtime.acquire(body.model)
    model = lease.model
    if not isinstance(model, TextModel) or capability not in served_capabilities(lease.version.manifest):
        lease.release()
        raise LLMOSError("capability_not_supported", f"{body.model} does not support {capability}", param="model")
    return lease, model


@dataclass
class Prepared:
    """A request checked and planned: the leased model, its jobs, and the grammar they decode under."""

    lease: Lease
    model: TextModel
    jobs: list[Job]
    prompt_tokens: int
    structure: Structure | None
    top_logprobs: int | None


def _prepare(ctx: Context, body: SamplingRequest, operation: str, capability: str, *, chat: bool) -> Prepared:
    """Lease, check and plan; the lease is released here on any refusal and by the caller otherwise."""
    lease, model = _lease_text_model(ctx, body, capability)
    structure: Structure | None = None
    try:
        manifest = lease.version.manifest
        check_request(operation, body, manifest, ctx.state.settings)
        top_logprobs = requested_logprobs(body)
        prompts: list[str | list[int]]
        if isinstance(body, ChatCompletionRequest):
            structure = plan_structure(body)
            if structure is not None:
                enforceable(structure, model.check_grammar)
            prompts = [_chat_prompt(model, body, list[str](served_capabilities(manifest)))]
        else:
            prompts = prompt_batch(body.prompt)
            if len(prompts) > ctx.state.settings.limits.max_batch:
                raise LLMOSError("limit_exceeded", f"at most {ctx.state.settings.limits.max_batch} prompts", param="prompt")
            check_token_ids(prompts, model.vocab_size, "prompt")
        jobs, prompt_tokens = plan_jobs(model, prompts, body, manifest, ctx.state.settings, chat=chat,
                                        grammar=structure.grammar if structure else None, top_logprobs=top_logprobs)
    except BaseException:
        lease.release()
        raise
    return Prepared(lease, model, jobs, prompt_tokens, structure, top_logprobs)


def prepare_chat(ctx: Context, body: ChatCompletionRequest) -> Prepared:
    """A chat request planned as the chat route plans it (the Responses route speaks through it)."""
    return _prepare(ctx, body, CHAT, "chat", chat=True)


async def _respond(ctx: Context, body: SamplingRequest, operation: str, capability: str, *, chat: bool) -> Response:
    prepared = _prepare(ctx, body, operation, capability, chat=chat)
    lease, model, jobs, prompt_tokens, structure, top_logprobs = (
        prepared.lease, prepared.model, prepared.jobs, prepared.prompt_tokens, prepared.structure, prepared.top_logprobs)
    meta: dict[str, Any] = {
        "id": ("chatcmpl-" if chat else "cmpl-") + secrets.token_hex(12),
        "created": int(time.time()),
        "model": body.model,
        "system_fingerprint": lease.version.digest,
    }
    headers = {MODEL_DIGEST_HEADER: lease.version.digest}
    calls = structure is not None and structure.mode != "json"
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        options = _StreamOptions(include_usage, calls, top_logprobs is not None)
        stream = _stream(model, jobs, prompt_tokens, meta, options, lease, chat=chat)
        return StreamingResponse(stream, media_type="text/event-stream", headers={**headers, "Cache-Control": "no-cache"})
    try:
        answers = await collect(model, jobs, chat=chat)
    finally:
        lease.release()
    completion_tokens = answers.completion_tokens
    usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, total_tokens=prompt_tokens + completion_tokens)
    order = sorted(answers.texts)
    result: BaseModel
    if chat:
        choices = []
        for i in order:
            text, reason = answers.texts[i], answers.reasons[i]
            made = tool_calls(text, complete=reason == "stop", call_id=new_call_id()) if calls else None
            reply = AssistantReply(role="assistant", content=None if made else text, tool_calls=made)
            logprobs = ChatLogprobs(content=chat_entries(answers.logprobs[i], model.token_text)) if top_logprobs is not None else None
            choices.append(ChatChoice(index=i, message=reply, finish_reason="tool_calls" if made and reason == "stop" else reason, logprobs=logprobs))
        result = ChatCompletionResponse(choices=choices, usage=usage, **meta)
    else:
        text_choices = []
        for i in order:
            legacy = completion_logprobs(answers.logprobs[i], model.token_text, 0)[0] if top_logprobs is not None else None
            text_choices.append(CompletionChoice(index=i, text=answers.texts[i], finish_reason=answers.reasons[i], logprobs=legacy))
        result = CompletionResponse(choices=text_choices, usage=usage, **meta)
    return wire_json(result, headers=headers)


@dataclass(frozen=True)
class _StreamOptions:
    include_usage: bool
    calls: bool
    """The decoder may produce a tool call: content goes through a CallStream."""
    logprobs: bool


async def _stream(model: TextModel, jobs: list[Job], prompt_tokens: int, meta: dict[str, Any], options: _StreamOptions, lease: Lease, *, chat: bool) -> AsyncIterator[bytes]:
    """The SSE body: role chunk, content deltas, one finish per choice, optional usage, then [DONE] on every path."""
    completion_tokens = 0
    readers = {job.index: CallStream("call" if job.grammar is not None and job.grammar.kind == "call" else "call-or-text") for job in jobs} if options.calls else {}
    offsets = {job.index: 0 for job in jobs}
    try:
        if chat:
            yield _sse(ChatCompletionChunk(choices=[ChatChunkChoice(index=job.index, delta=ChatDelta(role="assistant", content="")) for job in jobs], **meta))
        try:
            async for index, delta in merged(model, jobs, chat=chat):
                if delta.finish_reason is not None:
                    completion_tokens += delta.completion_tokens
                if not delta.text and delta.finish_reason is None and not delta.logprobs:
                    continue
                if chat:
                    for chunk in _chat_chunks(index, delta, readers.get(index), options, model):
                        yield _sse(ChatCompletionChunk(choices=[chunk], **meta))
                else:
                    legacy = None
                    if options.logprobs:
                        legacy, offsets[index] = completion_logprobs(delta.logprobs, model.token_text, offsets[index])
                    text_choice = CompletionChunkChoice(index=index, text=delta.text, finish_reason=delta.finish_reason, logprobs=legacy)
                    yield _sse(CompletionChunk(choices=[text_choice], **meta))
            if options.include_usage:
                usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, total_tokens=prompt_tokens + completion_tokens)
                chunk_type = ChatCompletionChunk if chat else CompletionChunk
                yield _sse(chunk_type(choices=[], usage=usage, **meta))
        except EngineError as exc:
            yield _sse(engine_failure(exc).envelope())
        yield _sse("[DONE]")
    finally:
        lease.release()


def _chat_chunks(index: int, delta: Delta, reader: CallStream | None, options: _StreamOptions, model: TextModel) -> list[ChatChunkChoice]:
    """One delta as chat chunk choices: content or call fragments, then (for a call) an empty-delta finish."""
    logprobs = ChatLogprobs(content=chat_entries(delta.logprobs, model.token_text)) if options.logprobs else None
    if reader is None:
        return [ChatChunkChoice(index=index, delta=ChatDelta(content=delta.text or None), finish_reason=delta.finish_reason, logprobs=logprobs)]
    content, fragments = reader.push(delta.text)
    if delta.finish_reason is not None:
        fragments += reader.finish(complete=delta.finish_reason == "stop")
    chunks = []
    if content is not None or fragments or logprobs is not None:
        chunks.append(ChatChunkChoice(index=index, delta=ChatDelta(content=content, tool_calls=fragments or None), logprobs=logprobs))
    if delta.finish_reason is not None:
        reason: FinishReason = "tool_calls" if reader.is_call and reader.named and delta.finish_reason == "stop" else delta.finish_reason
        chunks.append(ChatChunkChoice(index=index, delta=ChatDelta(), finish_reason=reason))
    return chunks


async def create_chat_completion(ctx: Context) -> Response:
    if not isinstance(ctx.body, ChatCompletionRequest):
        raise LLMOSError("invalid_request", "unexpected body")
    return await _respond(ctx, ctx.body, CHAT, "chat", chat=True)


async def create_completion(ctx: Context) -> Response:
    if not isinstance(ctx.body, CompletionRequest):
        raise LLMOSError("invalid_request", "unexpected body")
    return await _respond(ctx, ctx.body, COMPLETION, "text-generation", chat=False)


HANDLERS: dict[str, Handler] = {
    "create_chat_completion": create_chat_completion,
    "create_completion": create_completion,
}
