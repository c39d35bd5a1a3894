"""The rich terminal view: a progress bar while checks run, a table per profile, then every failure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from llmos_std.report import CheckResult, ConformanceReport

from conformance.report.summary import EXIT_MEANING, summary_lines
from conformance.runner import Progress as ProgressFn

STYLE = {"pass": "green", "fail": "bold red", "untested": "bold magenta", "skipped": "dim", "unsupported": "dim", "kit_error": "bold yellow"}


@contextmanager
def progress_bar(console: Console) -> Iterator[ProgressFn]:
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), console=console, transient=True) as bar:
        task = bar.add_task("checks", total=None)

        def update(name: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=name or "done")

        yield update


def render(report: ConformanceReport, console: Console) -> None:
    impl = report.target.implementation or {}
    target = report.target
    console.print(f"[bold]LLMOS {report.standard_version} conformance[/] — {impl.get('name', '?')} {impl.get('version', '')} at {target.base_url or target.openai_base_url}", highlight=False)
    given = target.openai_base_url_given
    resolved = f"{target.openai_base_url}/v1/..." + (f" (--openai-base-url {given} resolved to {target.openai_base_url})" if given and given.rstrip("/") != target.openai_base_url else "")
    console.print(f"OpenAI routes: {resolved}", highlight=False, markup=False)
    models = ", ".join(f"{k}={v}" + (f" ({target.model_sources[k]})" if k in target.model_sources else "") for k, v in target.models.items()) or "(none)"
    console.print(f"claimed: {', '.join(target.claimed_profiles) or '(none)'}; models: {models}", highlight=False, markup=False)
    for profile in report.profiles:
        if not profile.claimed:
            console.print(f"[dim]{profile.profile}: not claimed (unsupported)[/]")
            continue
        table = Table(title=f"{profile.profile} (claimed): {profile.verdict}", title_justify="left")
        table.add_column("requirement")
        table.add_column("level")
        table.add_column("surface")
        table.add_column("verdict")
        table.add_column("checks")
        for req in (r for r in report.requirements if r.profile == profile.profile):
            cell = "self-declared: not observable over HTTP; the vendor declares it" if req.self_declared else "; ".join(_check_cell(c) for c in req.checks)
            table.add_row(req.id, req.level, req.surface, f"[{STYLE[req.verdict]}]{req.verdict}[/]", cell)
        console.print(table)
    for req in report.requirements:
        for c in req.checks:
            if not c.failures:
                continue
            shown = f" — {c.failure_count} failing examples, {len(c.failures)} shown" if c.failure_count > 1 else ""
            console.print(f"[bold red]FAIL[/] {req.id} ({c.name}){shown}: {req.sentence}", highlight=False)
            for n, failure in enumerate(c.failures, 1):
                lead = f"  {n}. " if len(c.failures) > 1 else "  "
                console.print(f"{lead}expected: {failure.expected}", highlight=False, markup=False)
                console.print(f"{' ' * len(lead)}seen:     {failure.seen}", highlight=False, markup=False)
                console.print(f"{' ' * len(lead)}example:  {json.dumps(failure.example)}", highlight=False, markup=False)
                if failure.curl:
                    console.print(f"{' ' * len(lead)}{failure.curl}", highlight=False, markup=False, soft_wrap=True)
    for line in summary_lines(report):
        console.print(line, highlight=False, markup=False)
    counts = ", ".join(f"{k} {v}" for k, v in report.counts.items() if v)
    console.print(f"requirements: {counts}; exit code {report.exit_code} ({EXIT_MEANING.get(report.exit_code, '?')})", highlight=False)


def _check_cell(c: CheckResult) -> str:
    text = f"{c.name} {c.verdict}" + (f" ({c.triggered}/{c.examples})" if c.examples else "")
    if c.failure_count > 1:
        text += f" [{c.failure_count} failing]"
    return text + (f": {c.reason}" if c.reason else "")
