"""Package signatures (spec 07-packages, Signatures): what is signed, what breaks it, and the CLI that adds one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmos_std.cli import main
from llmos_std.errors import LLMOSError
from llmos_std.packing import pack
from llmos_std.signing import generate_key_pair, public_key_of, sign_package, signer_key_id, verify_package
from llmos_std.verification import MANIFEST_NAME, validate


@pytest.fixture()
def package_dir(tmp_path: Path, tiny_llama_dir: Path) -> Path:
    out = tmp_path / "pkg"
    pack(tiny_llama_dir, name="tiny", version="1.0.0", out=out, license="Apache-2.0")
    return out


def _files(package_dir: Path) -> dict[str, Path | bytes]:
    return {e.path: package_dir / e.path for e in validate(package_dir).files}


def _code(manifest: dict[str, object], files: dict[str, Path | bytes], trusted: dict[str, bytes]) -> str:
    try:
        verify_package(manifest, files, trusted)
    except LLMOSError as exc:
        return exc.code
    return "verified"


def test_the_cli_signs_without_changing_the_digest_and_the_signature_verifies(package_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = validate(package_dir).digest()
    assert main(["keygen", str(tmp_path / "me.pem")]) == 0
    assert main(["sign", str(package_dir), "--key", str(tmp_path / "me.pem")]) == 0
    manifest = json.loads((package_dir / MANIFEST_NAME).read_text())
    assert validate(package_dir).digest() == before
    public = (tmp_path / "me.pub.pem").read_bytes()
    assert manifest["signatures"][0]["key_id"] == signer_key_id(public) in capsys.readouterr().out
    assert _code(manifest, _files(package_dir), {signer_key_id(public): public}) == "verified"


# Each row: one way a signed package is tampered with or mis-signed, and the refusal code it must get.
def test_each_kind_of_bad_signature_has_its_code(package_dir: Path, tmp_path: Path) -> None:
    mine, theirs = tmp_path / "mine.pem", tmp_path / "theirs.pem"
    generate_key_pair(mine)
    generate_key_pair(theirs)
    trusted = {signer_key_id(public_key_of(mine)): public_key_of(mine)}
    manifest = json.loads((package_dir / MANIFEST_NAME).read_text())
    files = _files(package_dir)
    good = sign_package(manifest, files, mine)
    weights = next(e.path for e in validate(package_dir).files if e.role == "weights")
    forged = {**sign_package(manifest, files, theirs), "key_id": good["key_id"]}
    rows = [
        ({**manifest, "signatures": []}, files, "signature_required"),
        ({**manifest, "signatures": [sign_package(manifest, files, theirs)]}, files, "untrusted_signer"),
        ({**manifest, "signatures": [forged]}, files, "signature_mismatch"),  # claims a trusted key_id
        ({**manifest, "signatures": [good]}, {**files, weights: b"\0" * 64}, "signature_mismatch"),  # other weights
        ({**manifest, "version": "2.0.0", "signatures": [good]}, files, "signature_mismatch"),  # the manifest is signed too
        ({**manifest, "signatures": [good]}, files, "verified"),
    ]
    assert [_code(m, f, trusted) for m, f, _ in rows] == [want for _, _, want in rows]
