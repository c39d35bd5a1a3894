"""A self-contained HTML page (inline CSS, no scripts, no external resources)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from llmos_std.report import ConformanceReport

from conformance.report.summary import summary_lines

_CSS = """body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;width:100%;margin-bottom:2em}
td,th{border:1px solid #ddd;padding:4px 8px;vertical-align:top;text-align:left}.pass{color:#186a3b}.fail{color:#b03a2e;font-weight:bold}
.skipped,.unsupported{color:#7f8c8d}.untested,.incomplete{color:#8e44ad;font-weight:bold}.kit_error{color:#af601a;font-weight:bold}pre{white-space:pre-wrap;background:#f6f6f6;padding:6px;margin:4px 0}"""


def to_html(report: ConformanceReport) -> str:
    impl = report.target.implementation or {}
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>LLMOS conformance: {escape(impl.get('name', report.target.openai_base_url))}</title><style>{_CSS}</style></head><body>",
        f"<h1>LLMOS {escape(report.standard_version)} conformance report</h1>",
        f"<p>Target {escape(report.target.base_url or report.target.openai_base_url)} ({escape(' '.join(f'{k} {v}' for k, v in impl.items()))}); "
        f"kit {escape(report.kit.name)} {escape(report.kit.version)}; run {escape(report.run.id)} at {escape(report.run.started_at)}; "
        f"exit code {report.exit_code}.</p>",
        "".join(f"<p>{escape(line)}</p>" for line in summary_lines(report)),
        "<h2>Profiles</h2><table><tr><th>profile</th><th>claimed</th><th>verdict</th><th>counts</th></tr>",
    ]
    for p in report.profiles:
        counts = ", ".join(f"{k} {v}" for k, v in p.counts.items() if v)
        parts.append(f"<tr><td>{escape(p.profile)}</td><td>{'yes' if p.claimed else 'no'}</td><td class='{p.verdict}'>{p.verdict}</td><td>{escape(counts)}</td></tr>")
    parts.append("</table><h2>Requirements</h2><table><tr><th>id</th><th>level</th><th>surface</th><th>verdict</th><th>requirement</th><th>checks</th></tr>")
    for r in report.requirements:
        cells = []
        for c in r.checks:
            line = f"<div><span class='{c.verdict}'>{escape(c.name)}: {c.verdict}</span> ({c.triggered}/{c.examples} triggered)"
            if c.reason:
                line += f" — {escape(c.reason)}"
            if c.failure_count > 1:
                line += f" — {c.failure_count} failing examples, {len(c.failures)} shown"
            for f in c.failures:
                line += (f"<pre>expected: {escape(f.expected)}\nseen: {escape(f.seen)}\n"
                         f"example: {escape(str(f.example))}\n{escape(f.curl or '')}</pre>")
            cells.append(line + "</div>")
        parts.append(f"<tr><td>{escape(r.id)}</td><td>{r.level}</td><td>{r.surface}</td><td class='{r.verdict}'>{r.verdict}</td><td>{escape(r.sentence)}</td><td>{''.join(cells)}</td></tr>")
    parts.append("</table></body></html>\n")
    return "".join(parts)


def write_html(report: ConformanceReport, path: Path) -> None:
    path.write_text(to_html(report), encoding="utf-8")
