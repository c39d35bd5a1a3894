"""Trusted package signers: from configuration (the local signing key, operator-given keys) or the admin API.

Trust never comes from a package: :meth:`TrustStore.trusted` is the only input signature checks get.
Signers added through the API are kept in ``<data_dir>/trust.json`` (atomic writes); configured ones
are read at start and cannot be removed through the API.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

from llmos_std.errors import LLMOSError
from llmos_std.security import TrustedSigner
from llmos_std.signing import generate_key_pair, public_key_of, signer_key_id

from reference_impl.private_files import write_private_json

LOCAL_KEY_NAME = "local-signing-key.pem"


def local_signing_key(data_dir: Path) -> Path:
    """The server's own signing key (created on first start, 0600): it signs the packages the server installs itself."""
    path = data_dir / "signing" / LOCAL_KEY_NAME
    if not path.exists():
        generate_key_pair(path)
    return path


def _checked_pem(text: str) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_public_key(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise LLMOSError("invalid_value", "public_key is not a PEM public key", param="public_key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
        raise LLMOSError("invalid_value", "public_key must be an ECDSA P-256, P-384 or P-521 key (model-signing's key signer)", param="public_key")
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class TrustStore:
    def __init__(self, path: Path, configured: list[tuple[bytes, str]]) -> None:
        self.path = path
        self._signers: list[TrustedSigner] = [
            TrustedSigner(id=f"sgn_cfg{i}", key_id=signer_key_id(pem), public_key=pem.decode("ascii"), created=0, source="configuration", note=note)
            for i, (pem, note) in enumerate(configured)
        ]
        if path.exists():
            rows = json.loads(path.read_text(encoding="utf-8")).get("signers", [])
            self._signers += [TrustedSigner.model_validate(row) for row in rows]

    def _save(self) -> None:
        rows = [s.model_dump(mode="json") for s in self._signers if s.source == "api"]
        write_private_json(self.path, {"signers": rows})

    def trusted(self) -> dict[str, bytes]:
        return {s.key_id: s.public_key.encode("ascii") for s in self._signers}

    def signers(self) -> list[TrustedSigner]:
        return list(self._signers)

    def add(self, key_id: str, public_key: str, note: str | None) -> TrustedSigner:
        pem = _checked_pem(public_key)
        if signer_key_id(pem) != key_id:
            raise LLMOSError("invalid_value", "key_id must be the hex SHA-256 of the key's SubjectPublicKeyInfo PEM", param="key_id")
        if key_id in self.trusted():
            raise LLMOSError("already_exists", "this signer is already trusted", param="key_id")
        signer = TrustedSigner(id=f"sgn_{secrets.token_hex(8)}", key_id=key_id, public_key=pem.decode("ascii"), created=int(time.time()), source="api", note=note)
        self._signers.append(signer)
        self._save()
        return signer

    def remove(self, signer_id: str) -> TrustedSigner | None:
        for i, signer in enumerate(self._signers):
            if signer.id == signer_id and signer.source == "api":
                del self._signers[i]
                self._save()
                return signer
        return None


def configured_signers(data_dir: Path, extra: list[Path]) -> list[tuple[bytes, str]]:
    local = local_signing_key(data_dir)
    return [(public_key_of(local), "the server's local signing key")] + [(_checked_pem(p.read_text(encoding="ascii")), f"configured: {p.name}") for p in extra]
