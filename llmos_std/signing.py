"""Package signatures in the OpenSSF model-signing format, key-based and offline.

What is signed is the package as a folder: every file at its manifest path, plus ``llmos-package.json``
holding the RFC 8785 canonical manifest *without* ``signatures``. The bundle therefore binds the
package digest (through that file) and every file's digest; adding a signature never changes the
package. Trust is the verifier's business: :func:`verify_package` takes the trusted keys as an
argument and never reads one from the package.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pydantic import JsonValue

from llmos_std.canonical import canonicalize
from llmos_std.errors import LLMOSError

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SIGNED_MANIFEST_NAME = "llmos-package.json"


def signer_key_id(public_key_pem: bytes) -> str:
    """A signer's key id: hex SHA-256 of its SubjectPublicKeyInfo PEM (the hint model-signing puts in bundles)."""
    return hashlib.sha256(public_key_pem).hexdigest()


def generate_key_pair(private_path: Path) -> bytes:
    """A new ECDSA P-256 key: the private key written to ``private_path`` (0600); returns the public PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return public_key_of(private_path)


def public_key_of(private_path: Path) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _unsigned(manifest: Mapping[str, JsonValue]) -> bytes:
    return canonicalize({k: v for k, v in manifest.items() if k != "signatures"})


def _folder(manifest: Mapping[str, JsonValue], files: Mapping[str, Path | bytes], into: Path) -> None:
    """The signed view of a package: its files (hard-linked where possible) and the unsigned manifest."""
    for path, source in files.items():
        target = into / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            target.write_bytes(source)
            continue
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
    (into / SIGNED_MANIFEST_NAME).write_bytes(_unsigned(manifest))


def sign_package(manifest: Mapping[str, JsonValue], files: Mapping[str, Path | bytes], private_key: Path) -> dict[str, JsonValue]:
    """A ``signatures`` entry for ``manifest``: the bundle over its files and its unsigned manifest."""
    from model_signing import hashing, signing

    with tempfile.TemporaryDirectory(prefix="llmos-sign-") as tmp:
        folder, bundle = Path(tmp) / "package", Path(tmp) / "bundle.json"
        folder.mkdir()
        _folder(manifest, files, folder)
        (signing.Config()
         .use_elliptic_key_signer(private_key=private_key)
         .set_hashing_config(hashing.Config().set_ignored_paths(paths=[], ignore_git_paths=False))
         .sign(folder, bundle))
        document = json.loads(bundle.read_text(encoding="utf-8"))
    return {"media_type": BUNDLE_MEDIA_TYPE, "key_id": signer_key_id(public_key_of(private_key)), "bundle": document}


def verify_package(manifest: Mapping[str, JsonValue], files: Mapping[str, Path | bytes], trusted: Mapping[str, bytes], *, scratch: Path | None = None) -> str:
    """The key id of a trusted signer whose signature verifies, else the standard's refusal.

    ``signature_required``: no signature at all; ``untrusted_signer``: no signature names a trusted
    key; ``signature_mismatch``: a trusted key's signature does not verify against these digests.
    A new verifier is built for every signature (model-signing caches ignore lists on its config).
    """
    from model_signing import verifying

    signatures = manifest.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise LLMOSError("signature_required", "this server installs only signed packages", param="signatures")
    candidates = [(i, s) for i, s in enumerate(signatures) if isinstance(s, dict) and str(s.get("key_id")) in trusted]
    if not candidates:
        raise LLMOSError("untrusted_signer", "no signature is from a signer this server trusts", param="signatures")
    with tempfile.TemporaryDirectory(prefix="llmos-verify-", dir=scratch) as tmp:
        folder = Path(tmp) / "package"
        folder.mkdir()
        _folder(manifest, files, folder)
        for i, signature in candidates:
            bundle, key = Path(tmp) / f"bundle-{i}.json", Path(tmp) / f"key-{i}.pem"
            bundle.write_text(json.dumps(signature.get("bundle")), encoding="utf-8")
            key.write_bytes(trusted[str(signature["key_id"])])
            try:
                verifying.Config().use_elliptic_key_verifier(public_key=key).verify(folder, bundle)
            except Exception:  # noqa: BLE001 - model-signing raises ValueError, InvalidSignature, protobuf and JSON errors alike
                raise LLMOSError("signature_mismatch", f"signature {i} does not verify against this package's digests", param=f"signatures.{i}") from None
            return str(signature["key_id"])
    raise LLMOSError("untrusted_signer", "no signature is from a signer this server trusts", param="signatures")
