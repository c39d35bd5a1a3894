"""``llmos-conformance run``: flags, config file and ``LLMOS_*`` variables -> one run -> reports and an exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from llmos_std.profiles import PROFILES
from llmos_std.report import EXIT_KIT_ERROR, EXIT_USAGE

from conformance import KIT_NAME, KIT_VERSION
from conformance.config import KitSettings, load_settings, parse_models
from conformance.verdicts import ConfigError, KitError



class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        raise ConfigError(message)


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog=KIT_NAME, description="Test an LLMOS endpoint against the requirements of the profiles it claims.")
    top.add_argument("--version", action="version", version=f"{KIT_NAME} {KIT_VERSION}")
    sub = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run the kit against a target")
    run.add_argument("--base-url", help="origin serving /.well-known/llmos")
    run.add_argument("--openai-base-url", help="where /v1/... lives (a server without discovery)")
    run.add_argument("--api-key")
    run.add_argument("--admin-key")
    run.add_argument("--profile", dest="profiles", action="append", choices=PROFILES, default=[])
    run.add_argument("--model", dest="models", action="append", default=[], metavar="CAP=ID")
    run.add_argument("--mm-model", help="a model with two versions for model-management, when the target does not claim model-packages")
    run.add_argument("--callback-url", help="a URL on this machine the target can reach; the kit listens there and expects no connection (LLMOS-SEC-006)")
    run.add_argument("--requirement", dest="requirements", action="append", default=[], metavar="ID")
    run.add_argument("--check", dest="checks", action="append", default=[], metavar="NAME")
    run.add_argument("--max-examples", type=int)
    run.add_argument("--seed", type=int)
    run.add_argument("--json", dest="json_report", type=Path)
    run.add_argument("--junit", type=Path)
    run.add_argument("--html", type=Path)
    run.add_argument("--config", type=Path, help="JSON or TOML file with the same settings")
    run.add_argument("--quiet", action="store_true", default=None)
    matrix = sub.add_parser("matrix", help="run several targets and render a requirement x target table")
    matrix.add_argument("--targets", type=Path, help="TOML file of [[target]] tables: name plus the settings of run")
    matrix.add_argument("--report", dest="reports", action="append", default=[], type=Path, metavar="JSON", help="a saved report to include (repeatable)")
    matrix.add_argument("--markdown", type=Path, help="write the table as Markdown (e.g. conformance/COMPAT.md)")
    matrix.add_argument("--html", type=Path)
    matrix.add_argument("--json-dir", type=Path, help="also write each target's full report here")
    matrix.add_argument("--title", default="LLMOS conformance matrix")
    return top


def settings_from_argv(argv: Sequence[str] | None, environ: dict[str, str] | None = None) -> KitSettings:
    args = parser().parse_args(argv)
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    flags["models"] = parse_models(args.models)
    return load_settings(flags, config_file=args.config, environ=environ)


def matrix_main(args: argparse.Namespace, console: Console) -> int:
    from conformance.matrix import read_report, read_targets, run_targets, to_html, to_markdown
    from conformance.runner import run

    columns = [read_report(path) for path in args.reports]
    if args.targets is not None:
        columns += run_targets(read_targets(args.targets), run)
    if not columns:
        raise ConfigError("give --targets FILE or at least one --report JSON")
    if args.json_dir is not None:
        args.json_dir.mkdir(parents=True, exist_ok=True)
        for i, column in enumerate(columns):
            (args.json_dir / f"{i + 1:02d}.json").write_text(column.report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    markdown = to_markdown(columns, title=args.title)
    if args.markdown is not None:
        args.markdown.write_text(markdown, encoding="utf-8")
    if args.html is not None:
        args.html.write_text(to_html(columns, title=args.title), encoding="utf-8")
    if args.markdown is None and args.html is None:
        console.print(markdown, markup=False, highlight=False, soft_wrap=True)
    return 0


def main(argv: Sequence[str] | None = None, *, console: Console | None = None, environ: dict[str, str] | None = None) -> int:
    from conformance.report.html import write_html
    from conformance.report.json import write_json
    from conformance.report.junit import write_junit
    from conformance.report.terminal import progress_bar, render
    from conformance.runner import run

    console = console or Console(stderr=False)
    try:
        args = parser().parse_args(argv)
        if args.command == "matrix":
            return matrix_main(args, console)
        settings = settings_from_argv(argv, environ)
        if settings.quiet:
            report = run(settings)
        else:
            with progress_bar(console) as progress:
                report = run(settings, progress=progress)
        if not settings.quiet:
            render(report, console)
        if settings.json_report:
            write_json(report, settings.json_report)
        if settings.junit:
            write_junit(report, settings.junit)
        if settings.html:
            write_html(report, settings.html)
    except ConfigError as exc:
        console.print(f"[bold red]configuration error:[/] {exc}", highlight=False)
        return EXIT_USAGE
    except KitError as exc:
        console.print(f"[bold yellow]kit error:[/] {exc}", highlight=False)
        return EXIT_KIT_ERROR
    return report.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
