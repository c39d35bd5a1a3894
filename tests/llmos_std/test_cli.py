"""The ``llmos-std`` console script: output, exit codes (0 ok, 1 failed check, 2 usage) and no tracebacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llmos_std.cli import main
from llmos_std.verification import MANIFEST_NAME, validate

REPO = Path(__file__).parents[2]


def _run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _normalise(text: str, *paths: Path) -> str:
    """Pin output shape: digests and temporary paths vary per run."""
    for index, path in enumerate(paths):
        text = text.replace(str(path), f"<path{index}>")
    return re.sub(r"sha256:[0-9a-f]{64}", "sha256:<digest>", text)


def _pack(capsys: pytest.CaptureFixture[str], source: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return _run(capsys, "pack", source, "--name", "tiny", "--version", "1.0.0", "--out", out, *extra)


def test_pack_verify_validate_digest(capsys: pytest.CaptureFixture[str], tiny_llama_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    code, stdout, stderr = _pack(capsys, tiny_llama_dir, out, "--license", "MIT")
    digest = validate(out).digest()
    assert (code, stdout, stderr) == (0, f"{out}\n{digest}\n", "")

    assert _run(capsys, "verify", out) == (0, f"OK {digest}\n", "")
    assert _run(capsys, "digest", out / MANIFEST_NAME) == (0, f"{digest}\n", "")
    assert _run(capsys, "validate", out / MANIFEST_NAME) == (0, f"OK tiny@1.0.0 {digest}\n", "")


def test_pack_twice_prints_the_same_digest(capsys: pytest.CaptureFixture[str], tiny_llama_dir: Path, tmp_path: Path) -> None:
    first = _pack(capsys, tiny_llama_dir, tmp_path / "a", "--license", "MIT")[1].splitlines()[1]
    second = _pack(capsys, tiny_llama_dir, tmp_path / "b", "--license", "MIT")[1].splitlines()[1]
    assert first == second


def test_verify_failure_names_the_file(capsys: pytest.CaptureFixture[str], tiny_llama_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    _pack(capsys, tiny_llama_dir, out, "--license", "MIT")
    weights = out / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    code, stdout, stderr = _run(capsys, "verify", out)
    assert code == 1
    assert stdout == ""
    assert _normalise(stderr) == (
        "model.safetensors: digest sha256:<digest>, manifest says sha256:<digest> [digest_invalid]\n"
        "error: verification failed: 1 problem(s)\n"
    )


def test_pickle_needs_allow_pickle(capsys: pytest.CaptureFixture[str], llama_copy: Path, tmp_path: Path) -> None:
    (llama_copy / "model.safetensors").unlink()
    torch.save({"weight": torch.zeros(2)}, llama_copy / "pytorch_model.bin")
    code, stdout, stderr = _pack(capsys, llama_copy, tmp_path / "refused", "--license", "MIT")
    assert (code, stdout) == (1, "")
    assert "pytorch_model.bin" in stderr and "--allow-pickle" in stderr
    code, _, _ = _pack(capsys, llama_copy, tmp_path / "pkg", "--license", "MIT", "--allow-pickle")
    assert code == 0
    assert json.loads((tmp_path / "pkg" / MANIFEST_NAME).read_text())["format"] == "pytorch-pickle"


def test_pack_without_license_asks_for_it(capsys: pytest.CaptureFixture[str], tiny_llama_dir: Path, tmp_path: Path) -> None:
    code, stdout, stderr = _pack(capsys, tiny_llama_dir, tmp_path / "pkg")
    assert (code, stdout) == (1, "")
    assert stderr == (
        "license: none found in the source; pass --license SPDX-ID [manifest_invalid]\n"
        "error: pack failed: manifest_invalid\n"
    )


def test_validate_hostile_manifest(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    manifest = {
        "schema_version": "1",
        "name": "tiny",
        "version": "1.0.0",
        "kind": "causal-lm",
        "architecture": "llama",
        "format": "gguf",
        "files": [{"path": "../x", "digest": "sha256:" + "0" * 64, "size": 1, "role": "weights"}],
        "capabilities": ["text-generation"],
        "context_length": {"value": 1, "source": "gguf"},
        "license": "MIT",
    }
    path = tmp_path / "m.json"
    path.write_text(json.dumps(manifest))
    code, stdout, stderr = _run(capsys, "validate", path)
    assert (code, stdout) == (1, "")
    assert stderr == (
        "files.0.path: path must be normalised: no empty, '.' or '..' segments [path_invalid]\n"
        "error: validate failed: path_invalid\n"
    )
    path.write_text("{")
    code, _, stderr = _run(capsys, "digest", path)
    assert code == 1
    assert "m.json: not valid JSON" in stderr


@pytest.mark.parametrize(
    "argv",
    [
        [],  # no subcommand
        ["frobnicate"],  # unknown subcommand
        ["pack", "somewhere", "--version", "1.0.0"],  # --name is required
        ["verify"],  # missing PACKAGE_DIR
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, stdout, stderr = _run(capsys, *argv)
    assert (code, stdout) == (2, "")
    assert "usage: llmos-std" in stderr


@pytest.mark.parametrize("command", ["verify", "validate", "digest"])
def test_missing_path_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path, command: str) -> None:
    missing = tmp_path / "nope"
    assert _run(capsys, command, missing) == (2, "", f"error: {missing}: no such file or directory\n")


def test_pack_missing_source_and_busy_output(capsys: pytest.CaptureFixture[str], tiny_llama_dir: Path, tmp_path: Path) -> None:
    code, _, stderr = _pack(capsys, tmp_path / "nope", tmp_path / "pkg", "--license", "MIT")
    assert (code, stderr) == (2, f"error: {tmp_path / 'nope'}: no such file or directory\n")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    code, _, stderr = _pack(capsys, tiny_llama_dir, tmp_path / "busy", "--license", "MIT")
    assert (code, stderr) == (2, f"error: {tmp_path / 'busy'}: already exists and is not an empty directory\n")


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = _run(capsys, "pack", "--help")
    assert code == 0
    assert "--allow-pickle" in stdout


def test_export_writes_the_spec(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, stdout, stderr = _run(capsys, "export", tmp_path / "spec", "--templates", REPO / "spec" / "src")
    assert (code, stderr) == (0, "")
    assert stdout.startswith("wrote ")
    assert (tmp_path / "spec" / "openapi.json").is_file()


def test_export_with_missing_templates_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, stderr = _run(capsys, "export", tmp_path / "spec", "--templates", tmp_path / "nope")
    assert (code, stderr) == (2, f"error: {tmp_path / 'nope'}: no such file or directory\n")


def test_console_entry_point_prints_no_traceback(tmp_path: Path) -> None:
    manifest = tmp_path / MANIFEST_NAME
    manifest.write_text('{"schema_version": "1"}')
    result = subprocess.run(
        [sys.executable, "-m", "llmos_std.cli", "validate", str(manifest)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == "error: validate failed: manifest_invalid"
    assert "name: Field required [manifest_invalid]" in result.stderr
