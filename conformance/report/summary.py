"""The verdict in words, shared by the terminal and HTML forms."""

from __future__ import annotations

from llmos_std.report import EXIT_FAIL, EXIT_INCOMPLETE, EXIT_KIT_ERROR, EXIT_OK, ConformanceReport

EXIT_MEANING = {EXIT_OK: "conformant to every claimed profile", EXIT_FAIL: "a claimed MUST failed", EXIT_KIT_ERROR: "kit error", EXIT_INCOMPLETE: "a claimed profile is incomplete"}


def summary_lines(report: ConformanceReport) -> list[str]:
    """The two sides at a glance: what OpenAI clients suffer from, and what LLMOS adds."""
    lines: list[str] = []
    level = {r.id: r.level for r in report.requirements}

    def ids(failed: list[str]) -> str:
        return ", ".join(f"{rid} ({level[rid]})" if level.get(rid, "MUST") != "MUST" else rid for rid in failed)

    for side in report.surfaces:
        judged = sum(side.counts.get(v, 0) for v in ("pass", "fail"))
        if side.surface == "openai-wire":
            verdict = "compatible" if not side.failed else f"compatible except {ids(side.failed)}"
            lines.append(f"OpenAI wire ({judged} judged): {verdict}")
        elif side.failed:
            lines.append(f"LLMOS additions: to claim {', '.join(report.target.claimed_profiles)}, add {ids(side.failed)}")
        else:
            lines.append(f"LLMOS additions ({judged} judged): none of those judged is missing")
    for profile in report.profiles:
        if profile.untested:
            lines.append(f"{profile.profile}: incomplete: this kit version cannot check {', '.join(profile.untested)}")
        if profile.unmet_should:
            lines.append(f"{profile.profile}: SHOULD not met: {', '.join(profile.unmet_should)} (conformance stands)")
    return lines
