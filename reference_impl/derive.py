"""Derive: checking a pipeline before anything starts, running it in the background, and its operation resource.

The pipeline runs as a chain of generators over the source version, so memory stays flat whatever
the dataset's size; output is staged in batches and becomes a version in one transaction at the end.
Model steps hold a lease on their model for the whole run (an unload waits for the derive).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from llmos_std.data import DataOperation, VersionRef
from llmos_std.errors import ErrorDetail, LLMOSError
from llmos_std.pipeline import (
    AnnotateStep,
    LengthFilterStep,
    TemplateError,
    TemplateStep,
    TokenCountStep,
    TruncateTokensStep,
    apply_local_step,
    length_filter_tokens,
    template_problem,
    with_value,
)
from llmos_std.query import resolve
from llmos_std.tasks import REQUIRED_FIELDS, TASK_FIELDS

from reference_impl.datastore import DataStore, Staging, VersionInfo, dumps
from reference_impl.engine import EngineError, TextModel
from reference_impl.runtime import Lease, Runtime
from reference_impl.tasks import TaskSettings, jobs_for, offered_tasks, plan_task, run_plans

log = logging.getLogger("llmos.derive")
ANNOTATE_BATCH = 16
WRITE_BATCH = 1000


@dataclass
class _Operation:
    id: str
    owner: str
    created: int
    updated: int
    total: int
    done: int = 0
    status: str = "running"
    result: VersionRef | None = None
    error: ErrorDetail | None = None


class Operations:
    """Operation resources, in memory: a restart forgets them (and the staged output, see DataStore)."""

    def __init__(self) -> None:
        self._ops: dict[str, _Operation] = {}
        self._lock = threading.Lock()

    def start(self, owner: str, total: int) -> _Operation:
        now = int(time.time())
        op = _Operation("op_" + secrets.token_hex(12), owner, now, now, total)
        with self._lock:
            self._ops[op.id] = op
        return op

    def view(self, op: _Operation) -> DataOperation:
        with self._lock:
            return DataOperation.model_validate({
                "id": op.id, "kind": "derive", "status": op.status, "created": op.created, "updated": op.updated,
                "progress": {"records_done": op.done, "records_total": op.total},
                "result": None if op.result is None else op.result.model_dump(),
                "error": None if op.error is None else op.error.model_dump(),
            })

    def get(self, owner: str, op_id: str) -> DataOperation:
        with self._lock:
            op = self._ops.get(op_id)
        if op is None or op.owner != owner:
            raise LLMOSError("operation_not_found", f"no operation {op_id!r}", param="operation_id")
        return self.view(op)

    def progress(self, op: _Operation, done: int) -> None:
        with self._lock:
            op.done = done
            op.updated = int(time.time())

    def finish(self, op: _Operation, result: VersionRef | None, error: ErrorDetail | None) -> None:
        with self._lock:
            op.status = "succeeded" if error is None else "failed"
            op.result, op.error = result, error
            op.updated = int(time.time())


# ---------------------------------------------------------------- checking


@dataclass
class CheckedPipeline:
    steps: list[Any]
    leases: dict[int, Lease] = field(default_factory=dict)
    """Step position -> the lease on the model it names."""

    def release(self) -> None:
        for lease in self.leases.values():
            lease.release()


def _invalid(i: int, message: str, member: str | None = None) -> LLMOSError:
    return LLMOSError("pipeline_invalid", f"step {i}: {message}", param=f"pipeline.{i}" + (f".{member}" if member else ""))


def check_pipeline(steps: list[Any], runtime: Runtime) -> CheckedPipeline:
    """Refuse a pipeline that cannot run, before anything is created; lease the models it names."""
    checked = CheckedPipeline(steps)
    try:
        for i, step in enumerate(steps):
            if isinstance(step, TemplateStep):
                problem = template_problem(step.template)
                if problem:
                    raise _invalid(i, problem, "template")
            if isinstance(step, LengthFilterStep):
                if step.max is not None and step.max < step.min:
                    raise _invalid(i, "max is below min", "max")
                if (step.unit == "tokens") != (step.model is not None):
                    raise _invalid(i, "a model is needed for unit tokens, and only then", "model")
            model_id = getattr(step, "model", None)
            if model_id is None:
                continue
            try:
                lease = runtime.acquire(model_id)
            except LLMOSError as exc:
                raise _invalid(i, f"the model cannot run it: {exc.message}", "model") from None
            checked.leases[i] = lease
            if not isinstance(lease.model, TextModel):
                raise _invalid(i, f"{model_id} is not a text model", "model")
            if isinstance(step, AnnotateStep):
                if step.task not in offered_tasks(lease.version.manifest):
                    raise _invalid(i, f"{model_id} does not offer the task {step.task!r}", "task")
                values = {"target_language": step.target_language, "source_language": step.source_language, "context": step.context_field}
                for name, value in values.items():
                    if value is not None and name not in TASK_FIELDS[step.task] and not (name == "context" and step.task == "answer"):
                        raise _invalid(i, f"{name} is not a parameter of {step.task}", "context_field" if name == "context" else name)
                for name in REQUIRED_FIELDS.get(step.task, ()):
                    if values.get(name) is None:
                        raise _invalid(i, f"{step.task} needs {name}", name)
    except BaseException:
        checked.release()
        raise
    return checked


# ---------------------------------------------------------------- running


class _Failed(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _token_step(step: Any, model: TextModel, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    if isinstance(step, LengthFilterStep):
        return length_filter_tokens(step, records, lambda text: len(model.text_token_ids(text)))
    if isinstance(step, TokenCountStep):
        return (({**r, step.into: len(model.text_token_ids(v))} if isinstance(v := resolve(r, step.field), str) else r) for r in records)
    assert isinstance(step, TruncateTokensStep)

    def cut(record: dict[str, Any]) -> dict[str, Any]:
        value = resolve(record, step.field)
        if not isinstance(value, str):
            return record
        ids = model.text_token_ids(value)
        return record if len(ids) <= step.max_tokens else with_value(record, step.field, model.decode_text(ids[: step.max_tokens]))

    return (cut(r) for r in records)


def _annotate(step: AnnotateStep, lease: Lease, records: Iterable[dict[str, Any]], loop: asyncio.AbstractEventLoop, max_prompt_tokens: int) -> Iterator[dict[str, Any]]:
    model = lease.model
    assert isinstance(model, TextModel)
    template = lease.version.manifest.task_templates[step.task]
    settings = TaskSettings(step.task, template, step.max_tokens, "auto", max_prompt_tokens)
    chat = model.has_chat_template and "chat" in lease.version.manifest.capabilities

    def run(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        todo = [(n, r) for n, r in enumerate(batch) if isinstance(resolve(r, step.field), str)]
        if not todo:
            return batch
        plans = []
        for _, record in todo:
            context = resolve(record, step.context_field) if step.context_field else None
            values = {"input": resolve(record, step.field), "target_language": step.target_language, "source_language": step.source_language,
                      "max_words": None, "context": context if isinstance(context, str) and context else None}
            try:
                plans.append(plan_task(model, chat, settings, values, "input"))
            except LLMOSError as exc:
                raise _Failed(f"annotate: {exc.message}") from None
        jobs = jobs_for(plans, template, 0.0, 0)

        async def generate() -> list[str]:
            outputs = [""] * len(plans)
            async for index, text, _delta in run_plans(model, plans, jobs):
                outputs[index] += text
            return outputs

        try:
            outputs = asyncio.run_coroutine_threadsafe(generate(), loop).result()
        except EngineError as exc:
            raise _Failed(f"annotate: the model failed ({exc})") from None
        out = list(batch)
        for (n, record), output in zip(todo, outputs):
            out[n] = {**record, step.into: output}
        return out

    batch: list[dict[str, Any]] = []
    for record in records:
        batch.append(record)
        if len(batch) == ANNOTATE_BATCH:
            yield from run(batch)
            batch = []
    if batch:
        yield from run(batch)


def _conforming(records: Iterable[dict[str, Any]], validator: jsonschema.Draft202012Validator) -> Iterator[dict[str, Any]]:
    """A new version of a dataset with a schema holds only records its schema allows, as appends do."""
    for n, record in enumerate(records):
        error = jsonschema.exceptions.best_match(validator.iter_errors(record))
        if error is not None:
            raise _Failed(f"output record {n} fails the dataset's schema: {error.message}")
        yield record


def run_derive(store: DataStore, staging: Staging, source: VersionInfo, pipeline: CheckedPipeline, raw_pipeline: list[Any],
               op: _Operation, operations: Operations, loop: asyncio.AbstractEventLoop, max_prompt_tokens: int) -> None:
    done = 0

    def source_records() -> Iterator[dict[str, Any]]:
        nonlocal done
        for _index, text in store.iter_records(source):
            yield json.loads(text)
            done += 1
            if done % WRITE_BATCH == 0:
                operations.progress(op, done)

    stream: Iterable[dict[str, Any]] = source_records()
    for i, step in enumerate(pipeline.steps):
        lease = pipeline.leases.get(i)
        if lease is None:
            stream = apply_local_step(step, stream)
        elif isinstance(step, AnnotateStep):
            stream = _annotate(step, lease, stream, loop, max_prompt_tokens)
        else:
            assert isinstance(lease.model, TextModel)
            stream = _token_step(step, lease.model, stream)
    error: ErrorDetail | None = None
    result: VersionRef | None = None
    try:
        if staging.new_name is None and (schema := store.schema(staging.owner, staging.target)) is not None:
            stream = _conforming(stream, jsonschema.Draft202012Validator(schema))
        batch: list[str] = []
        for record in stream:
            batch.append(dumps(record))
            if len(batch) >= WRITE_BATCH:
                staging.write(batch)
                batch = []
        staging.write(batch)
        operations.progress(op, done)
        result = staging.commit(raw_pipeline)
    except (TemplateError, _Failed) as exc:
        error = ErrorDetail(message=str(exc), type="invalid_request_error", code="pipeline_failed")
    except LLMOSError as exc:
        error = exc.envelope().error
    except Exception:  # noqa: BLE001 - the cause goes to the log; the operation reports a reference
        reference = secrets.token_hex(6)
        log.exception("derive %s failed (reference %s)", op.id, reference)
        error = ErrorDetail(message=f"the derive failed; the server log has the cause under reference {reference}", type="server_error", code="internal_error")
    finally:
        pipeline.release()
        if error is not None:
            try:
                staging.abandon()
            except Exception:  # noqa: BLE001 - what stays staged is invisible, and removed at the next start
                log.exception("derive %s: could not remove its staged output", op.id)
        operations.finish(op, result, error)


def start_derive(store: DataStore, staging: Staging, source: VersionInfo, pipeline: CheckedPipeline, raw_pipeline: list[Any],
                 op: _Operation, operations: Operations, loop: asyncio.AbstractEventLoop, max_prompt_tokens: int,
                 spawn: Callable[[Callable[[], None]], None] | None = None) -> None:
    def work() -> None:
        run_derive(store, staging, source, pipeline, raw_pipeline, op, operations, loop, max_prompt_tokens)

    if spawn is not None:
        spawn(work)
    else:
        threading.Thread(target=work, name=f"derive-{op.id}", daemon=True).start()
