"""Request -> engine plumbing shared by chat and text completions: limits, parameters, fan-out.

Turns a validated OpenAI request into engine calls (one per prompt and choice) and merges their
deltas, so the two routes only differ in how they build prompts and shape chunks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from llmos_std.errors import LLMOSError
from llmos_std.inference import ChatCompletionRequest, CompletionRequest, FinishReason
from llmos_std.manifest import PackageManifest
from llmos_std.parameters import gated_fields_in_use

from reference_impl.capabilities import served_capabilities
from reference_impl.engine import Delta, EngineError, EngineUnavailable, Grammar, Prompt, PromptTooLong, SamplingParams, TextModel, TokenLogprob
from reference_impl.settings import Settings

SamplingRequest = ChatCompletionRequest | CompletionRequest


@dataclass(frozen=True)
class Job:
    """One prompt and choice to generate; ``index`` is the choice index on the wire."""

    index: int
    prompt: Prompt
    params: SamplingParams
    grammar: Grammar | None = None
    top_logprobs: int | None = None


def check_token_ids(items: list[str | list[int]], vocab_size: int, param: str) -> None:
    """Token-id prompts must come from the model's own vocabulary: an id past it is the client's error."""
    for i, item in enumerate(items):
        bad = next((t for t in item if t >= vocab_size), None) if not isinstance(item, str) else None
        if bad is not None:
            raise LLMOSError("invalid_value", f"token id {bad} is outside the model's vocabulary of {vocab_size}", param=param if len(items) == 1 else f"{param}.{i}")


def check_request(operation: str, body: SamplingRequest, manifest: PackageManifest, settings: Settings) -> None:
    """Refuse what the model cannot honour and what exceeds a declared limit, naming the field."""
    refused = gated_fields_in_use(operation, body, frozenset(served_capabilities(manifest)))
    if refused:
        row = refused[0]
        raise LLMOSError("unsupported_parameter", f"{row.field} needs the model capability {row.capability!r}", param=row.field)
    limits = settings.limits
    if body.n is not None and body.n > limits.max_n:
        raise LLMOSError("limit_exceeded", f"n may be at most {limits.max_n}", param="n")
    stops = [body.stop] if isinstance(body.stop, str) else (body.stop or [])
    if len(stops) > limits.max_stop:
        raise LLMOSError("limit_exceeded", f"at most {limits.max_stop} stop strings", param="stop")
    if any(stop == "" for stop in stops):
        raise LLMOSError("invalid_value", "stop strings must not be empty", param="stop")
    for field in ("max_tokens", "max_completion_tokens"):
        value = getattr(body, field, None)
        if value is not None and value > limits.max_tokens:
            raise LLMOSError("limit_exceeded", f"{field} may be at most {limits.max_tokens}", param=field)


def requested_logprobs(body: SamplingRequest) -> int | None:
    """How many alternatives per token the request wants; None when it wants no logprobs."""
    if isinstance(body, CompletionRequest):
        return body.logprobs
    if body.top_logprobs is not None and not body.logprobs:
        raise LLMOSError("invalid_value", "top_logprobs needs logprobs: true", param="top_logprobs")
    return (body.top_logprobs or 0) if body.logprobs else None


def requested_max_tokens(body: SamplingRequest) -> int | None:
    if isinstance(body, ChatCompletionRequest) and body.max_completion_tokens is not None:
        if body.max_tokens is not None and body.max_tokens != body.max_completion_tokens:
            raise LLMOSError("invalid_value", "max_tokens and max_completion_tokens disagree", param="max_completion_tokens")
        return body.max_completion_tokens
    return body.max_tokens


def plan_jobs(model: TextModel, prompts: list[Prompt], body: SamplingRequest, manifest: PackageManifest, settings: Settings, *, chat: bool,
              grammar: Grammar | None = None, top_logprobs: int | None = None) -> tuple[list[Job], int]:
    """The jobs for every prompt and choice, and the total prompt tokens (each prompt counted once)."""
    n = body.n or 1
    explicit = requested_max_tokens(body)
    defaults = manifest.generation_defaults
    stops = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    temperature = body.temperature if body.temperature is not None else (defaults.temperature if defaults and defaults.temperature is not None else 1.0)
    top_p = body.top_p if body.top_p is not None else (defaults.top_p if defaults and defaults.top_p is not None else 1.0)
    jobs: list[Job] = []
    prompt_tokens = 0
    for p, prompt in enumerate(prompts):
        count = model.count_prompt_tokens(prompt, chat=chat)
        if count > settings.limits.max_prompt_tokens:
            raise LLMOSError("limit_exceeded", f"the prompt has {count} tokens; at most {settings.limits.max_prompt_tokens}", param="messages" if chat else "prompt")
        room = model.context_length - count
        if explicit is not None:
            if explicit > room:
                raise LLMOSError("context_length_exceeded", f"{count} prompt tokens + {explicit} completion tokens exceed the context length {model.context_length}", param="max_tokens")
            budget = explicit
        else:
            budget = min(settings.default_max_tokens, room)
            if budget < 1:
                raise LLMOSError("context_length_exceeded", f"the prompt's {count} tokens fill the context length {model.context_length}", param="messages" if chat else "prompt")
        prompt_tokens += count
        for i in range(n):
            seed = None if body.seed is None else body.seed + i
            params = SamplingParams(max_tokens=budget, temperature=temperature, top_p=top_p, seed=seed, stop=stops)
            jobs.append(Job(p * n + i, prompt, params, grammar, top_logprobs))
    return jobs, prompt_tokens


async def merged(model: TextModel, jobs: list[Job], *, chat: bool) -> AsyncIterator[tuple[int, Delta]]:
    """Every job's deltas as they come, tagged with the choice index; cancelling stops every job."""
    queue: asyncio.Queue[tuple[int, Delta] | BaseException | None] = asyncio.Queue()

    async def run(job: Job) -> None:
        try:
            async for delta in model.generate(job.prompt, job.params, chat=chat, grammar=job.grammar, top_logprobs=job.top_logprobs):
                await queue.put((job.index, delta))
            await queue.put(None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # whatever a job meets ends the merge (an engine failure, or a bug): never a hang
            await queue.put(exc if isinstance(exc, (EngineError, PromptTooLong)) else EngineError(f"generation failed: {type(exc).__name__}"))

    tasks = [asyncio.create_task(run(job)) for job in jobs]
    try:
        finished = 0
        while finished < len(tasks):
            item = await queue.get()
            if item is None:
                finished += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Answers:
    """Every job's whole answer, by choice index: what the unstreamed routes build their bodies from."""

    texts: dict[int, str]
    logprobs: dict[int, list[TokenLogprob]]
    reasons: dict[int, FinishReason]
    completion_tokens: int


async def collect(model: TextModel, jobs: list[Job], *, chat: bool) -> Answers:
    """Run the jobs to the end; an engine failure becomes the standard's error."""
    answers = Answers({job.index: "" for job in jobs}, {job.index: [] for job in jobs}, {}, 0)
    try:
        async for index, delta in merged(model, jobs, chat=chat):
            answers.texts[index] += delta.text
            answers.logprobs[index] += delta.logprobs
            if delta.finish_reason is not None:
                answers.reasons[index] = delta.finish_reason
                answers.completion_tokens += delta.completion_tokens
    except EngineError as exc:
        raise engine_failure(exc) from None
    return answers


RETRY_AFTER_S = 2
"""What a 503 from an unavailable engine replica asks the client to wait: about a replica's restart."""


def engine_failure(exc: BaseException) -> LLMOSError:
    if isinstance(exc, PromptTooLong):
        return LLMOSError("context_length_exceeded", str(exc), param="max_tokens")
    if isinstance(exc, EngineUnavailable):
        return LLMOSError("not_ready", str(exc), headers={"Retry-After": str(RETRY_AFTER_S)})
    return LLMOSError("engine_error", "the model failed while generating")
