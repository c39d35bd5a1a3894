"""The committed spec/ is exactly what `llmos-std export` generates now."""

from __future__ import annotations

from pathlib import Path

from llmos_std.export import generated_files

SPEC = Path(__file__).resolve().parent.parent / "spec"


def test_committed_spec_equals_a_fresh_export() -> None:
    fresh = generated_files(SPEC / "src")
    drifted = [rel for rel, content in fresh.items() if not (SPEC / rel).is_file() or (SPEC / rel).read_text(encoding="utf-8") != content]
    assert drifted == [], f"spec/ is stale for {drifted}: run `llmos-std export spec/`"


def test_no_stale_generated_schema_is_committed() -> None:
    fresh = set(generated_files(SPEC / "src"))
    committed = {f"schemas/{p.name}" for p in (SPEC / "schemas").glob("*.json")}
    assert committed <= fresh


def test_export_is_deterministic() -> None:
    assert generated_files(SPEC / "src") == generated_files(SPEC / "src")
