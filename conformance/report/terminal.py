"""The rich terminal view: a progress bar while checks run, a table per profile, then every failure."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from llmos_std.report import ConformanceReport

from conformance.runner import Progress as ProgressFn

STYLE = {"pass": "green", "fail": "bold red", "skipped": "dim", "unsupported": "dim", "kit_error": "bold yellow"}


@contextmanager
def progress_bar(console: Console) -> Iterator[ProgressFn]:
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), console=console, transient=True) as bar:
        task = bar.add_task("checks", total=None)

        def update(name: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=name or "done")

        yield update


def render(report: ConformanceReport, console: Console) -> None:
    impl = report.target.implementation or {}
    console.print(f"[bold]LLMOS {report.standard_version} conformance[/] — {impl.get('name', '?')} {impl.get('version', '')} at {report.target.base_url or report.target.openai_base_url}")
    console.print(f"claimed: {', '.join(report.target.claimed_profiles) or '(none)'}; models: {', '.join(f'{k}={v}' for k, v in report.target.models.items()) or '(none)'}")
    for profile in report.profiles:
        if not profile.claimed:
            console.print(f"[dim]{profile.profile}: not claimed (unsupported)[/]")
            continue
        table = Table(title=f"{profile.profile} ({'claimed' if profile.claimed else 'not claimed'}): {profile.verdict}", title_justify="left")
        table.add_column("requirement")
        table.add_column("level")
        table.add_column("verdict")
        table.add_column("checks")
        for req in (r for r in report.requirements if r.profile == profile.profile):
            checks = "; ".join(f"{c.name} {c.verdict}" + (f" ({c.triggered}/{c.examples})" if c.examples else "") + (f": {c.reason}" if c.reason else "") for c in req.checks)
            table.add_row(req.id, req.level, f"[{STYLE[req.verdict]}]{req.verdict}[/]", checks)
        console.print(table)
    for req in report.requirements:
        for c in req.checks:
            if c.failure is None:
                continue
            console.print(f"[bold red]FAIL[/] {req.id} ({c.name}): {req.sentence}", highlight=False)
            console.print(f"  expected: {c.failure.expected}", highlight=False, markup=False)
            console.print(f"  seen:     {c.failure.seen}", highlight=False, markup=False)
            console.print(f"  example:  {json.dumps(c.failure.example)}", highlight=False, markup=False)
            if c.failure.curl:
                console.print(f"  {c.failure.curl}", highlight=False, markup=False, soft_wrap=True)
    counts = ", ".join(f"{k} {v}" for k, v in report.counts.items() if v)
    console.print(f"requirements: {counts}; exit code {report.exit_code}")
