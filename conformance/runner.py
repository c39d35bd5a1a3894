"""Runs the selected checks against one target and assembles the ConformanceReport.

Each check runs once even when several requirements list it; a requirement's verdict is the worst of
its checks', so a failure stays a failure whatever else happened.
"""

from __future__ import annotations

import json
import secrets
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from llmos_std import STANDARD_VERSION
from llmos_std.profiles import PROFILES
from llmos_std.report import (
    EXIT_KIT_ERROR,
    MAX_FAILURES_SHOWN,
    CheckResult,
    ConformanceReport,
    Failure,
    KitInfo,
    ProfileResult,
    RequirementResult,
    RunInfo,
    SurfaceResult,
    TargetInfo,
    Verdict,
    exit_code_of,
    profile_verdict,
    worst,
)
from llmos_std.requirements import REQUIREMENTS, REQUIREMENTS_BY_ID, Requirement, Surface

from conformance import KIT_NAME, KIT_VERSION
from conformance.context import Context
from conformance.registry import CHECKS, load_checks, registry_checks
from conformance.config import KitSettings
from conformance.plan import Plan, discover
from conformance.verdicts import CheckFailed, ConfigError, KitError, Skip
from conformance.wire import redact

NOT_IMPLEMENTED = "this kit version has no check for it"
VERDICTS: tuple[Verdict, ...] = ("pass", "fail", "untested", "skipped", "unsupported", "kit_error")
SURFACES: tuple[Surface, ...] = ("openai-wire", "llmos")

Progress = Callable[[str, int, int], None]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def selected_requirements(settings: KitSettings) -> list[Requirement]:
    load_checks()
    unknown_ids = [rid for rid in settings.requirements if rid not in REQUIREMENTS_BY_ID]
    if unknown_ids:
        raise ConfigError(f"unknown requirement id(s): {', '.join(unknown_ids)}")
    unknown_checks = [name for name in settings.checks if name not in registry_checks()]
    if unknown_checks:
        raise ConfigError(f"unknown check name(s): {', '.join(unknown_checks)}")
    chosen = [r for r in REQUIREMENTS if not r.deprecated]
    if settings.requirements:
        chosen = [r for r in chosen if r.id in settings.requirements]
    if settings.checks:
        chosen = [r for r in chosen if set(r.checks) & set(settings.checks)]
    return chosen


def _scrub(value: Any, secrets_: tuple[str, ...]) -> Any:
    if not secrets_:
        return value
    return json.loads(redact(json.dumps(value), secrets_))


def _failure(exc: CheckFailed, secrets_: tuple[str, ...]) -> Failure:
    exchange = exc.exchange
    example = exc.example if exc.example is not None else (exchange.request_json() if exchange is not None else None)
    return Failure(
        expected=redact(exc.expected, secrets_),
        seen=redact(exc.seen, secrets_),
        example=_scrub(example, secrets_),
        curl=exchange.curl(secrets_) if exchange is not None else None,
    )


def run_check(name: str, ctx: Context) -> CheckResult:
    spec = CHECKS.get(name)
    if spec is None:
        return CheckResult(name=name, verdict="untested", reason=NOT_IMPLEMENTED)
    started = time.monotonic()
    verdict: Verdict
    reason: str | None = None
    failures: list[Failure] = []
    failure_count = 0
    examples = triggered = 0
    notes: list[str] = []
    try:
        outcome = spec.fn(ctx)
        verdict, examples, triggered, notes = "pass", outcome.examples, outcome.triggered, [redact(n, ctx.wire.secrets) for n in outcome.notes]
    except CheckFailed as exc:
        verdict = "fail"
        failures = [_failure(f, ctx.wire.secrets) for f in (exc, *exc.others)][:MAX_FAILURES_SHOWN]
        failure_count = max(exc.total, len(failures))
    except Skip as exc:
        verdict, reason = "skipped", redact(str(exc), ctx.wire.secrets)
    except KitError as exc:
        verdict, reason = "kit_error", redact(str(exc), ctx.wire.secrets)
    except Exception as exc:  # noqa: BLE001 - a bug in a check is the kit's error, never the target's
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        verdict, reason = "kit_error", redact(f"{type(exc).__name__}: {exc} (at {frame.name}:{frame.lineno})", ctx.wire.secrets)
    duration = int((time.monotonic() - started) * 1000)
    return CheckResult(name=name, verdict=verdict, reason=reason, examples=examples, triggered=triggered, duration_ms=duration, notes=notes, failures=failures, failure_count=failure_count)


def run(settings: KitSettings, *, progress: Progress | None = None, run_id: str | None = None) -> ConformanceReport:
    """One run; ConfigError propagates (exit 2), an unreachable target becomes kit_error verdicts."""
    started = _now()
    run_id = run_id or secrets.token_hex(4)
    chosen = selected_requirements(settings)
    try:
        plan, wire = discover(settings)
    except KitError as exc:
        return _unreachable(settings, chosen, run_id, started, str(exc))
    ctx = Context(wire=wire, plan=plan, settings=settings, run_id=run_id)
    results: dict[str, CheckResult] = {}
    wanted_checks = [
        name for req in chosen if req.profile in plan.claimed for name in req.checks
        if not settings.checks or name in settings.checks
    ]
    order = list(dict.fromkeys(wanted_checks))
    try:
        for i, name in enumerate(order):
            if progress is not None:
                progress(name, i, len(order))
            results[name] = run_check(name, ctx)
        if progress is not None:
            progress("", len(order), len(order))
    finally:
        for undo in reversed(ctx.cleanup):
            try:
                undo()
            except Exception:  # noqa: BLE001, S110 - cleanup is best effort; leftovers carry the run id
                pass
        wire.close()
    requirements = [_requirement_result(req, plan, settings, results) for req in chosen]
    return _report(settings, plan, requirements, run_id, started)


def _requirement_result(req: Requirement, plan: Plan, settings: KitSettings, results: dict[str, CheckResult]) -> RequirementResult:
    names = [n for n in req.checks if not settings.checks or n in settings.checks]
    if req.profile not in plan.claimed:
        checks = [CheckResult(name=n, verdict="unsupported", reason=f"profile {req.profile!r} is not claimed") for n in names]
    else:
        checks = [results.get(n) or CheckResult(name=n, verdict="untested", reason=NOT_IMPLEMENTED) for n in names]
    return RequirementResult(id=req.id, level=req.level, profile=req.profile, surface=req.surface, sentence=req.sentence,
                             verdict="unsupported" if req.profile not in plan.claimed else worst([c.verdict for c in checks]),
                             checks=checks, self_declared=req.self_declared)


def _counts(verdicts: list[Verdict]) -> dict[str, int]:
    return {v: verdicts.count(v) for v in VERDICTS}


def _report(settings: KitSettings, plan: Plan, requirements: list[RequirementResult], run_id: str, started: str) -> ConformanceReport:
    profiles: list[ProfileResult] = []
    for profile in PROFILES:
        mine = [r for r in requirements if r.profile == profile]
        if not mine:
            continue
        claimed = profile in plan.claimed
        profiles.append(ProfileResult(
            profile=profile, claimed=claimed, verdict=profile_verdict(mine) if claimed else "unsupported",
            counts=_counts([r.verdict for r in mine]),
            untested=[r.id for r in mine if claimed and r.level == "MUST" and r.verdict == "untested"],
            unmet_should=[r.id for r in mine if claimed and r.level != "MUST" and r.verdict == "fail"],
        ))
    in_claim = [r for r in requirements if r.profile in plan.claimed]
    surfaces = [
        SurfaceResult(surface=surface, counts=_counts([r.verdict for r in in_claim if r.surface == surface]),
                      failed=[r.id for r in in_claim if r.surface == surface and r.verdict == "fail"])
        for surface in SURFACES
    ]
    return ConformanceReport(
        standard_version=plan.standard_version,
        kit=KitInfo(name=KIT_NAME, version=KIT_VERSION),
        target=TargetInfo(
            base_url=settings.base_url, openai_base_url=plan.openai_base or settings.base_url or "",
            openai_base_url_given=settings.openai_base_url,
            implementation=plan.implementation, claimed_profiles=list(plan.claimed), models=plan.model_ids(),
            model_sources=dict(plan.model_sources),
        ),
        run=RunInfo(id=run_id, started_at=started, finished_at=_now(), seed=settings.seed, max_examples=settings.max_examples,
                    requirement_filter=list(settings.requirements), check_filter=list(settings.checks)),
        profiles=profiles,
        surfaces=surfaces,
        requirements=requirements,
        counts=_counts([r.verdict for r in requirements]),
        exit_code=exit_code_of(profiles),
    )


def _unreachable(settings: KitSettings, chosen: list[Requirement], run_id: str, started: str, reason: str) -> ConformanceReport:
    profiles = tuple(settings.profiles) or ("core",)
    plan = Plan(STANDARD_VERSION, profiles, None)
    requirements = [
        RequirementResult(id=r.id, level=r.level, profile=r.profile, surface=r.surface, sentence=r.sentence, verdict="kit_error",
                          checks=[CheckResult(name=n, verdict="kit_error", reason=reason) for n in r.checks])
        for r in chosen if r.profile in profiles
    ]
    report = _report(settings, plan, requirements, run_id, started)
    return report.model_copy(update={"exit_code": EXIT_KIT_ERROR})
