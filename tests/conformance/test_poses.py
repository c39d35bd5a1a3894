"""Whole kinds of server: a plain OpenAI-compatible one, and one that claims more than the kit can check."""

from __future__ import annotations

import pytest

from pathlib import Path

from conformance.config import KitSettings
from conformance.runner import run
from llmos_std.requirements import REQUIREMENTS
from reference_impl.settings import Settings
from tests.conformance.faulty.defects import POSE_ORG
from tests.conformance.faulty.server import faulty_server

# LLMOS additions a plain OpenAI server cannot have: discovery, health, the model fields, digests.
MISSING_ADDITIONS = {"LLMOS-DISC-001", "LLMOS-DISC-003", "LLMOS-HLTH-001", "LLMOS-MOD-001", "LLMOS-INF-007", "LLMOS-EMB-006"}


def test_a_correct_plain_openai_server_fails_only_llmos_additions(tmp_path: Path, tiny_llama_dir: Path, tiny_bert_dir: Path) -> None:
    with faulty_server(Settings(insecure_local=True, data_dir=tmp_path, models=[tiny_llama_dir, tiny_bert_dir])) as srv:
        srv.switch.active = "plain_openai"
        settings = KitSettings(openai_base_url=f"{srv.base_url}/v1", profiles=["inference", "embeddings"],
                               max_examples=3, generation_examples=2, max_tokens=8, quiet=True)
        report = run(settings)
        asked = list(srv.switch.models_asked)
    # The SDK form .../v1 is taken back to the base; ids with "/" are tested as listed, capabilities probed.
    assert report.target.openai_base_url == srv.base_url and report.target.openai_base_url_given == f"{srv.base_url}/v1"
    assert report.target.models == {"text-generation": f"{POSE_ORG}/tiny-llama", "chat": f"{POSE_ORG}/tiny-llama", "embeddings": f"{POSE_ORG}/tiny-bert"}
    assert set(report.target.model_sources.values()) == {"probed"}
    verdicts = {r.id: r for r in report.requirements}
    wire_fails = {r.id: [f.seen for c in r.checks for f in c.failures] for r in report.requirements if r.surface == "openai-wire" and r.verdict == "fail"}
    assert wire_fails == {}
    assert [r.id for r in report.requirements if r.verdict == "kit_error"] == []
    llmos_fails = {r.id for r in report.requirements if r.surface == "llmos" and r.verdict == "fail"}
    assert MISSING_ADDITIONS <= llmos_fails
    # Capability gating is never held against a server that had no way to declare capabilities.
    for rid in ("LLMOS-INF-012", "LLMOS-PARAM-002", "LLMOS-EMB-004"):
        assert verdicts[rid].verdict == "skipped", (rid, verdicts[rid].checks)
    assert {s.surface: s.failed for s in report.surfaces}["openai-wire"] == []
    # No request carried a rendering of a missing value.
    assert asked and not [m for m in asked if "None" in m or "null" in m]
    assert report.exit_code == 1


def test_an_overclaiming_server_is_incomplete_never_passed(tmp_path: Path, tiny_llama_dir: Path, tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A kit that cannot check one MUST of a claimed profile (here: its check withdrawn) never calls the profile passed.
    from conformance.registry import CHECKS, load_checks

    load_checks()
    monkeypatch.delitem(CHECKS, "task_names")
    chosen = [r.id for r in REQUIREMENTS if r.profile == "tasks"] + ["LLMOS-DISC-001"]
    with faulty_server(Settings(insecure_local=True, data_dir=tmp_path, models=[tiny_llama_dir, tiny_bert_dir])) as srv:
        srv.switch.active = "overclaiming_discovery"
        report = run(KitSettings(base_url=srv.base_url, requirements=chosen, quiet=True, max_examples=2, max_tokens=4))
        # The same keyless server also claims the security profiles: those the kit can check, and they fail.
        security = run(KitSettings(base_url=srv.base_url, requirements=["LLMOS-SEC-001"], quiet=True))
    profiles = {p.profile: p for p in report.profiles}
    assert profiles["tasks"].claimed and profiles["tasks"].verdict == "incomplete"
    assert profiles["tasks"].untested == ["LLMOS-TASK-001"]
    assert profiles["core"].verdict == "pass"
    assert report.exit_code == 4
    assert {r.id: r.verdict for r in security.requirements if r.verdict != "unsupported"} == {"LLMOS-SEC-001": "fail"}
    assert security.exit_code == 1
