"""JUnit XML: one testsuite per profile, one testcase per requirement and check."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

from llmos_std.report import ConformanceReport


def to_junit(report: ConformanceReport) -> str:
    suites = ET.Element("testsuites", name=f"{report.kit.name} {report.kit.version}")
    for profile in report.profiles:
        reqs = [r for r in report.requirements if r.profile == profile.profile]
        cases = [(r, c) for r in reqs for c in r.checks]
        suite = ET.SubElement(
            suites, "testsuite", name=profile.profile, tests=str(len(cases)),
            failures=str(sum(c.verdict == "fail" for _, c in cases)), errors=str(sum(c.verdict in ("kit_error", "untested") for _, c in cases)),
            skipped=str(sum(c.verdict in ("skipped", "unsupported") for _, c in cases)),
            time=f"{sum(c.duration_ms for _, c in cases) / 1000:.3f}",
        )
        for req, result in cases:
            case = ET.SubElement(suite, "testcase", classname=req.id, name=result.name, time=f"{result.duration_ms / 1000:.3f}")
            if result.verdict == "fail" and result.failures:
                first = result.failures[0]
                node = ET.SubElement(case, "failure", message=f"{req.id}: expected {first.expected} ({result.failure_count} failing)")
                node.text = "\n\n".join(f"seen: {f.seen}\nexample: {f.example}\ncurl: {f.curl}" for f in result.failures)
            elif result.verdict in ("kit_error", "untested"):
                ET.SubElement(case, "error", type=result.verdict, message=result.reason or result.verdict)
            elif result.verdict in ("skipped", "unsupported"):
                ET.SubElement(case, "skipped", message=f"{result.verdict}: {result.reason or ''}")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_junit(report: ConformanceReport, path: Path) -> None:
    path.write_text(to_junit(report), encoding="utf-8")
