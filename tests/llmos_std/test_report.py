"""What conformance to a profile means, and the exit status that says it (spec: 00-index, Conformance)."""

from __future__ import annotations

import pytest

from llmos_std.report import EXIT_FAIL, EXIT_INCOMPLETE, EXIT_KIT_ERROR, EXIT_OK, ProfileResult, RequirementResult, Verdict, exit_code_of, profile_verdict
from llmos_std.requirements import Level


def _req(level: Level, verdict: Verdict) -> RequirementResult:
    return RequirementResult(id="LLMOS-X-001", level=level, profile="core", surface="llmos", sentence="s", verdict=verdict, checks=[])


# Each row: the verdicts of a profile's requirements, and the profile's verdict.
@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([("MUST", "pass"), ("MUST", "skipped")], "pass"),  # a skip with its reason does not break conformance
        ([("MUST", "pass"), ("SHOULD", "fail")], "pass"),  # an unmet SHOULD is reported, conformance stands
        ([("MUST", "pass"), ("MUST", "untested")], "incomplete"),  # untested is never a pass
        ([("MUST", "untested"), ("MUST", "kit_error")], "kit_error"),  # the kit broke: no conclusion
        ([("MUST", "untested"), ("MUST", "fail"), ("MUST", "kit_error")], "fail"),  # a failure stays a failure
        ([("MUST", "skipped"), ("SHOULD", "pass")], "skipped"),  # nothing could be exercised
    ],
)
def test_profile_verdict(verdicts: list[tuple[Level, Verdict]], expected: str) -> None:
    assert profile_verdict([_req(level, verdict) for level, verdict in verdicts]) == expected


# Each row: the verdicts of the claimed profiles (one unclaimed "fail" is ignored), and the exit status.
@pytest.mark.parametrize(
    ("claimed", "code"),
    [
        (["pass", "skipped"], EXIT_OK),
        (["pass", "incomplete"], EXIT_INCOMPLETE),
        (["incomplete", "kit_error"], EXIT_KIT_ERROR),
        (["incomplete", "kit_error", "fail"], EXIT_FAIL),
    ],
)
def test_exit_code_follows_the_claimed_profiles(claimed: list[str], code: int) -> None:
    profiles = [ProfileResult(profile="core", claimed=True, verdict=v, counts={}) for v in claimed]  # type: ignore[arg-type]
    profiles.append(ProfileResult(profile="tasks", claimed=False, verdict="unsupported", counts={}))
    assert exit_code_of(profiles) == code
