"""inference: OpenAI-compatible chat and text completions, unstreamed and as server-sent events."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
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
from llmos_std.operations import MODEL_DIGEST_HEADER
from llmos_std.parameters import CHAT, COMPLETION

from reference_impl.engine import ChatTemplateError, EngineError, TextModel
from reference_impl.generation import Job, SamplingRequest, check_request, check_token_ids, engine_failure, merged, plan_jobs
from reference_impl.http import Context, Handler, wire_json
from reference_impl.runtime import Lease



def _sse(payload: BaseModel | dict[str, Any] | str) -> bytes:
    if isinstance(payload, BaseModel):
        text = payload.model_dump_json(exclude_none=False)
    elif isinstance(payload, dict):
        text = json.dumps(payload)
    else:
        text = payload
    return f"data: {text}\n\n".encode()


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
    messages: list[dict[str, str]] = []
    for i, message in enumerate(body.messages):
        if isinstance(message, ToolMessage) or getattr(message, "tool_calls", None):
            if "tools" not in capabilities:
                raise LLMOSError("unsupported_parameter", "tool messages need the model capability 'tools'", param=f"messages.{i}")
        messages.append({"role": message.role, "content": _text_of(message.content, f"messages.{i}.content", capabilities)})
    try:
        return model.render_chat(messages)
    except ChatTemplateError as exc:
        raise LLMOSError("invalid_value", str(exc), param="messages") from None


def _lease_text_model(ctx: Context, capability: str) -> tuple[Lease, TextModel]:
    body = ctx.body
    if not isinstance(body, (ChatCompletionRequest, CompletionRequest)):
        raise LLMOSError("invalid_request", "unexpected body")
    lease = ctx.state.runtime.acquire(body.model)
    model = lease.model
    if not isinstance(model, TextModel) or capability not in lease.version.manifest.capabilities:
        lease.release()
        raise LLMOSError("capability_not_supported", f"{body.model} does not support {capability}", param="model")
    return lease, model


async def _respond(ctx: Context, body: SamplingRequest, operation: str, capability: str, *, chat: bool) -> Response:
    lease, model = _lease_text_model(ctx, capability)
    try:
        manifest = lease.version.manifest
        check_request(operation, body, manifest, ctx.state.settings)
        prompts: list[str | list[int]]
        if isinstance(body, ChatCompletionRequest):
            prompts = [_chat_prompt(model, body, list(manifest.capabilities))]
        else:
            prompts = prompt_batch(body.prompt)
            if len(prompts) > ctx.state.settings.limits.max_batch:
                raise LLMOSError("limit_exceeded", f"at most {ctx.state.settings.limits.max_batch} prompts", param="prompt")
            check_token_ids(prompts, model.vocab_size, "prompt")
        jobs, prompt_tokens = plan_jobs(model, prompts, body, manifest, ctx.state.settings, chat=chat)
    except BaseException:
        lease.release()
        raise
    meta: dict[str, Any] = {
        "id": ("chatcmpl-" if chat else "cmpl-") + secrets.token_hex(12),
        "created": int(time.time()),
        "model": body.model,
        "system_fingerprint": lease.version.digest,
    }
    headers = {MODEL_DIGEST_HEADER: lease.version.digest}
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        stream = _stream(model, jobs, prompt_tokens, meta, include_usage, lease, chat=chat)
        return StreamingResponse(stream, media_type="text/event-stream", headers={**headers, "Cache-Control": "no-cache"})
    try:
        texts: dict[int, list[str]] = {job.index: [] for job in jobs}
        reasons: dict[int, FinishReason] = {}
        completion_tokens = 0
        try:
            async for index, delta in merged(model, jobs, chat=chat):
                texts[index].append(delta.text)
                if delta.finish_reason is not None:
                    reasons[index] = delta.finish_reason
                    completion_tokens += delta.completion_tokens
        except EngineError as exc:
            raise engine_failure(exc) from None
    finally:
        lease.release()
    usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, total_tokens=prompt_tokens + completion_tokens)
    order = sorted(texts)
    result: BaseModel
    if chat:
        choices = [ChatChoice(index=i, message=AssistantReply(role="assistant", content="".join(texts[i])), finish_reason=reasons[i]) for i in order]
        result = ChatCompletionResponse(choices=choices, usage=usage, **meta)
    else:
        text_choices = [CompletionChoice(index=i, text="".join(texts[i]), finish_reason=reasons[i]) for i in order]
        result = CompletionResponse(choices=text_choices, usage=usage, **meta)
    return wire_json(result, headers=headers)


async def _stream(model: TextModel, jobs: list[Job], prompt_tokens: int, meta: dict[str, Any], include_usage: bool, lease: Lease, *, chat: bool) -> AsyncIterator[bytes]:
    """The SSE body: role chunk, content deltas, one finish per choice, optional usage, then [DONE] on every path."""
    completion_tokens = 0
    try:
        if chat:
            yield _sse(ChatCompletionChunk(choices=[ChatChunkChoice(index=job.index, delta=ChatDelta(role="assistant", content="")) for job in jobs], **meta))
        try:
            async for index, delta in merged(model, jobs, chat=chat):
                if delta.finish_reason is not None:
                    completion_tokens += delta.completion_tokens
                if not delta.text and delta.finish_reason is None:
                    continue
                if chat:
                    choice = ChatChunkChoice(index=index, delta=ChatDelta(content=delta.text or None), finish_reason=delta.finish_reason)
                    yield _sse(ChatCompletionChunk(choices=[choice], **meta))
                else:
                    text_choice = CompletionChunkChoice(index=index, text=delta.text, finish_reason=delta.finish_reason)
                    yield _sse(CompletionChunk(choices=[text_choice], **meta))
            if include_usage:
                usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, total_tokens=prompt_tokens + completion_tokens)
                chunk_type = ChatCompletionChunk if chat else CompletionChunk
                yield _sse(chunk_type(choices=[], usage=usage, **meta))
        except EngineError as exc:
            yield _sse(engine_failure(exc).envelope())
        yield _sse("[DONE]")
    finally:
        lease.release()


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
