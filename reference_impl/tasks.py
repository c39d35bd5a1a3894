"""Standard tasks on a text model: template pre-processing, truncation, the engine call, post-processing.

Shared by ``POST /llmos/v1/tasks/{task}`` and the pipeline step ``annotate``, so a dataset annotated
by a task gets exactly what the task operation would have answered for each record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from llmos_std.errors import LLMOSError
from llmos_std.manifest import PackageManifest, TaskTemplate
from llmos_std.pipeline import lstrip, rstrip, strip
from llmos_std.tasks import DEFAULT_OUTPUT_PREFIXES, DEFAULT_PROMPTS, DEFAULT_TASK_MAX_TOKENS, TASK_NAMES, TaskName, render_task_prompt

from reference_impl.engine import Delta, SamplingParams, TextModel
from reference_impl.generation import Job, merged

TRUNCATED_FIELD = {"answer": "context"}
"""The field ``truncation: auto`` shortens, per task; every other task shortens ``input``."""


def offered_tasks(manifest: PackageManifest) -> list[TaskName]:
    return [task for task in TASK_NAMES if task in manifest.task_templates] if manifest.kind != "embedding" else []


@dataclass(frozen=True)
class TaskPlan:
    """One input ready for the engine: the prompt, what to strip from the output, and how it was fitted."""

    prompt: str
    chat: bool
    prompt_tokens: int
    max_tokens: int
    removable: tuple[str, ...]
    """Leading echoes removed from the output, in order: the rendered template, then the output prefix."""
    truncated: bool


@dataclass(frozen=True)
class TaskSettings:
    task: str
    template: TaskTemplate
    max_tokens: int | None
    truncation: str
    max_prompt_tokens: int


def _render(model: TextModel, task: str, template: TaskTemplate, values: Mapping[str, str | int | None], chat: bool) -> tuple[str, str, str | None]:
    """(prompt for the engine, rendered template text, output prefix)."""
    text = render_task_prompt(template.prompt or DEFAULT_PROMPTS[task], values)
    prefix = template.output_prefix or (DEFAULT_OUTPUT_PREFIXES[task] if template.prompt is None else None)
    if chat:
        return model.render_chat([{"role": "user", "content": text}]), text, prefix
    return (f"{text}\n\n{prefix}" if prefix else text), text, prefix


def plan_task(model: TextModel, chat: bool, settings: TaskSettings, values: dict[str, str | int | None], param: str) -> TaskPlan:
    """Render the template for one input and fit it into the context as the truncation policy says."""
    wanted = settings.max_tokens or settings.template.max_tokens or DEFAULT_TASK_MAX_TOKENS
    explicit = settings.max_tokens is not None

    def measure(current: dict[str, str | int | None]) -> tuple[str, str, str | None, int]:
        prompt, text, prefix = _render(model, settings.task, settings.template, current, chat)
        return prompt, text, prefix, model.count_prompt_tokens(prompt, chat=chat)

    prompt, text, prefix, count = measure(values)
    truncated = False
    if count + wanted > model.context_length and settings.truncation == "auto":
        field = TRUNCATED_FIELD.get(settings.task, "input") if values.get(TRUNCATED_FIELD.get(settings.task, "input")) else "input"
        ids = model.text_token_ids(str(values[field]))
        low, high = 0, len(ids)
        if measure({**values, field: model.decode_text(ids[:0])})[3] + wanted <= model.context_length:
            while low < high:  # the longest head of the field that still fits
                mid = (low + high + 1) // 2
                if measure({**values, field: model.decode_text(ids[:mid])})[3] + wanted <= model.context_length:
                    low = mid
                else:
                    high = mid - 1
            prompt, text, prefix, count = measure({**values, field: model.decode_text(ids[:low])})
            truncated = True
    if count > settings.max_prompt_tokens:
        raise LLMOSError("limit_exceeded", f"the rendered prompt has {count} tokens; at most {settings.max_prompt_tokens}", param=param)
    room = model.context_length - count
    if explicit and wanted > room:
        raise LLMOSError("context_length_exceeded", f"{count} prompt tokens + {wanted} completion tokens exceed the context length {model.context_length}", param=param)
    budget = min(wanted, room)
    if budget < 1:
        raise LLMOSError("context_length_exceeded", f"the rendered prompt's {count} tokens fill the context length {model.context_length}", param=param)
    return TaskPlan(prompt, chat, count, budget, tuple(r for r in (text, prefix) if r), truncated)


def jobs_for(plans: list[TaskPlan], template: TaskTemplate, temperature: float, seed: int | None) -> list[Job]:
    return [
        Job(i, plan.prompt, SamplingParams(max_tokens=plan.max_tokens, temperature=temperature, top_p=1.0, seed=seed, stop=tuple(template.stop)))
        for i, plan in enumerate(plans)
    ]


def _head(text: str, removable: tuple[str, ...], final: bool) -> str | None:
    """Left-strip and remove leading echoes in order; None while the text could still grow into one."""
    text = lstrip(text)
    for echo in removable:
        if text.startswith(echo):
            text = lstrip(text[len(echo):])
        elif echo.startswith(text) and not final:
            return None
    return text


def postprocess(raw: str, removable: tuple[str, ...]) -> str:
    """The task output for a complete generation (stop strings were cut and special tokens skipped by the engine)."""
    head = _head(raw, removable, final=True)
    return strip(head if head is not None else raw)


class StreamCleaner:
    """Post-processing for a stream: emits only text that the final output is sure to start with."""

    def __init__(self, removable: tuple[str, ...]) -> None:
        self._removable = removable
        self._raw = ""
        self._sent = 0

    def feed(self, text: str) -> str:
        self._raw += text
        head = _head(self._raw, self._removable, final=False)
        if head is None:
            return ""
        return self._emit(rstrip(head))

    def finish(self) -> str:
        return self._emit(postprocess(self._raw, self._removable))

    def _emit(self, clean: str) -> str:
        delta = clean[self._sent:]
        self._sent = max(self._sent, len(clean))
        return delta


async def run_plans(model: TextModel, plans: list[TaskPlan], jobs: list[Job]) -> AsyncIterator[tuple[int, str, Delta]]:
    """(input index, cleaned delta, engine delta) as the engine produces them; the finishing delta flushes."""
    cleaners = [StreamCleaner(plan.removable) for plan in plans]
    chat = plans[0].chat if plans else False
    async for index, delta in merged(model, jobs, chat=chat):
        text = cleaners[index].feed(delta.text)
        if delta.finish_reason is not None:
            text += cleaners[index].finish()
        yield index, text, delta
