"""The conformance report: vendors publish it, so its shape is part of the standard."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from llmos_std.profiles import ProfileName
from llmos_std.requirements import Level, Surface
from llmos_std.wire import WireModel

Verdict = Literal["pass", "fail", "untested", "skipped", "unsupported", "kit_error"]
"""``fail`` is the target's; ``kit_error`` is only a bug in the kit or an unreachable base URL;
``untested``: claimed, but this kit version has no check for it (never a pass); ``skipped``: the
check ran but could not trigger the property, or needs an input the run lacks (the reason says which)."""

VERDICT_ORDER: tuple[Verdict, ...] = ("fail", "kit_error", "untested", "skipped", "pass", "unsupported")
"""Worst first: a requirement's verdict is the worst of its checks', so a fail stays a fail."""

ProfileVerdict = Literal["pass", "fail", "incomplete", "kit_error", "skipped", "unsupported"]
"""``pass``: every MUST of the profile passed or was skipped with a reason; ``fail``: a MUST failed;
``kit_error``: the kit could not judge a MUST; ``incomplete``: a MUST is untested by this kit version;
``skipped``: nothing could be exercised. SHOULD failures are listed but never change it."""

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_KIT_ERROR, EXIT_INCOMPLETE = 0, 1, 2, 3, 4
"""The kit's exit status: conformant to every claimed profile; a claimed MUST failed; usage or
configuration error; the kit broke (and nothing failed); a claimed profile is incomplete (and
nothing failed or broke)."""

MAX_FAILURES_SHOWN = 10
"""Failing examples a check reports in full; ``failure_count`` says how many there were."""


def worst(verdicts: list[Verdict]) -> Verdict:
    """Combine verdicts: any fail wins; all-unsupported stays unsupported; nothing run is skipped."""
    if not verdicts:
        return "skipped"
    return min(verdicts, key=VERDICT_ORDER.index)


class Failure(WireModel):
    expected: str
    seen: str
    example: JsonValue = None
    """The minimal request that shows the failure (after shrinking), credentials redacted."""
    curl: str | None = None
    """A command that reproduces it, credentials redacted."""


class CheckResult(WireModel):
    name: str
    verdict: Verdict
    reason: str | None = None
    """Why the check was skipped, unsupported or errored."""
    examples: int = Field(default=0, ge=0)
    triggered: int = Field(default=0, ge=0)
    """How many examples really exercised the property."""
    duration_ms: int = Field(default=0, ge=0)
    notes: list[str] = Field(default_factory=list)
    """What the check measured on the way (e.g. timings, counts), for the reader of the report."""
    failures: list[Failure] = Field(default_factory=list, max_length=MAX_FAILURES_SHOWN)
    """The failing examples, the shrunk minimal one first."""
    failure_count: int = Field(default=0, ge=0)
    """How many examples failed (``failures`` shows at most ten)."""


class RequirementResult(WireModel):
    id: str
    level: Level
    profile: ProfileName
    surface: Surface
    """``openai-wire`` or ``llmos`` (an addition to the OpenAI wire), from the registry."""
    sentence: str
    verdict: Verdict
    checks: list[CheckResult]
    self_declared: bool = False
    """Not observable over HTTP: the vendor declares it; ``skipped`` with no checks, never ``pass``."""


class ProfileResult(WireModel):
    profile: ProfileName
    claimed: bool
    verdict: ProfileVerdict
    counts: dict[str, int]
    untested: list[str] = Field(default_factory=list)
    """MUST requirements this kit version cannot check (they make the profile incomplete)."""
    unmet_should: list[str] = Field(default_factory=list)
    """SHOULD requirements that failed (reported; conformance stands)."""


class SurfaceResult(WireModel):
    """One side of the OpenAI-wire / LLMOS split, over the claimed profiles."""

    surface: Surface
    counts: dict[str, int]
    failed: list[str]
    """IDs that failed: on ``openai-wire`` what OpenAI clients suffer from, on ``llmos`` what to add."""


class KitInfo(WireModel):
    name: str
    version: str


class TargetInfo(WireModel):
    base_url: str | None
    openai_base_url: str
    """The base ``/v1/...`` was sent under, as resolved."""
    openai_base_url_given: str | None = None
    """``--openai-base-url`` as the user wrote it (e.g. the OpenAI-SDK form ending in ``/v1``)."""
    implementation: dict[str, str] | None = None
    claimed_profiles: list[ProfileName]
    models: dict[str, str]
    """The model picked for each capability."""
    model_sources: dict[str, str] = Field(default_factory=dict)
    """How each pick was made: ``declared`` (the target's capabilities), ``probed`` or ``configured`` (--model)."""


class RunInfo(WireModel):
    id: str
    started_at: str
    """RFC 3339 UTC."""
    finished_at: str
    seed: int
    max_examples: int
    requirement_filter: list[str]
    check_filter: list[str]


def profile_verdict(results: list[RequirementResult]) -> ProfileVerdict:
    """What conformance to one claimed profile means, from its requirements' verdicts."""
    must = [r.verdict for r in results if r.level == "MUST"]
    for verdict in ("fail", "kit_error"):
        if verdict in must:
            return verdict
    if "untested" in must:
        return "incomplete"
    if must and all(v == "skipped" for v in must):
        return "skipped"
    return "pass"


def exit_code_of(profiles: list[ProfileResult]) -> int:
    verdicts = {p.verdict for p in profiles if p.claimed}
    if "fail" in verdicts:
        return EXIT_FAIL
    if "kit_error" in verdicts:
        return EXIT_KIT_ERROR
    if "incomplete" in verdicts:
        return EXIT_INCOMPLETE
    return EXIT_OK


class ConformanceReport(WireModel):
    object: Literal["llmos.conformance_report"] = "llmos.conformance_report"
    report_version: Literal["1"] = "1"
    standard_version: str
    kit: KitInfo
    target: TargetInfo
    run: RunInfo
    profiles: list[ProfileResult]
    surfaces: list[SurfaceResult]
    requirements: list[RequirementResult]
    counts: dict[str, int]
    exit_code: int
