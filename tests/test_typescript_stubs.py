"""TypeScript types generated from spec/openapi.json by openapi-typescript: `tsc --strict` type-checks the
example program in clients/typescript/, which then calls every operation on the reference server with Node's fetch."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from llmos_std.operations import OPERATIONS
from llmos_std.packing import pack
from llmos_std.signing import generate_key_pair, sign_package
from llmos_std.verification import MANIFEST_NAME
from reference_impl.bootstrap import source_for
from reference_impl.settings import Settings
from tests.support.server import running_server

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "clients" / "typescript"
KEY = "llmos-ts-key-0123456789abcdef"
SKIPPED: set[str] = set()
"""Operations the example only builds: none, since a server with keys requires signatures and so claims security-strict."""


def _run(*args: str, timeout: int = 300) -> str:
    result = subprocess.run(list(args), cwd=PROJECT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def _signed_next_version(model_dir: Path, out: Path) -> tuple[Path, Path]:
    """Version 1.0.1 of the model the server installs from ``model_dir`` (as 1.0.0), signed by a new key.

    The example trusts the key through the API before installing; signing stays in Python because the
    model-signing bundle format has no TypeScript implementation. Returns the package dir and the public PEM.
    """
    package, private = out / "package", out / "signer.pem"
    pack(model_dir, name=source_for(model_dir).name, version="1.0.1", out=package, default_license="NOASSERTION")
    manifest = json.loads((package / MANIFEST_NAME).read_text(encoding="utf-8"))
    public = generate_key_pair(private)
    signature = sign_package(manifest, {f["path"]: package / f["path"] for f in manifest["files"]}, private)
    (package / MANIFEST_NAME).write_text(json.dumps({**manifest, "signatures": [signature]}), encoding="utf-8")
    (out / "signer.pub.pem").write_bytes(public)
    return package, out / "signer.pub.pem"


@pytest.mark.skipif(shutil.which("npm") is None or shutil.which("node") is None, reason="needs Node.js and npm (Debian packages nodejs, npm)")
def test_generated_types_check_strictly_and_the_example_calls_every_operation(tmp_path: Path, tiny_llama_dir: Path, tiny_bert_dir: Path) -> None:
    _run("npm", "ci", "--no-audit", "--no-fund")
    # As package.json's `generate`. --default-non-nullable false: fields with a default (TaskRequest.temperature,
    # QueryRequest.limit) stay optional, as the document says. --empty-objects-unknown: `{"type": "object"}` is
    # any object (Record<string, unknown>), not one without properties (Record<string, never>).
    generated = _run("npx", "openapi-typescript", "../../spec/openapi.json", "-o", "src/llmos.ts",
                     "--default-non-nullable", "false", "--empty-objects-unknown")
    assert "warn" not in generated.lower(), generated
    _run("npx", "tsc", "--noEmit", "--strict", "-p", ".")
    _run("npx", "tsc", "-p", ".")
    package, signer = _signed_next_version(tiny_llama_dir, tmp_path)
    with running_server(Settings(data_dir=tmp_path / "data", models=[tiny_llama_dir, tiny_bert_dir], api_keys=[KEY])) as srv:
        output = _run("node", "dist/example.js", srv.base_url, KEY, str(package), str(signer), timeout=180)
    lines = [line for line in output.splitlines() if line.strip()]
    assert all(line.startswith(("ok ", "skip ")) for line in lines), output  # no FAIL, nothing else
    reported = [line.split()[1] for line in lines]
    assert sorted(reported) == sorted(op.id for op in OPERATIONS), output  # every operation, each exactly once
    assert {line.split()[1] for line in lines if line.startswith("skip ")} == SKIPPED, output
