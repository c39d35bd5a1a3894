"""data-management pipelines: derive output exactly as the steps are defined, the worked examples, step properties, refusals.

Every example derives from a dataset of its own, so that a failure reproduces from the records and
the pipeline the report shows.
"""

from __future__ import annotations

import itertools
import unicodedata
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from pydantic import TypeAdapter

from llmos_std.pipeline import MODEL_STEPS, TemplateError
from llmos_std.query import Filter, matches

from conformance.checks.data_management.driver import DATASETS, adopt, append, create, derive, export, get, listed, ref, send, settle
from conformance.checks.data_management.records import local_pipelines, pii_texts, redaction_problem, text_filters, text_records
from conformance.checks.data_management.shadow import canonical, expected_output, first_difference
from conformance.context import Context
from conformance.judging import expect_error
from conformance.properties import run_property
from conformance.registry import check
from conformance.verdicts import CheckFailed, CheckOutcome, Failures, KitError
from conformance.wire import Exchange

_FILTER: TypeAdapter[Filter] = TypeAdapter(Filter)


@dataclass(frozen=True)
class Source:
    """The dataset version a derive reads."""

    id: str
    version: int

    @classmethod
    def fresh(cls, ctx: Context, suffix: str, records: list[dict[str, Any]]) -> Source:
        """A new dataset holding ``records`` at version 2 (version 1 when there are none)."""
        made = create(ctx, suffix)
        return cls(made["id"], append(ctx, made["id"], records)["version"] if records else 1)


def _run(ctx: Context, source: Source, pipeline: list[Any], name: str | None) -> tuple[dict[str, Any], Exchange]:
    """Derive and wait: the settled operation (a new dataset it made is deleted at the end)."""
    exchange, operation = derive(ctx, ref(source.id, source.version), pipeline, name=name)
    final, last = settle(ctx, operation, exchange)
    if final["status"] == "succeeded" and name is not None:
        adopt(ctx, str(final["result"]["dataset_id"]))
    return final, last


def _output(ctx: Context, source: Source, final: dict[str, Any], last: Exchange, name: str | None, what: str) -> list[dict[str, Any]]:
    """The records a succeeded derive made, after checking where it put them."""
    if final["status"] != "succeeded":
        raise CheckFailed(f"the derive succeeding ({what})", f"it failed: {final.get('error')}", exchange=last)
    result = final["result"]
    if name is None and result != {"dataset_id": source.id, "version": source.version + 1}:
        raise CheckFailed(f"a derive without a name making version {source.version + 1} of {source.id}", repr(result), exchange=last)
    if name is not None and (result["dataset_id"] == source.id or result["version"] != 1):
        raise CheckFailed("a derive with a name making a new dataset at version 1", repr(result), exchange=last)
    return export(ctx, ref(result["dataset_id"], result["version"]))[1]


def _failed_cleanly(ctx: Context, source: Source, final: dict[str, Any], last: Exchange, name: str | None, why: str) -> None:
    """The derive failed with pipeline_failed and left no version or dataset behind."""
    error = final.get("error") or {}
    if final["status"] != "failed" or error.get("code") != "pipeline_failed":
        raise CheckFailed(f"the derive failing with pipeline_failed ({why})", repr({k: final.get(k) for k in ("status", "result", "error")}), exchange=last)
    now = get(ctx, source.id)
    if now["version"] != source.version:
        raise CheckFailed(f"no version left behind by the failed derive (still version {source.version})", f"version {now['version']}", exchange=ctx.wire.last)
    if name is not None:
        names, listing = listed(ctx)
        if name in names.values():
            raise CheckFailed(f"no dataset {name!r} left behind by the failed derive", "listed", exchange=listing)


EDGE_RECORDS: tuple[dict[str, Any], ...] = (
    {"text": " \u00c0\u00c9 \u03a3\u0391\u03a3\u3000", "n": 1},  # non-ASCII case, final sigma, ideographic space
    {"text": "\ufb01ne A\u030a \u2460\u00a0\u0085", "n": 2},  # compatibility and combining forms, NBSP and NEL
    {"text": "\u200bx\u200b", "n": 3},  # ZERO WIDTH SPACE is not White_Space
)
"""Records every pipeline example starts with, so that each step meets the cases its definition singles out."""


@check("dataset_pipeline")
def dataset_pipeline(ctx: Context) -> CheckOutcome:
    counter = itertools.count(1)
    cases = st.tuples(st.lists(text_records, max_size=8), local_pipelines, st.booleans())

    def prop(case: tuple[list[dict[str, Any]], list[dict[str, Any]], bool]) -> bool:
        generated, pipeline, into_new = case
        records = [*EDGE_RECORDS, *generated]
        n = next(counter)
        source = Source.fresh(ctx, f"pipeline-{n}", records)
        name = ctx.name(f"pipeline-{n}-out") if into_new else None
        try:
            expected: list[dict[str, Any]] | None = expected_output(pipeline, records)
        except TemplateError:
            expected = None
        final, last = _run(ctx, source, pipeline, name)
        if expected is None:
            _failed_cleanly(ctx, source, final, last, name, "a template names a field a record lacks")
            return True
        seen = _output(ctx, source, final, last, name, "every step model-free and valid")
        diff = first_difference(expected, seen)
        if diff is not None:
            raise CheckFailed("the steps applied in order exactly as defined (llmos_std.pipeline)", diff, exchange=ctx.wire.last)
        return True

    swept = _sweep(ctx)
    outcome = run_property(ctx, cases, prop, examples=ctx.settings.max_examples, what="pipelines")
    refused = _refusals(ctx)
    outcome.examples += swept + refused
    outcome.triggered += swept + refused
    return outcome


SWEEP: tuple[dict[str, Any], ...] = (
    {"op": "normalize", "field": "text", "form": "NFC"},
    {"op": "normalize", "field": "text", "form": "NFKC"},
    {"op": "strip", "field": "text"},
    {"op": "collapse_whitespace", "field": "text"},
    {"op": "lowercase", "field": "text"},
    {"op": "dedupe", "field": "n"},
    {"op": "filter", "where": {"op": "lt", "field": "n", "value": 3}},
    {"op": "length_filter", "field": "text", "min": 4, "max": 9},
    {"op": "redact_pii", "field": "text"},
    {"op": "template", "into": "prompt", "template": "{{{n}}} {text}"},
)
"""Every model-free step once over :data:`EDGE_RECORDS` (and a record with PII), before the random pipelines."""


def _sweep(ctx: Context) -> int:
    records = [*EDGE_RECORDS, {"text": "mail a.b@example.org from 10.0.0.1, card 4111 1111 1111 1111", "n": 1}]
    source = Source.fresh(ctx, "pipeline-sweep", records)
    latest = source.version
    with Failures() as failures:
        for step in SWEEP:
            with failures.each():
                final, last = _run(ctx, source, [step], None)
                if final["status"] != "succeeded":
                    raise CheckFailed(f"the derive {canonical(step)} succeeding", f"it failed: {final.get('error')}", exchange=last)
                latest += 1
                if final["result"] != {"dataset_id": source.id, "version": latest}:
                    raise CheckFailed(f"a derive of {ref(source.id, source.version)} making version {latest}, one above the latest", repr(final["result"]), exchange=last)
                exchange, seen = export(ctx, ref(source.id, latest))
                diff = first_difference(expected_output([step], records), seen)
                if diff is not None:
                    raise CheckFailed(f"{canonical(step)} applied exactly as defined", diff, exchange=exchange)
    return len(SWEEP)


def _task_model(ctx: Context) -> tuple[str, list[str]] | None:
    """A listed model that offers tasks, with the tasks it offers (its ``/v1/models`` entry says)."""
    return next(((str(m["id"]), list(m["tasks"])) for m in ctx.plan.model_list if m.get("tasks")), None)


def invalid_pipelines(ctx: Context) -> list[tuple[int, list[dict[str, Any]]]]:
    """(index of the bad step, pipeline) for each kind of pipeline the standard refuses before it runs."""
    strip = {"op": "strip", "field": "text"}
    cases: list[tuple[int, list[dict[str, Any]]]] = [
        (0, [{"op": "uppercase", "field": "text"}]),  # an unknown step
        (0, [{"op": "strip"}]),  # a missing member
        (0, [{"op": "strip", "field": "text", "fields": ["text"]}]),  # an unknown member
        (0, [{"op": "length_filter", "field": "text", "min": "3"}]),  # an ill-typed member
        (1, [strip, {"op": "normalize", "field": "text", "form": "NFD"}]),  # the second step is the bad one
        (0, [{"op": "template", "into": "t", "template": "{unclosed"}]),  # braces that do not pair up
        (1, [strip, {"op": "template", "into": "t", "template": "{a..b}"}]),  # a placeholder that is no field path
        (0, [{"op": "length_filter", "field": "text", "min": 5, "max": 2}]),  # max below min
        (0, [{"op": "length_filter", "field": "text", "unit": "tokens"}]),  # tokens without a model
        (0, [{"op": "token_count", "field": "text", "into": "n", "model": ctx.name("absent-model")}]),  # no such model
    ]
    embedder = ctx.plan.models.get("embeddings")
    if embedder is not None:
        cases.append((0, [{"op": "token_count", "field": "text", "into": "n", "model": embedder["id"]}]))  # not a text model
    offering = _task_model(ctx)
    if offering is not None:
        model, tasks = offering
        lacking = next((t for t in ("translate", "summarize", "answer") if t not in tasks), None)
        if lacking is not None:
            cases.append((0, [{"op": "annotate", "task": lacking, "field": "text", "into": "s", "model": model}]))  # a task the model lacks
        if "translate" in tasks:
            cases.append((0, [{"op": "annotate", "task": "translate", "field": "text", "into": "s", "model": model}]))  # translate without target
        if "summarize" in tasks:
            cases.append((0, [{"op": "annotate", "task": "summarize", "field": "text", "into": "s", "model": model, "target_language": "fr"}]))  # a member of another task
    return cases


def _refusals(ctx: Context) -> int:
    """Invalid pipelines: 400 pipeline_invalid naming the step, with nothing created (no version, no named dataset)."""
    source = Source.fresh(ctx, "pipeline-invalid", [{"text": " A "}])
    cases = invalid_pipelines(ctx)
    names = [ctx.name(f"pipeline-invalid-{i}") for i in range(len(cases))]
    path = f"{DATASETS}/{ref(source.id, source.version)}/derive"
    strip = [{"op": "strip", "field": "text"}]
    with Failures() as failures:
        for (bad, pipeline), name in zip(cases, names):
            with failures.each():
                body = {"pipeline": pipeline, **({"name": name} if bad % 2 == len(pipeline) % 2 else {})}
                expect_error(send(ctx, "POST", path, body), ("pipeline_invalid",), param=f"pipeline.{bad}", param_prefix=True)
        with failures.each():
            taken = create(ctx, "pipeline-taken")
            expect_error(send(ctx, "POST", path, {"pipeline": strip, "name": taken["name"]}), ("already_exists",))
        with failures.each():
            expect_error(send(ctx, "POST", f"{DATASETS}/{ref(source.id, source.version + 1)}/derive", {"pipeline": strip, "name": names[0]}), ("dataset_version_not_found",))
        with failures.each():
            now = get(ctx, source.id)
            listing, shown = listed(ctx)
            left = sorted(set(names) & set(listing.values()))
            if now["version"] != source.version or left:
                raise CheckFailed(f"nothing created by the refused derives (version {source.version}, no new dataset)",
                                  f"version {now['version']}; datasets {left}", exchange=shown)
    return len(cases) + 3


@check("dataset_worked_examples")
def dataset_worked_examples(ctx: Context) -> CheckOutcome:
    from llmos_std.pipeline_examples import WORKED_EXAMPLES

    ran = 0
    notes: list[str] = []
    with Failures() as failures:
        for number, example in enumerate(WORKED_EXAMPLES, 1):
            if example.step.get("op") in MODEL_STEPS:
                notes.append(f"worked example {example.title!r} needs a model; not run")
                continue
            records_in = [dict(r) for r in example.records_in]
            records_out = [dict(r) for r in example.records_out]
            if first_difference(records_out, expected_output([example.step], records_in)) is not None:
                raise KitError(f"worked example {example.title!r} disagrees with llmos_std.pipeline.run_local")
            ran += 1
            with failures.each():
                try:
                    source = Source.fresh(ctx, f"worked-{number}", records_in)
                    final, last = _run(ctx, source, [example.step], None)
                    seen = _output(ctx, source, final, last, None, f"worked example {example.title!r}")
                    diff = first_difference(records_out, seen)
                    if diff is not None:
                        raise CheckFailed(f"worked example {example.title!r} reproduced", diff, exchange=ctx.wire.last)
                except CheckFailed as exc:
                    exc.example = {"title": example.title, "step": example.step, "records_in": records_in, "records_out": records_out}
                    raise
    if not ran:
        raise KitError("no worked example the kit can run without a model")
    return CheckOutcome(examples=ran, triggered=ran, notes=notes)


IDEMPOTENT_STEPS: tuple[dict[str, Any], ...] = (
    {"op": "normalize", "field": "text", "form": "NFC"},
    {"op": "normalize", "field": "text", "form": "NFKC"},
    {"op": "dedupe", "field": "text"},
    {"op": "dedupe"},
)
_records = st.lists(text_records, min_size=1, max_size=8)
property_cases = st.one_of(
    st.tuples(st.just("idempotent"), _records, st.sampled_from(IDEMPOTENT_STEPS)),
    st.tuples(st.just("subset"), _records, text_filters),
    st.tuples(st.just("redaction"), st.lists(pii_texts, min_size=1, max_size=4), st.none()),
    st.tuples(st.just("failing"), _records.map(lambda rs: [*rs, {"n": 9}]), st.booleans()),
)
"""(kind, records, parameter): a step applied twice; a filter; planted PII; a template over a record without its field."""


@check("dataset_pipeline_properties")
def dataset_pipeline_properties(ctx: Context) -> CheckOutcome:
    counter = itertools.count(1)

    def prop(case: tuple[str, Any, Any]) -> bool:
        kind, records, parameter = case
        n = next(counter)
        if kind == "redaction":
            planted = records
            records = [{"text": text} for text, _ in planted]
        source = Source.fresh(ctx, f"properties-{n}", records)
        if kind == "idempotent":
            _idempotent(ctx, source, parameter)
        elif kind == "subset":
            _subset(ctx, source, records, parameter)
        elif kind == "redaction":
            _redaction(ctx, source, planted)
        else:
            name = ctx.name(f"properties-{n}-out") if parameter else None
            pipeline = [{"op": "strip", "field": "text"}, {"op": "template", "into": "prompt", "template": "<{text}>"}]
            final, last = _run(ctx, source, pipeline, name)
            _failed_cleanly(ctx, source, final, last, name, "the last record has no text for the template")
        return True

    return run_property(ctx, property_cases, prop, examples=ctx.settings.max_examples, what="pipeline properties")


def _idempotent(ctx: Context, source: Source, step: dict[str, Any]) -> None:
    final, last = _run(ctx, source, [step], None)
    once = _output(ctx, source, final, last, None, f"{step['op']} once")
    again = Source(source.id, source.version + 1)
    final, last = _run(ctx, again, [step], None)
    twice = _output(ctx, again, final, last, None, f"{step['op']} twice")
    diff = first_difference(once, twice)
    if diff is not None:
        raise CheckFailed(f"{canonical(step)} idempotent: applying it to its own output changes nothing", diff, exchange=ctx.wire.last)
    if step["op"] == "normalize":
        bad = [r for r in once if isinstance(r.get("text"), str) and not unicodedata.is_normalized(step["form"], r["text"])]
        if bad:
            raise CheckFailed(f"every text in {step['form']} after normalize", canonical(bad[0]), exchange=ctx.wire.last)
    else:
        keys = [canonical(r if "field" not in step else r.get(step["field"])) for r in once if "field" not in step or step["field"] in r]
        if len(keys) != len(set(keys)):
            raise CheckFailed(f"no two records sharing a {'record' if 'field' not in step else step['field']} after dedupe", f"{len(keys) - len(set(keys))} repeats", exchange=ctx.wire.last)


def _subset(ctx: Context, source: Source, records: list[dict[str, Any]], where: dict[str, Any]) -> None:
    final, last = _run(ctx, source, [{"op": "filter", "where": where}], None)
    kept = _output(ctx, source, final, last, None, "a filter step")
    condition = _FILTER.validate_python(where)
    wanted = [r for r in records if matches(condition, r)]
    texts = [canonical(r) for r in kept]
    remaining = iter(canonical(r) for r in records)
    if not all(any(t == r for r in remaining) for t in texts):
        raise CheckFailed(f"the filter {canonical(where)} keeping a subset of the records, in their order", f"{len(kept)} records, not a subsequence of the {len(records)} sent", exchange=ctx.wire.last)
    diff = first_difference(wanted, kept)
    if diff is not None:
        raise CheckFailed(f"the filter {canonical(where)} keeping exactly the records it matches", diff, exchange=ctx.wire.last)


def _redaction(ctx: Context, source: Source, planted: list[tuple[str, list[tuple[str, str]]]]) -> None:
    final, last = _run(ctx, source, [{"op": "redact_pii", "field": "text"}], None)
    out = _output(ctx, source, final, last, None, "redact_pii")
    if len(out) != len(planted):
        raise CheckFailed(f"{len(planted)} records after redact_pii (it drops none)", f"{len(out)}", exchange=ctx.wire.last)
    for record, (_, items) in zip(out, planted):
        problem = redaction_problem(str(record.get("text")), items)
        if problem is not None:
            raise CheckFailed("every planted email, IPv4 address and Luhn-valid card number replaced by its placeholder", problem, exchange=ctx.wire.last)
