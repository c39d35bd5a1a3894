"""The conformance report: vendors publish it, so its shape is part of the standard."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from llmos_std.profiles import ProfileName
from llmos_std.requirements import Level
from llmos_std.wire import WireModel

Verdict = Literal["pass", "fail", "unsupported", "skipped", "kit_error"]
"""``fail`` is the target's; ``kit_error`` is only a bug in the kit or an unreachable base URL."""

VERDICT_ORDER: tuple[Verdict, ...] = ("fail", "kit_error", "skipped", "pass", "unsupported")
"""Worst first: a requirement's verdict is the worst of its checks', so a fail stays a fail."""


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
    failure: Failure | None = None


class RequirementResult(WireModel):
    id: str
    level: Level
    profile: ProfileName
    sentence: str
    verdict: Verdict
    checks: list[CheckResult]


class ProfileResult(WireModel):
    profile: ProfileName
    claimed: bool
    verdict: Verdict
    counts: dict[str, int]


class KitInfo(WireModel):
    name: str
    version: str


class TargetInfo(WireModel):
    base_url: str | None
    openai_base_url: str
    implementation: dict[str, str] | None = None
    claimed_profiles: list[ProfileName]
    models: dict[str, str]
    """The model picked for each capability."""


class RunInfo(WireModel):
    id: str
    started_at: str
    """RFC 3339 UTC."""
    finished_at: str
    seed: int
    max_examples: int
    requirement_filter: list[str]
    check_filter: list[str]


class ConformanceReport(WireModel):
    object: Literal["llmos.conformance_report"] = "llmos.conformance_report"
    report_version: Literal["1"] = "1"
    standard_version: str
    kit: KitInfo
    target: TargetInfo
    run: RunInfo
    profiles: list[ProfileResult]
    requirements: list[RequirementResult]
    counts: dict[str, int]
    exit_code: int
