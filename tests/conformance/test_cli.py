"""Exit codes, settings sources and the registry link, without a server."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from conformance.registry import CHECKS, registry_checks
from conformance.cli import main, settings_from_argv
from conformance.registry import load_checks
from conformance.runner import NOT_IMPLEMENTED, _requirement_result
from conformance.plan import Plan, resolve_openai_base
from llmos_std.requirements import REQUIREMENTS
from tests.support.server import free_port


def _quiet() -> Console:
    return Console(record=True, width=120, file=io.StringIO())


def test_every_implemented_check_is_named_by_the_registry() -> None:
    load_checks()
    named = registry_checks()
    assert CHECKS, "no checks registered"
    for name, spec in CHECKS.items():
        assert name in named
        assert spec.requirements == named[name]


def test_unimplemented_checks_are_reported_untested_never_passed() -> None:
    load_checks()
    plan = Plan("1.0", tuple({r.profile for r in REQUIREMENTS}), None)
    settings = settings_from_argv(["run", "--base-url", "http://127.0.0.1:9"], environ={})
    for req in REQUIREMENTS:
        result = _requirement_result(req, plan, settings, {})
        assert [c.reason for c in result.checks] == [NOT_IMPLEMENTED] * len(req.checks)
        # A self-declared requirement has no check to be missing: skipped and marked, never passed.
        assert result.verdict == ("skipped" if req.self_declared else "untested")
        assert result.self_declared == req.self_declared


def test_core_inference_embeddings_management_packages_checks_are_all_implemented() -> None:
    load_checks()
    profiles = ("core", "inference", "embeddings", "model-management", "model-packages")
    missing = {c for r in REQUIREMENTS if r.profile in profiles for c in r.checks if c not in CHECKS}
    assert missing == set()


# Each row is a different kind of usage or configuration error; all must exit 2, never 0 or 3.
CONFIG_ERRORS = [
    ["run"],  # no target at all
    ["run", "--base-url", "not-a-url"],  # malformed URL
    ["run", "--base-url", "http://127.0.0.1:9", "--requirement", "LLMOS-NOPE-999"],  # unknown requirement id
    ["run", "--base-url", "http://127.0.0.1:9", "--check", "no_such_check"],  # unknown check name
    ["run", "--base-url", "http://127.0.0.1:9", "--model", "chat"],  # --model without CAP=ID
    ["run", "--base-url", "http://127.0.0.1:9", "--max-examples", "0"],  # out of range
    ["run", "--bogus-flag"],  # argparse error
]


def test_config_errors_exit_2() -> None:
    for argv in CONFIG_ERRORS:
        assert main(argv, console=_quiet(), environ={}) == 2, argv


def test_unreachable_base_url_exits_3(tmp_path: Path) -> None:
    port = free_port()
    code = main(["run", "--base-url", f"http://127.0.0.1:{port}", "--json", str(tmp_path / "r.json")], console=_quiet(), environ={})
    assert code == 3
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["exit_code"] == 3 and {r["verdict"] for r in report["requirements"]} == {"kit_error"}


def test_settings_from_file_env_and_flags(tmp_path: Path) -> None:
    config = tmp_path / "target.toml"
    config.write_text('base_url = "http://file.example"\nmax_examples = 7\nseed = 3\nprofiles = ["core"]\n')
    settings = settings_from_argv(["run", "--config", str(config), "--seed", "9"], environ={"LLMOS_MAX_EXAMPLES": "5", "LLMOS_API_KEY": "k"})
    assert settings.base_url == "http://file.example"
    assert settings.max_examples == 5  # environment over file
    assert settings.seed == 9  # flag over everything
    assert settings.api_key is not None and settings.api_key.get_secret_value() == "k"
    assert "k" not in repr(settings.api_key)


# Each row: what a user types as --openai-base-url, and the base the kit sends /v1/... under.
@pytest.mark.parametrize(
    ("given", "resolved"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),  # the origin
        ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000"),  # the OpenAI SDK's base_url form
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000"),  # ...with a trailing slash
        ("http://gw.example/openai/v1", "http://gw.example/openai"),  # a gateway prefix
        ("http://gw.example/v1beta", "http://gw.example/v1beta"),  # not /v1: taken as given
    ],
)
def test_openai_base_url_accepts_the_origin_and_the_sdk_form(given: str, resolved: str) -> None:
    assert resolve_openai_base(given) == resolved
