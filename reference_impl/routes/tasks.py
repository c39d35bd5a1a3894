"""tasks: translate, summarize and answer over one input or a batch, unstreamed or as server-sent events."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import Response, StreamingResponse

from llmos_std.errors import LLMOSError
from llmos_std.inference import Usage
from llmos_std.operations import MODEL_DIGEST_HEADER
from llmos_std.tasks import REQUIRED_FIELDS, TASK_FIELDS, TASK_NAMES, TaskChunk, TaskDelta, TaskInfo, TaskList, TaskRequest, TaskResponse, TaskResult

from reference_impl.engine import EngineError, TextModel
from reference_impl.generation import engine_failure
from reference_impl.http import Context, Handler, wire_json
from reference_impl.routes.inference import _sse
from reference_impl.runtime import Lease
from reference_impl.tasks import TaskPlan, TaskSettings, jobs_for, offered_tasks, plan_task, run_plans


async def list_tasks(ctx: Context) -> Response:
    registry = ctx.state.registry
    offered: dict[str, list[str]] = {task: [] for task in TASK_NAMES}
    for name in registry.names():
        active = registry.active_version(name)
        if active is not None:
            for task in offered_tasks(active.manifest):
                offered[task].append(name)
    return wire_json(TaskList(data=[TaskInfo.model_validate({"name": t, "models": m}) for t, m in offered.items() if m]))


def _check_fields(task: str, body: TaskRequest) -> None:
    for field in sorted(set().union(*TASK_FIELDS.values()) - TASK_FIELDS[task]):
        if getattr(body, field) is not None:
            raise LLMOSError("unsupported_parameter", f"{field} is not a parameter of {task}", param=field)
    for field in sorted(REQUIRED_FIELDS.get(task, ())):
        if getattr(body, field) is None:
            raise LLMOSError("missing_required_parameter", f"{task} needs {field}", param=field)


def lease_task_model(ctx: Context, model_id: str, task: str) -> tuple[Lease, TextModel]:
    lease = ctx.state.runtime.acquire(model_id)
    if not isinstance(lease.model, TextModel) or task not in offered_tasks(lease.version.manifest):
        lease.release()
        raise LLMOSError("capability_not_supported", f"{model_id} does not offer the task {task!r}", param="model")
    return lease, lease.model


def is_chat(lease: Lease, model: TextModel) -> bool:
    return model.has_chat_template and "chat" in lease.version.manifest.capabilities


async def run_task(ctx: Context) -> Response:
    task = ctx.path("task")
    if task not in TASK_NAMES:
        raise LLMOSError("task_not_found", f"there is no task {task!r}; the tasks are {', '.join(TASK_NAMES)}", param="task")
    body = ctx.body
    if not isinstance(body, TaskRequest):
        raise LLMOSError("invalid_request", "unexpected body")
    _check_fields(task, body)
    limits = ctx.state.settings.limits
    inputs = [body.input] if isinstance(body.input, str) else body.input
    if len(inputs) > limits.max_batch:
        raise LLMOSError("limit_exceeded", f"at most {limits.max_batch} inputs", param="input")
    if any(not text for text in inputs):
        raise LLMOSError("invalid_value", "inputs must not be empty", param="input")
    if body.max_tokens is not None and body.max_tokens > limits.max_tokens:
        raise LLMOSError("limit_exceeded", f"max_tokens may be at most {limits.max_tokens}", param="max_tokens")
    lease, model = lease_task_model(ctx, body.model, task)
    try:
        template = lease.version.manifest.task_templates[task]
        settings = TaskSettings(task, template, body.max_tokens, body.truncation, limits.max_prompt_tokens)
        chat = is_chat(lease, model)
        shared = {"target_language": body.target_language, "source_language": body.source_language, "max_words": body.max_words, "context": body.context}
        plans = [plan_task(model, chat, settings, {**shared, "input": text}, "input" if len(inputs) == 1 else f"input.{i}") for i, text in enumerate(inputs)]
        jobs = jobs_for(plans, template, body.temperature, body.seed)
    except BaseException:
        lease.release()
        raise
    meta: dict[str, Any] = {"id": "task-" + secrets.token_hex(12), "created": int(time.time()), "task": task, "model": body.model,
                            "system_fingerprint": lease.version.digest}
    headers = {MODEL_DIGEST_HEADER: lease.version.digest}
    prompt_tokens = sum(plan.prompt_tokens for plan in plans)
    if body.stream:
        return StreamingResponse(_stream(model, plans, jobs, meta, prompt_tokens, lease), media_type="text/event-stream",
                                 headers={**headers, "Cache-Control": "no-cache"})
    outputs = [""] * len(plans)
    reasons: dict[int, str] = {}
    completion_tokens = 0
    try:
        async for index, text, delta in run_plans(model, plans, jobs):
            outputs[index] += text
            if delta.finish_reason is not None:
                reasons[index] = delta.finish_reason
                completion_tokens += delta.completion_tokens
    except EngineError as exc:
        raise engine_failure(exc) from None
    finally:
        lease.release()
    results = [TaskResult.model_validate({"index": i, "output": outputs[i], "finish_reason": reasons[i], "truncated": plans[i].truncated})
               for i in range(len(plans))]
    usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, total_tokens=prompt_tokens + completion_tokens)
    return wire_json(TaskResponse.model_validate({**meta, "results": [r.model_dump() for r in results], "usage": usage.model_dump()}), headers=headers)


async def _stream(model: TextModel, plans: list[TaskPlan], jobs: Any, meta: dict[str, Any], prompt_tokens: int, lease: Lease) -> AsyncIterator[bytes]:
    completion_tokens = 0
    try:
        try:
            async for index, text, delta in run_plans(model, plans, jobs):
                if delta.finish_reason is not None:
                    completion_tokens += delta.completion_tokens
                elif not text:
                    continue
                result = TaskDelta.model_validate({"index": index, "delta": text, "finish_reason": delta.finish_reason, "truncated": plans[index].truncated})
                yield _sse(TaskChunk.model_validate({**meta, "results": [result.model_dump()]}))
            usage = Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, total_tokens=prompt_tokens + completion_tokens)
            yield _sse(TaskChunk.model_validate({**meta, "results": [], "usage": usage.model_dump()}))
        except EngineError as exc:
            yield _sse(engine_failure(exc).envelope())
        yield _sse("[DONE]")
    finally:
        lease.release()


HANDLERS: dict[str, Handler] = {"list_tasks": list_tasks, "run_task": run_task}
