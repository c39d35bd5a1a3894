"""TypeScript types generated from spec/openapi.json by openapi-typescript: `tsc --strict` type-checks the
example program in clients/typescript/, which then runs against the reference server with Node's fetch."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reference_impl.settings import Settings
from tests.support.server import running_server

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "clients" / "typescript"
KEY = "llmos-ts-key-0123456789abcdef"


def _run(*args: str, timeout: int = 300) -> str:
    result = subprocess.run(list(args), cwd=PROJECT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("npm") is None or shutil.which("node") is None, reason="needs Node.js and npm (Debian packages nodejs, npm)")
def test_generated_types_check_strictly_and_the_example_runs(tmp_path: Path, tiny_llama_dir: Path, tiny_bert_dir: Path) -> None:
    _run("npm", "ci", "--no-audit", "--no-fund")
    generated = _run("npx", "openapi-typescript", "../../spec/openapi.json", "-o", "src/llmos.ts")
    assert "warn" not in generated.lower(), generated
    _run("npx", "tsc", "--noEmit", "--strict", "-p", ".")
    _run("npx", "tsc", "-p", ".")
    with running_server(Settings(data_dir=tmp_path / "data", models=[tiny_llama_dir, tiny_bert_dir], api_keys=[KEY])) as srv:
        output = _run("node", "dist/example.js", srv.base_url, KEY, timeout=120)
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 8 and all(line.startswith("ok ") for line in lines), output
