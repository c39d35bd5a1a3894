"""The kit runs green against the reference server on tiny models and writes all four report forms."""

from __future__ import annotations

import io
import json
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
from rich.console import Console

from conformance.cli import main
from llmos_std.export import schema_files
from reference_impl.settings import Settings
from tests.support.server import free_port, running_server

KEY = "llmos-test-key-0123456789abcdef"


def test_reference_server_passes_everything_it_claims(tmp_path: Path, tiny_llama_dir: Path, tiny_bert_dir: Path) -> None:
    out = tmp_path / "reports"
    out.mkdir()
    console = Console(record=True, width=140, file=io.StringIO())
    with running_server(Settings(data_dir=tmp_path / "data", models=[tiny_llama_dir, tiny_bert_dir], api_keys=[KEY])) as srv:
        code = main(
            ["run", "--base-url", srv.base_url, "--api-key", KEY, "--admin-key", KEY, "--callback-url", f"http://127.0.0.1:{free_port()}", "--max-examples", "4", "--json", str(out / "r.json"), "--junit", str(out / "r.xml"), "--html", str(out / "r.html")],
            console=console, environ={},
        )
    report = json.loads((out / "r.json").read_text())
    jsonschema.Draft202012Validator(schema_files()["ConformanceReport.json"]).validate(report)
    claimed = set(report["target"]["claimed_profiles"])
    assert {"core", "inference", "embeddings", "security-baseline", "security-standard"} <= claimed
    bad = {r["id"]: [(c["name"], c["verdict"], c["reason"], c["failures"]) for c in r["checks"]] for r in report["requirements"] if r["profile"] in claimed and r["verdict"] not in ("pass", "skipped")}
    assert bad == {}
    for req in report["requirements"]:
        for c in req["checks"]:
            if c["verdict"] == "skipped":
                assert c["reason"], (req["id"], c["name"])
    assert code == 0
    ET.parse(out / "r.xml")
    html = (out / "r.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html and "LLMOS-INF-004" in html
