"""tasks: translate, summarize and answer; the task list, responses and batches, post-processing, streams, truncation.

Tasks run on the models ``GET /llmos/v1/tasks`` names for them, with small ``max_tokens``; determinism is
relied on only where the model's ``/v1/models`` entry claims it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from llmos_std.operations import LLMOS_BASE
from llmos_std.pipeline import WHITE_SPACE
from llmos_std.sse import DataEvent, DoneEvent
from llmos_std.tasks import DEFAULT_OUTPUT_PREFIXES, DEFAULT_PROMPTS, TASK_FIELDS, TASK_NAMES, render_task_prompt

from conformance.bodies import minimal_body
from conformance.context import Context
from conformance.judging import expect_error, expect_status, ok_json, schema_errors
from conformance.properties import run_property
from conformance.registry import check
from conformance.streams import ends_with_done
from conformance.traffic import available_ops, post, texts_of
from conformance.verdicts import CheckFailed, CheckOutcome, Failures, Skip
from conformance.wire import Exchange

TASKS = f"{LLMOS_BASE}/tasks"
DAY = 86_400
INPUTS: dict[str, tuple[str, ...]] = {
    "translate": ("Good morning, everyone.", "The cat sleeps on the warm mat.", "Where is the station?", "Thank you very much."),
    "summarize": ("The quick brown fox jumps over the lazy dog. The dog does not move.", "Rain fell all day; the river rose and the bridge closed.", "hello world"),
    "answer": ("What colour is the sky?", "Who wrote the letter?", "How many legs does a spider have?"),
}
FIELDS: dict[str, dict[str, Any]] = {
    "translate": {"target_language": "fr"},
    "summarize": {},
    "answer": {"context": "The sky is blue. Anna wrote the letter. A spider has eight legs."},
}
"""The task-specific fields a well-formed request of each task carries."""
FOREIGN_VALUES: dict[str, Any] = {"target_language": "de", "source_language": "en", "max_words": 12, "context": "Some reference text."}
UNKNOWN_TASKS = ("summarise", "classify", "translation", "answer_question", "tasks")
DETERMINISTIC = ("sequential", "batch_invariant")
WORD = "hello"


def offered(ctx: Context) -> dict[str, list[str]]:
    """Task -> the models ``GET /llmos/v1/tasks`` names for it (read once per run)."""
    if "tasks" not in ctx.cache:
        listing = ok_json(ctx.wire.request("GET", TASKS), "TaskList")
        ctx.cache["tasks"] = {str(t["name"]): [str(m) for m in t["models"]] for t in listing["data"]}
    table: dict[str, list[str]] = ctx.cache["tasks"]
    return table


def listed_model(ctx: Context, model_id: str) -> dict[str, Any]:
    """The model's ``/v1/models`` entry (empty when the list does not show it)."""
    return next((m for m in ctx.plan.model_list if m.get("id") == model_id), {})


def pairs(ctx: Context, *, deterministic: bool = False) -> list[tuple[str, str]]:
    """One (task, model) per offered task: the first model listed for it (that claims determinism, when asked)."""
    found: list[tuple[str, str]] = []
    for task, models in offered(ctx).items():
        fit = [m for m in models if not deterministic or listed_model(ctx, m).get("determinism") in DETERMINISTIC]
        if task in TASK_NAMES and fit:
            found.append((task, fit[0]))
    if not found:
        if deterministic:
            raise Skip("no model offering a task claims sequential or batch_invariant determinism in /v1/models")
        raise Skip("GET /llmos/v1/tasks names no model for any task")
    return found


def task_body(ctx: Context, task: str, model: str, text: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"model": model, "input": text, "max_tokens": ctx.settings.max_tokens, "seed": ctx.settings.seed, **FIELDS[task], **extra}


def run_task(ctx: Context, task: str, body: dict[str, Any]) -> tuple[Exchange, dict[str, Any]]:
    exchange = ctx.wire.request("POST", f"{TASKS}/{task}", json_body=body)
    answer: dict[str, Any] = ok_json(exchange, "TaskResponse")
    return exchange, answer


def judge_response(exchange: Exchange, answer: dict[str, Any], task: str, body: dict[str, Any]) -> None:
    """One result per input in input order, the task and model named, usage that adds up."""
    count = 1 if isinstance(body["input"], str) else len(body["input"])
    indices = [r["index"] for r in answer["results"]]
    if indices != list(range(count)):
        raise CheckFailed(f"{count} result(s) with index 0..{count - 1} in input order", f"indices {indices}", exchange=exchange)
    if (answer["task"], answer["model"]) != (task, body["model"]):
        raise CheckFailed(f"task {task!r} and model {body['model']!r} named in the response", repr((answer["task"], answer["model"])), exchange=exchange)
    created = answer["created"]
    if abs(created - time.time()) > DAY:
        raise CheckFailed("created: Unix seconds near now", repr(created), exchange=exchange)
    usage = answer["usage"]
    if usage["total_tokens"] != usage["prompt_tokens"] + usage["completion_tokens"]:
        raise CheckFailed("usage.total_tokens = prompt_tokens + completion_tokens", repr(usage), exchange=exchange)
    if usage["prompt_tokens"] < count:
        raise CheckFailed(f"prompt_tokens counting every rendered prompt (at least {count})", repr(usage), exchange=exchange)
    bound = body["max_tokens"] * count
    if usage["completion_tokens"] > bound:
        raise CheckFailed(f"completion_tokens <= {bound} (max_tokens x inputs)", repr(usage), exchange=exchange)


_languages = st.sampled_from(("fr", "de", "pt-BR", "zh-Hant", "sw"))


def _cases(ctx: Context, *, deterministic: bool = False) -> st.SearchStrategy[tuple[str, str, str, dict[str, Any]]]:
    """(task, model, input, extra fields)."""
    return st.sampled_from(pairs(ctx, deterministic=deterministic)).flatmap(
        lambda pair: st.tuples(
            st.just(pair[0]), st.just(pair[1]), st.sampled_from(INPUTS[pair[0]]),
            st.builds(lambda lang: {"target_language": lang}, _languages) if pair[0] == "translate" else st.just({}),
        )
    )


@check("task_names")
def task_names(ctx: Context) -> CheckOutcome:
    table = offered(ctx)
    any_model = next((m for models in table.values() for m in models), None) or next((str(m["id"]) for m in ctx.plan.model_list), None)
    if any_model is None:
        raise Skip("the target lists no model to name in a task request")
    count = 0
    with Failures() as failures:
        for task in TASK_NAMES:
            with failures.each():
                count += 1
                models = table.get(task)
                if models:
                    body = task_body(ctx, task, models[0], INPUTS[task][0])
                    exchange, answer = run_task(ctx, task, body)
                    judge_response(exchange, answer, task, body)
                else:
                    # Nothing offers the task, yet its name is known: the model is refused, never the task.
                    expect_error(ctx.wire.request("POST", f"{TASKS}/{task}", json_body=task_body(ctx, task, any_model, INPUTS[task][0])), ("capability_not_supported",))
        for name in UNKNOWN_TASKS:
            with failures.each():
                count += 1
                expect_error(ctx.wire.request("POST", f"{TASKS}/{name}", json_body={"model": any_model, "input": "hello"}), ("task_not_found",))
    return CheckOutcome(examples=count, triggered=count)


@check("task_response_valid")
def task_response_valid(ctx: Context) -> CheckOutcome:
    def prop(case: tuple[str, str, str, dict[str, Any]]) -> bool:
        task, model, text, extra = case
        body = task_body(ctx, task, model, text, **extra)
        exchange, answer = run_task(ctx, task, body)
        judge_response(exchange, answer, task, body)
        return True

    return run_property(ctx, _cases(ctx), prop, examples=ctx.settings.generation_examples, what="task requests")


@check("task_batch")
def task_batch(ctx: Context) -> CheckOutcome:
    task, model = pairs(ctx)[0]
    invariant = listed_model(ctx, model).get("determinism") == "batch_invariant"
    batches = st.lists(st.sampled_from(INPUTS[task]), min_size=1, max_size=3, unique=True)

    def prop(texts: list[str]) -> bool:
        body = task_body(ctx, task, model, texts)
        exchange, answer = run_task(ctx, task, body)
        judge_response(exchange, answer, task, body)
        singles = [run_task(ctx, task, task_body(ctx, task, model, text))[1] for text in texts]
        prompt = sum(s["usage"]["prompt_tokens"] for s in singles)
        if answer["usage"]["prompt_tokens"] != prompt:
            raise CheckFailed(f"prompt_tokens {prompt}: the sum over the inputs' rendered prompts (each sent alone)", repr(answer["usage"]), exchange=exchange)
        if invariant:
            alone = [s["results"][0]["output"] for s in singles]
            together = [r["output"] for r in answer["results"]]
            if alone != together:
                raise CheckFailed(f"result i being input i's own output (the model claims batch_invariant): {alone!r}", repr(together), exchange=exchange)
        return len(texts) > 1

    return run_property(ctx, batches, prop, examples=ctx.settings.generation_examples, what="batches of several inputs")


@check("translate_requires_target")
def translate_requires_target(ctx: Context) -> CheckOutcome:
    models = offered(ctx).get("translate")
    if not models:
        raise Skip("no model offers translate (GET /llmos/v1/tasks)")
    body = task_body(ctx, "translate", models[0], INPUTS["translate"][0])
    body.pop("target_language")
    with Failures() as failures:
        with failures.each():
            expect_error(ctx.wire.request("POST", f"{TASKS}/translate", json_body=body), ("missing_required_parameter",), param="target_language")
        with failures.each():
            expect_error(ctx.wire.request("POST", f"{TASKS}/translate", json_body={**body, "source_language": "en"}), ("missing_required_parameter",), param="target_language")
        with failures.each():
            run_task(ctx, "translate", {**body, "target_language": "fr"})  # and with it, the same request runs
    return CheckOutcome(examples=3, triggered=3)


@check("task_list")
def task_list(ctx: Context) -> CheckOutcome:
    exchange = ctx.wire.request("GET", TASKS)
    listing = ok_json(exchange, "TaskList")
    names = [t["name"] for t in listing["data"]]
    if len(names) != len(set(names)):
        raise CheckFailed("each task listed once", repr(names), exchange=exchange)
    table = {t["name"]: list(t["models"]) for t in listing["data"]}
    models_exchange = ctx.wire.request("GET", "/v1/models")
    models = ok_json(models_exchange, "ModelList")["data"]
    by_id = {m["id"]: m for m in models}
    count = 0
    with Failures() as failures:
        for task, listed in table.items():
            for model_id in listed:
                with failures.each():
                    count += 1
                    if task not in by_id.get(model_id, {}).get("tasks", []):
                        raise CheckFailed(f"{model_id!r} listing {task!r} in the tasks field of its /v1/models object", repr(by_id.get(model_id, {}).get("tasks", "no such model")), exchange=models_exchange)
        for model in models:
            for task in model.get("tasks", []):
                with failures.each():
                    count += 1
                    if model["id"] not in table.get(task, []):
                        raise CheckFailed(f"{model['id']!r} (whose /v1/models object offers {task!r}) among the models GET /llmos/v1/tasks lists for it", repr(table.get(task, [])), exchange=exchange)
        for task in TASK_NAMES:
            other = next((m["id"] for m in models if task not in m.get("tasks", []) and m["id"] not in table.get(task, [])), None)
            if other is None:
                continue
            with failures.each():
                count += 1
                expect_error(ctx.wire.request("POST", f"{TASKS}/{task}", json_body=task_body(ctx, task, other, INPUTS[task][0])), ("capability_not_supported",))
    return CheckOutcome(examples=max(count, 1), triggered=count)


@dataclass
class Template:
    """What post-processing removes and cuts at, for one task on one model."""

    prompt: str | None
    prefix: str | None
    stop: list[str] = field(default_factory=list)
    known: bool = False
    """Whether it came from the model's installed manifest (else the standard's defaults are assumed)."""


def template_of(ctx: Context, model_id: str, task: str) -> Template:
    key = ("task-template", model_id, task)
    if key not in ctx.cache:
        digest = listed_model(ctx, model_id).get("digest")
        entry: dict[str, Any] | None = None
        if isinstance(digest, str):
            exchange = ctx.wire.request("GET", f"{LLMOS_BASE}/packages/{digest}")
            if exchange.status == 200:
                manifest = exchange.json()
                entry = (manifest.get("task_templates") or {}).get(task) if isinstance(manifest, dict) else None
        if entry is None:
            ctx.cache[key] = Template(None, DEFAULT_OUTPUT_PREFIXES[task])
        else:
            prompt = entry.get("prompt")
            prefix = entry.get("output_prefix") or (DEFAULT_OUTPUT_PREFIXES[task] if prompt is None else None)
            ctx.cache[key] = Template(prompt, prefix, list(entry.get("stop") or []), known=True)
    found: Template = ctx.cache[key]
    return found


def judge_output(exchange: Exchange, output: str, template: Template, rendered: str) -> None:
    """An output post-processed as specified, as far as the wire shows it."""
    if output and (output[0] in WHITE_SPACE or output[-1] in WHITE_SPACE):
        raise CheckFailed("an output without leading or trailing White_Space", repr(output[:80]), exchange=exchange)
    if template.prefix and output.startswith(template.prefix):
        raise CheckFailed(f"an output without the template's output prefix {template.prefix!r}", repr(output[:80]), exchange=exchange)
    if rendered and output.startswith(rendered):
        raise CheckFailed("an output without a leading echo of the rendered prompt", repr(output[:80]), exchange=exchange)
    cut = [s for s in template.stop if s and s in output]
    if cut:
        raise CheckFailed(f"an output cut at the first of the stop strings {template.stop!r}", f"{cut[0]!r} in {output[:80]!r}", exchange=exchange)


def rendered_prompt(template: Template, task: str, body: dict[str, Any], text: str) -> str:
    values = {k: body.get(k) for k in ("target_language", "source_language", "max_words", "context")}
    return render_task_prompt(template.prompt or DEFAULT_PROMPTS[task], {**values, "input": text})


POSTPROCESSING_INPUTS = 6
"""Requests per post-processing example: each is one raw generation that may or may not need cleaning."""


def variants(text: str, others: tuple[str, ...]) -> list[str]:
    """``text`` padded with white space and recased, then the task's other inputs."""
    return [text, f"  {text}\u3000", f"{text}\n", f"\t{text}", text.upper(), text.lower(), *(t for t in others if t != text)]


def postprocessed(raw: str, template: Template, rendered: str) -> str:
    """What the standard makes of a raw generation (already cut at the stop strings): stripped, then the
    leading echoes of the rendered template and of the output prefix removed, each followed by leading White_Space."""
    white = "".join(WHITE_SPACE)
    text = raw.strip(white)
    for echo in (rendered, template.prefix):
        if echo and text.startswith(echo):
            text = text[len(echo):].lstrip(white)
    return text


def bare_generation(ctx: Context, model: str, template: Template, rendered: str, task: dict[str, Any]) -> tuple[str, str] | None:
    """The raw text the model generates for the rendered task prompt, as a plain completion; None where none is offered.

    A model with chat gets the rendered template as its one user message; one without gets it followed by
    a blank line and the output prefix, as the standard renders a task for it.
    """
    caps = set(listed_model(ctx, model).get("capabilities") or [])
    ops = available_ops(ctx)
    body: dict[str, Any]
    if "chat" in caps and "create_chat_completion" in ops:
        op, body = "create_chat_completion", minimal_body("create_chat_completion", model, rendered, task["max_tokens"])
    elif "text-generation" in caps and "create_completion" in ops:
        prompt = f"{rendered}\n\n{template.prefix}" if template.prefix else rendered
        op, body = "create_completion", minimal_body("create_completion", model, prompt, task["max_tokens"])
    else:
        return None
    body = {**body, "temperature": task["temperature"], "seed": task["seed"], **({"stop": template.stop} if template.stop else {})}
    answer = ok_json(post(ctx, op, body))
    return op, texts_of(op, answer).get(0, "")


@check("task_postprocessing")
def task_postprocessing(ctx: Context) -> CheckOutcome:
    notes: list[str] = []
    compared = 0

    def prop(case: tuple[tuple[str, str, str, dict[str, Any]], int]) -> bool:
        nonlocal compared
        (task, model, text, extra), seed = case
        template = template_of(ctx, model, task)
        exact = listed_model(ctx, model).get("determinism") in DETERMINISTIC
        triggered = False
        # Sampling with a seed per input varies the raw generations, and so what post-processing has to remove.
        for i, given in enumerate(variants(text, INPUTS[task])[:POSTPROCESSING_INPUTS]):
            body = task_body(ctx, task, model, given, temperature=1.0, seed=(seed + i) % 2**31, **extra)
            exchange, answer = run_task(ctx, task, body)
            output = answer["results"][0]["output"]
            rendered = rendered_prompt(template, task, body, given)
            judge_output(exchange, output, template, rendered)
            raw = bare_generation(ctx, model, template, rendered, body) if exact else None
            if raw is None:
                continue
            op, generated = raw
            compared += 1
            expected = postprocessed(generated, template, rendered)
            if output != expected:
                raise CheckFailed(f"the output post-processed from what the model generates for the rendered prompt ({generated!r} as a plain {op}): {expected!r}",
                                  repr(output), exchange=exchange)
            triggered = triggered or expected != generated
        return triggered or not compared

    cases = st.tuples(_cases(ctx), st.integers(0, 2**31 - 1))
    outcome = run_property(ctx, cases, prop, examples=ctx.settings.generation_examples, what="outputs that post-processing changed")
    task, model = pairs(ctx)[0]
    if not template_of(ctx, model, task).known:
        notes.append(f"{model}'s manifest was not readable: the standard's default template and output prefix were assumed")
    if not compared:
        notes.append("no deterministic model with a completion operation: outputs were not compared with post-processed raw generations")
    caps = set(listed_model(ctx, model).get("capabilities") or [])
    ops = [op for op, cap in (("create_completion", "text-generation"), ("create_chat_completion", "chat")) if cap in caps and op in available_ops(ctx)]
    if not ops:
        notes.append(f"{model} serves no completion, so pre-processing was not compared with a bare completion")
        outcome.notes += notes
        return outcome
    text = INPUTS[task][0]
    exchange, answer = run_task(ctx, task, task_body(ctx, task, model, text))
    bare = ok_json(post(ctx, ops[0], minimal_body(ops[0], model, text, 1)))
    if answer["usage"]["prompt_tokens"] <= bare["usage"]["prompt_tokens"]:
        raise CheckFailed(f"the task's rendered prompt (template + input) longer than the bare input ({bare['usage']['prompt_tokens']} prompt tokens as a plain {ops[0]})",
                          f"{answer['usage']['prompt_tokens']} prompt tokens", exchange=exchange)
    outcome.examples += 1
    outcome.triggered += 1
    outcome.notes += notes
    return outcome


@dataclass
class TaskStream:
    exchange: Exchange
    outputs: dict[int, str]
    usage: dict[str, Any]


def open_task_stream(ctx: Context, task: str, body: dict[str, Any]) -> TaskStream:
    """A streamed task judged as a whole: TaskChunk events, one finish_reason per result, usage last, [DONE]."""
    exchange = ctx.wire.request("POST", f"{TASKS}/{task}", json_body={**body, "stream": True}, stream=True)
    expect_status(exchange, 200)
    content_type = exchange.headers.get("content-type", "").split(";")[0].strip()
    if content_type != "text/event-stream":
        raise CheckFailed("Content-Type text/event-stream", repr(content_type), exchange=exchange)
    if exchange.stream_error is not None or not ends_with_done(exchange) or sum(isinstance(e, DoneEvent) for e in exchange.events) != 1:
        raise CheckFailed("TaskChunk events and data: [DONE] once, last", exchange.stream_error or f"the stream ended with {exchange.body[-120:]!r}", exchange=exchange)
    payloads = [json.loads(e.data) for e in exchange.events if isinstance(e, DataEvent)]
    if not payloads:
        raise CheckFailed("at least the final usage chunk before [DONE]", "no chunk", exchange=exchange)
    count = 1 if isinstance(body["input"], str) else len(body["input"])
    pieces: dict[int, list[str]] = {}
    finishes: dict[int, int] = {}
    for number, payload in enumerate(payloads):
        if isinstance(payload, dict) and "error" in payload:
            raise CheckFailed("a stream without an error event", json.dumps(payload)[:300], exchange=exchange)
        problems = schema_errors("TaskChunk", payload)
        if problems:
            raise CheckFailed("every chunk valid against TaskChunk.json", "; ".join(problems) + f" in {json.dumps(payload)[:300]}", exchange=exchange)
        last = number == len(payloads) - 1
        if last != (payload["results"] == [] and payload.get("usage") is not None) or (not last and payload.get("usage") is not None):
            raise CheckFailed("results: [] and usage on the last chunk before [DONE], and on no other", f"chunk {number} of {len(payloads)}: {json.dumps(payload)[:200]}", exchange=exchange)
        for delta in payload["results"]:
            pieces.setdefault(delta["index"], []).append(delta["delta"])
            if delta.get("finish_reason") is not None:
                finishes[delta["index"]] = finishes.get(delta["index"], 0) + 1
    if finishes != {i: 1 for i in range(count)} or set(pieces) - set(range(count)):
        raise CheckFailed(f"finish_reason exactly once for each result 0..{count - 1}", f"finish_reasons per index {finishes}, deltas for {sorted(pieces)}", exchange=exchange)
    usage = payloads[-1]["usage"]
    if usage["total_tokens"] != usage["prompt_tokens"] + usage["completion_tokens"]:
        raise CheckFailed("usage adding up on the final chunk", repr(usage), exchange=exchange)
    return TaskStream(exchange, {i: "".join(pieces.get(i, [])) for i in range(count)}, usage)


@check("task_streaming")
def task_streaming(ctx: Context) -> CheckOutcome:
    def prop(case: tuple[tuple[str, str, str, dict[str, Any]], bool, int]) -> bool:
        (task, model, text, extra), batch, seed = case
        # Seeded sampling: outputs that post-processing has to clean, streamed a delta at a time.
        body = task_body(ctx, task, model, [text, INPUTS[task][-1]] if batch else text, temperature=1.0, seed=seed, **extra)
        stream = open_task_stream(ctx, task, body)
        template = template_of(ctx, model, task)
        for index, output in stream.outputs.items():
            given = body["input"] if isinstance(body["input"], str) else body["input"][index]
            judge_output(stream.exchange, output, template, rendered_prompt(template, task, body, given))
        if listed_model(ctx, model).get("determinism") in DETERMINISTIC:
            _, whole = run_task(ctx, task, body)
            expected = {r["index"]: r["output"] for r in whole["results"]}
            if stream.outputs != expected:
                raise CheckFailed(f"deltas concatenating to the post-processed outputs {expected!r}", repr(stream.outputs), exchange=stream.exchange)
        return True

    return run_property(ctx, st.tuples(_cases(ctx), st.booleans(), st.integers(0, 2**31 - 1)), prop, examples=ctx.settings.generation_examples, what="streamed tasks")


def _calibrate(ctx: Context, task: str, model: str) -> tuple[float, float]:
    """(prompt tokens with no input words, tokens per word), from two short requests."""
    counts = []
    for words in (4, 12):
        _, answer = run_task(ctx, task, task_body(ctx, task, model, " ".join([WORD] * words), max_tokens=1))
        counts.append(answer["usage"]["prompt_tokens"])
    rate = max((counts[1] - counts[0]) / 8, 1.0)
    return counts[0] - 4 * rate, rate


@check("task_truncation")
def task_truncation(ctx: Context) -> CheckOutcome:
    task, model = pairs(ctx)[0]
    context = listed_model(ctx, model).get("context_length")
    if not isinstance(context, int):
        raise Skip(f"{model} states no context_length in /v1/models")
    room = ctx.settings.max_tokens
    base, rate = _calibrate(ctx, task, model)
    words = math.ceil((context - base) / rate) + room + 4
    estimate = base + words * rate
    cap = ctx.limit("max_prompt_tokens")
    if cap is not None and estimate > cap:
        raise Skip(f"an input past {model}'s context ({context} tokens) would pass the server's max_prompt_tokens ({cap}) too")
    body_cap = ctx.limit("max_body_bytes")
    if body_cap is not None and words * (len(WORD) + 1) + 1024 > body_cap:
        raise Skip(f"an input past {model}'s context ({context} tokens) would not fit the server's max_body_bytes ({body_cap})")
    long_text = " ".join([WORD] * words)
    target = "context" if task == "answer" else "input"
    long = task_body(ctx, task, model, INPUTS[task][0], max_tokens=room, **{target: long_text})
    with Failures() as failures:
        for extra in ({}, {"truncation": "disabled"}):
            with failures.each():
                expect_error(ctx.wire.request("POST", f"{TASKS}/{task}", json_body={**long, **extra}), ("context_length_exceeded",))
        with failures.each():
            exchange, answer = run_task(ctx, task, {**long, "truncation": "auto"})
            result, usage = answer["results"][0], answer["usage"]
            if result["truncated"] is not True:
                raise CheckFailed(f"truncated: true when truncation: auto shortened the {target}", repr(result["truncated"]), exchange=exchange)
            if usage["prompt_tokens"] + room > context:
                raise CheckFailed(f"the shortened prompt leaving max_tokens ({room}) within the context ({context})", repr(usage), exchange=exchange)
        with failures.each():
            exchange, answer = run_task(ctx, task, task_body(ctx, task, model, INPUTS[task][0], truncation="auto"))
            if answer["results"][0]["truncated"] is not False:
                raise CheckFailed("truncated: false when the input fits", repr(answer["results"][0]["truncated"]), exchange=exchange)
        limit = ctx.limit("max_tokens")
        if limit is None or context <= limit:
            with failures.each():
                short = task_body(ctx, task, model, INPUTS[task][0], max_tokens=context)
                expect_error(ctx.wire.request("POST", f"{TASKS}/{task}", json_body=short), ("context_length_exceeded",))
    return CheckOutcome(examples=5, triggered=5, notes=[f"{task} on {model}: {words} words (about {estimate:.0f} tokens) against a context of {context}"])


@check("task_fields")
def task_fields(ctx: Context) -> CheckOutcome:
    foreign_fields = sorted(set().union(*TASK_FIELDS.values()))
    count = 0
    with Failures() as failures:
        for task, model in pairs(ctx):
            for name in foreign_fields:
                if name in TASK_FIELDS[task]:
                    continue
                with failures.each():
                    count += 1
                    body = task_body(ctx, task, model, INPUTS[task][0], **{name: FOREIGN_VALUES[name]})
                    expect_error(ctx.wire.request("POST", f"{TASKS}/{task}", json_body=body), ("unsupported_parameter",), param=name)
            with failures.each():
                count += 1  # a field no task has is refused the same way
                unknown = ctx.name("field").replace("-", "_")
                body = task_body(ctx, task, model, INPUTS[task][0], **{unknown: 1})
                expect_error(ctx.wire.request("POST", f"{TASKS}/{task}", json_body=body), ("unsupported_parameter",), param=unknown)
    return CheckOutcome(examples=count, triggered=count)


@check("task_deterministic")
def task_deterministic(ctx: Context) -> CheckOutcome:
    def prop(case: tuple[str, str, str, dict[str, Any]]) -> bool:
        task, model, text, extra = case
        body = task_body(ctx, task, model, text, temperature=0, **extra)
        _, first = run_task(ctx, task, body)
        exchange, second = run_task(ctx, task, body)
        outputs = [r["output"] for r in first["results"]]
        again = [r["output"] for r in second["results"]]
        if outputs != again:
            raise CheckFailed(f"the same output for the same request at temperature 0 ({model} claims {listed_model(ctx, model).get('determinism')}): {outputs!r}", repr(again), exchange=exchange)
        stream = open_task_stream(ctx, task, body)
        if [stream.outputs.get(0, "")] != outputs:
            raise CheckFailed(f"the streamed deltas concatenating to the unstreamed output {outputs!r}", repr(stream.outputs), exchange=stream.exchange)
        return True

    return run_property(ctx, _cases(ctx, deterministic=True), prop, examples=ctx.settings.generation_examples, what="repeated task requests")
