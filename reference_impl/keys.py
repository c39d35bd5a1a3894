"""API keys: only their SHA-256 hashes are stored; a presented key is hashed and compared in constant time.

Keys come from two places: the operator's configuration (``--api-key``, ``LLMOS_API_KEY``), held in
memory as hashes, and the key file ``<data_dir>/keys.json``, where ``llmos-ref serve`` creates an
admin key on first start. The secret of a created key is returned once and never written anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path

from llmos_std.security import Scope

from reference_impl.private_files import write_private_json

KEY_PREFIX = "llmos-"
"""Secrets start with this, so that leak scanners and people can recognise them."""
PREFIX_SHOWN = 12
"""How many leading characters of a secret identify a key in listings (never enough to use it)."""


@dataclass(frozen=True)
class KeyRecord:
    id: str
    name: str
    principal: str
    scopes: tuple[Scope, ...]
    hash: str
    prefix: str
    created: int
    source: str
    """``configuration`` or ``file``."""
    expires_at: int | None = None
    revoked: bool = False
    rate_limit_per_minute: int | None = None

    def usable(self, now: float) -> bool:
        return not self.revoked and (self.expires_at is None or now < self.expires_at)


def _hash(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyStore:
    """The keys a server accepts; lookups compare hashes with ``hmac.compare_digest`` against every key."""

    def __init__(self, path: Path, configured: list[str]) -> None:
        self.path = path
        self._records: list[KeyRecord] = [
            KeyRecord(f"key_cfg{i}", f"configured key {i + 1}", "prn_admin", ("admin",), _hash(secret), secret[:PREFIX_SHOWN], 0, "configuration")
            for i, secret in enumerate(configured)
        ]
        self._records += self._load()

    def _load(self) -> list[KeyRecord]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        return [
            KeyRecord(r["id"], r["name"], r["principal"], tuple(r["scopes"]), r["hash"], r["prefix"], int(r["created"]), "file",
                      r.get("expires_at"), bool(r.get("revoked", False)), r.get("rate_limit_per_minute"))
            for r in data.get("keys", [])
        ]

    def _save(self) -> None:
        rows = [
            {"id": r.id, "name": r.name, "principal": r.principal, "scopes": list(r.scopes), "hash": r.hash, "prefix": r.prefix, "created": r.created,
             "expires_at": r.expires_at, "revoked": r.revoked, "rate_limit_per_minute": r.rate_limit_per_minute}
            for r in self._records if r.source == "file"
        ]
        write_private_json(self.path, {"keys": rows})

    @property
    def empty(self) -> bool:
        return not self._records

    def create(self, name: str, scopes: tuple[Scope, ...], principal: str = "prn_admin", *,
               expires_at: int | None = None, rate_limit_per_minute: int | None = None) -> tuple[KeyRecord, str]:
        """A new key stored by hash; the secret is returned to the caller and kept nowhere."""
        secret = new_secret()
        record = KeyRecord(f"key_{secrets.token_hex(8)}", name, principal, scopes, _hash(secret), secret[:PREFIX_SHOWN], int(time.time()), "file",
                           expires_at, False, rate_limit_per_minute)
        self._records.append(record)
        self._save()
        return record, secret

    def ensure_admin_key(self) -> str | None:
        """On first start: create an admin key and return its secret (to print once); None when keys exist."""
        if not self.empty:
            return None
        return self.create("admin (created on first start)", ("admin",))[1]

    def verify(self, presented: str) -> KeyRecord | None:
        """The usable key with this secret: revoked and expired keys fail from the next request on."""
        digest = _hash(presented)
        found: KeyRecord | None = None
        for record in self._records:  # every record is compared, so timing does not reveal which matched
            if hmac.compare_digest(digest.encode(), record.hash.encode()):
                found = record
        return found if found is not None and found.usable(time.time()) else None

    def of(self, principal: str) -> list[KeyRecord]:
        return [r for r in self._records if r.principal == principal]

    def revoke(self, key_id: str, principal: str | None) -> KeyRecord | None:
        """Revoke one of ``principal``'s keys (any principal's with None: admin) kept in the key file;
        configured keys are the operator's and stay."""
        for i, record in enumerate(self._records):
            if record.id == key_id and principal in (None, record.principal) and record.source == "file":
                self._records[i] = replace(record, revoked=True)
                self._save()
                return self._records[i]
        return None
