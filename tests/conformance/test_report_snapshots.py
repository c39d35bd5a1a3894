"""Snapshot-ish tests of the terminal and JSON forms, with times and ids normalised."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from rich.console import Console

from conformance.report.json import to_json
from conformance.report.junit import to_junit
from conformance.report.terminal import render
from llmos_std.report import CheckResult, ConformanceReport, Failure, KitInfo, ProfileResult, RequirementResult, RunInfo, SurfaceResult, TargetInfo

SNAPSHOTS = Path(__file__).parent / "snapshots"


def _report() -> ConformanceReport:
    failure = Failure(expected="status 404 with code model_not_found", seen="200: b'{...}'", example={"model": "llmos-conformance-abcd1234-absent", "prompt": "hi"},
                      curl="curl -sS -X POST http://127.0.0.1:8400/v1/completions -H 'Authorization: Bearer <redacted>'")
    second = Failure(expected="status 404 with code model_not_found", seen="200: b'{...}'", example={"model": "llmos-conformance-abcd1234-absent@1.0.0", "prompt": "hi"})
    requirements = [
        RequirementResult(id="LLMOS-MOD-002", level="MUST", profile="core", surface="openai-wire", sentence="Unknown models fail with 404.", verdict="fail",
                          checks=[CheckResult(name="unknown_model_404", verdict="fail", examples=3, triggered=1, duration_ms=12, failures=[failure, second], failure_count=3)]),
        RequirementResult(id="LLMOS-ERR-003", level="MUST", profile="core", surface="llmos", sentence="Bad JSON fails with 400.", verdict="pass",
                          checks=[CheckResult(name="malformed_json_400", verdict="pass", examples=10, triggered=10, duration_ms=7)]),
        RequirementResult(id="LLMOS-STRM-005", level="MUST", profile="inference", surface="openai-wire", sentence="Errors after 200 are one event.", verdict="skipped",
                          checks=[CheckResult(name="stream_error_event", verdict="skipped", reason="no stream failed after its 200 status", examples=4)]),
        RequirementResult(id="LLMOS-TASK-001", level="MUST", profile="tasks", surface="llmos", sentence="Tasks.", verdict="unsupported",
                          checks=[CheckResult(name="task_names", verdict="unsupported", reason="profile 'tasks' is not claimed")]),
        RequirementResult(id="LLMOS-INF-011", level="SHOULD", profile="inference", surface="openai-wire", sentence="Temperature 0 SHOULD be greedy.", verdict="fail",
                          checks=[CheckResult(name="temperature_zero_greedy", verdict="fail", failures=[second], failure_count=1)]),
        RequirementResult(id="LLMOS-STRM-006", level="MUST", profile="inference", surface="llmos", sentence="Untested here.", verdict="untested",
                          checks=[CheckResult(name="disconnect_cancels", verdict="untested", reason="this kit version has no check for it")]),
    ]
    return ConformanceReport(
        standard_version="1.0", kit=KitInfo(name="llmos-conformance", version="1.0.0"),
        target=TargetInfo(base_url="http://127.0.0.1:8400", openai_base_url="http://127.0.0.1:8400", implementation={"name": "llmos-ref", "version": "1.0.0"},
                          claimed_profiles=["core", "inference"], models={"chat": "tiny-llama"}),
        run=RunInfo(id="abcd1234", started_at="2025-01-01T00:00:00Z", finished_at="2025-01-01T00:00:09Z", seed=0, max_examples=10, requirement_filter=[], check_filter=[]),
        profiles=[ProfileResult(profile="core", claimed=True, verdict="fail", counts={"pass": 1, "fail": 1}),
                  ProfileResult(profile="inference", claimed=True, verdict="incomplete", counts={"skipped": 1, "fail": 1, "untested": 1},
                                untested=["LLMOS-STRM-006"], unmet_should=["LLMOS-INF-011"]),
                  ProfileResult(profile="tasks", claimed=False, verdict="unsupported", counts={"unsupported": 1})],
        surfaces=[SurfaceResult(surface="openai-wire", counts={"fail": 2, "skipped": 1}, failed=["LLMOS-MOD-002", "LLMOS-INF-011"]),
                  SurfaceResult(surface="llmos", counts={"pass": 1, "untested": 1}, failed=[])],
        requirements=requirements, counts={"pass": 1, "fail": 2, "untested": 1, "skipped": 1, "unsupported": 1, "kit_error": 0}, exit_code=1,
    )


def _normalise(text: str) -> str:
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<time>", text)
    text = re.sub(r"llmos-conformance-[0-9a-f]{8}", "llmos-conformance-<run>", text)
    return re.sub(r"\"duration_ms\": \d+", '"duration_ms": <ms>', text)


def _matches(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if not path.exists():  # first run writes the snapshot; review it like code
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_terminal_snapshot() -> None:
    console = Console(record=True, width=110, file=io.StringIO(), color_system=None)
    render(_report(), console)
    _matches("terminal.txt", _normalise(console.export_text()))


def test_json_snapshot_validates_and_is_stable() -> None:
    text = to_json(_report())
    json.loads(text)
    _matches("report.json", _normalise(text))


def test_junit_counts() -> None:
    xml = to_junit(_report())
    assert 'name="core" tests="2" failures="1"' in xml and "<skipped" in xml
