"""``llmos-conformance matrix``: saved reports and target files in, a requirement x target table out."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from conformance.cli import main
from conformance.matrix import read_targets
from tests.conformance.test_report_snapshots import _report


def _quiet() -> Console:
    return Console(record=True, width=120, file=io.StringIO())


def test_matrix_from_saved_reports_puts_openai_wire_rows_first(tmp_path: Path) -> None:
    one = _report()
    other = one.model_copy(update={"target": one.target.model_copy(update={"implementation": {"name": "other-server", "version": "2"}})})
    paths = []
    for i, report in enumerate((one, other)):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(report.model_dump_json(), encoding="utf-8")
    md, html = tmp_path / "COMPAT.md", tmp_path / "compat.html"
    code = main(["matrix", "--report", str(paths[0]), "--report", str(paths[1]), "--markdown", str(md), "--html", str(html)], console=_quiet(), environ={})
    assert code == 0
    text = md.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| LLMOS-")]
    surfaces = [row.split(" | ")[2] for row in rows]
    assert surfaces == sorted(surfaces, key=lambda s: s != "openai-wire")  # wire rows first
    assert "| llmos-ref | other-server |" in text and "| LLMOS-MOD-002 | MUST | openai-wire | **FAIL** | **FAIL** |" in text
    assert "| LLMOS-TASK-001 |" not in text  # claimed by no target: no row
    assert "## What failed on other-server" in text
    assert html.read_text().startswith("<!DOCTYPE html>") and "<script" not in html.read_text()


def test_targets_file_rows_become_run_settings(tmp_path: Path) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text('[[target]]\nname = "a"\nopenai_base_url = "http://127.0.0.1:9/v1"\nprofiles = ["inference"]\n\n'
                       '[[target]]\nname = "b"\nbase_url = "http://127.0.0.1:9"\nmodels = {chat = "org/name"}\n')
    (a, sa), (b, sb) = read_targets(targets)
    assert (a, sa.openai_base_url, sa.profiles) == ("a", "http://127.0.0.1:9/v1", ["inference"])
    assert (b, sb.models) == ("b", {"chat": "org/name"})


# Each row: a targets file the command must refuse with exit 2 (usage/config error).
BAD_TARGETS = [
    "",  # no [[target]] at all
    '[[target]]\nbase_url = "http://127.0.0.1:9"\n',  # a target without a name
    '[[target]]\nname = "x"\nbase_url = "ftp://nope"\n',  # not an http(s) URL
    "[[target]\n",  # not TOML
]


def test_bad_targets_files_exit_2(tmp_path: Path) -> None:
    for i, text in enumerate(BAD_TARGETS):
        path = tmp_path / f"{i}.toml"
        path.write_text(text)
        assert main(["matrix", "--targets", str(path)], console=_quiet(), environ={}) == 2, text
    assert main(["matrix"], console=_quiet(), environ={}) == 2
