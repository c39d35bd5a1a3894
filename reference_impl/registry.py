"""The reference server's package store: verified blobs by digest on disk, versions and activations in SQLite.

Every state change is atomic: files are staged under ``tmp/`` and renamed into place, rows change in one
transaction, and opening the store collects whatever a crash left half-done.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import AsyncIterable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from pydantic import JsonValue

from llmos_std.errors import LLMOSError
from llmos_std.management import ActivationRecord
from llmos_std.manifest import PackageManifest
from llmos_std.models import DIGEST_PATTERN
from llmos_std.packages import BlobInfo
from llmos_std.signing import verify_package
from llmos_std.verification import CHUNK_SIZE, MANIFEST_NAME

from reference_impl.admission import admit_blobs, admit_manifest
from reference_impl.architectures import ArchitectureCheck

_DIGEST = re.compile(f"^{DIGEST_PATTERN}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    installed_at INTEGER NOT NULL,
    manifest TEXT NOT NULL,
    UNIQUE (name, version)
);
CREATE TABLE IF NOT EXISTS version_blobs (
    package TEXT NOT NULL,
    blob TEXT NOT NULL,
    PRIMARY KEY (package, blob)
);
CREATE INDEX IF NOT EXISTS version_blobs_blob ON version_blobs (blob);
CREATE TABLE IF NOT EXISTS activations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    activated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS blob_gc (blob TEXT PRIMARY KEY);
"""
# blob_gc: blobs of deleted versions, committed with the delete, so that a crash before they are
# removed leaves work for the next open rather than garbage nobody knows about.


@dataclass(frozen=True)
class InstalledVersion:
    name: str
    version: str
    digest: str
    owner: str
    installed_at: int
    manifest: PackageManifest


def _check_digest(digest: str, param: str = "digest") -> str:
    if not _DIGEST.match(digest):
        raise LLMOSError("digest_invalid", f"{digest!r} is not sha256:<64 lowercase hex>", param=param)
    return digest


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------- blob upload


class _BlobWriter:
    """A blob being received: streamed into ``tmp/`` and hashed as it arrives."""

    def __init__(self, tmp_dir: Path, digest: str, max_bytes: int | None) -> None:
        self.digest, self.max_bytes = digest, max_bytes
        self.path = tmp_dir / f"blob-{secrets.token_hex(8)}"
        self.stream: BinaryIO = open(self.path, "xb")  # closed by finish() or discard()
        self.hasher = hashlib.sha256()
        self.size = 0

    def account(self, n: int) -> None:
        self.size += n
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise LLMOSError("payload_too_large", f"the blob exceeds {self.max_bytes} bytes")

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.hasher.update(data)
        self.stream.write(data)

    def finish(self) -> None:
        """Flush and fsync; raises ``digest_invalid`` unless the bytes hash to the digest."""
        self.stream.flush()
        os.fsync(self.stream.fileno())
        self.stream.close()
        actual = "sha256:" + self.hasher.hexdigest()
        if actual != self.digest:
            raise LLMOSError("digest_invalid", f"the content hashes to {actual}, not {self.digest}", param="digest")
        os.chmod(self.path, 0o444)

    def discard(self) -> None:
        self.stream.close()
        self.path.unlink(missing_ok=True)


# ---------------------------------------------------------------- the registry


class Registry:
    """Blobs under ``root/blobs``, materialised packages under ``root/packages``, rows in ``registry.sqlite3``."""

    def __init__(
        self,
        root: Path,
        *,
        accepted_formats: frozenset[str] = frozenset({"safetensors", "gguf"}),
        clock: Callable[[], float] = time.time,
        trusted: Callable[[], Mapping[str, bytes]] | None = None,
        runnable: ArchitectureCheck | None = None,
    ) -> None:
        self.root = Path(root)
        self.accepted_formats = accepted_formats
        self.runnable = runnable
        """When set, a package whose architecture it rejects is refused with ``architecture_unsupported``."""
        self.trusted = trusted
        """When set, only packages with a signature from one of these signers (key id -> PEM) install."""
        self._clock = clock
        self._blobs = self.root / "blobs" / "sha256"
        self._packages = self.root / "packages"
        self._tmp = self.root / "tmp"
        for folder in (self._blobs, self._packages, self._tmp):
            folder.mkdir(parents=True, exist_ok=True)
        for leftover in self._tmp.iterdir():
            _remove(leftover)
        self._lock = threading.Lock()
        self._manifests: dict[str, PackageManifest] = {}
        self._db = sqlite3.connect(self.root / "registry.sqlite3", isolation_level=None, check_same_thread=False)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            with self._transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
            self._recover()
        except BaseException:
            self._db.close()
            raise

    # ------------------------------------------------------------ plumbing

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _recover(self) -> None:
        """Remove package folders no row refers to, then blobs that deleted versions left behind."""
        with self._lock:
            known = {row[0].removeprefix("sha256:") for row in self._db.execute("SELECT digest FROM versions")}
            for entry in self._packages.iterdir():
                if entry.name not in known:
                    _remove(entry)
            with self._transaction():
                self._collect_blobs()

    def _collect_blobs(self) -> None:
        """Delete the blobs queued by deletes that no version refers to any more; holds the lock."""
        for (blob,) in self._db.execute("SELECT blob FROM blob_gc").fetchall():
            referenced = self._db.execute("SELECT 1 FROM version_blobs WHERE blob = ? LIMIT 1", (blob,)).fetchone()
            if referenced is None and _DIGEST.match(blob):
                self._blob_path(blob).unlink(missing_ok=True)
            self._db.execute("DELETE FROM blob_gc WHERE blob = ?", (blob,))

    def _blob_path(self, digest: str) -> Path:
        return self._blobs / digest.removeprefix("sha256:")

    def _parsed(self, digest: str, text: str) -> PackageManifest:
        manifest = self._manifests.get(digest)
        if manifest is None:
            manifest = PackageManifest.model_validate(json.loads(text))
            self._manifests[digest] = manifest
        return manifest

    def _row(self, row: tuple[Any, ...]) -> InstalledVersion:
        name, version, digest, owner, installed_at, text = row
        return InstalledVersion(name, version, digest, owner, installed_at, self._parsed(digest, text))

    def _query(self, where: str, params: tuple[object, ...]) -> list[InstalledVersion]:
        sql = f"SELECT name, version, digest, owner, installed_at, manifest FROM versions {where}"
        with self._lock:
            return [self._row(row) for row in self._db.execute(sql, params).fetchall()]

    # ------------------------------------------------------------ blobs

    def has_blob(self, digest: str) -> bool:
        return self.blob_size(digest) is not None

    def blob_size(self, digest: str) -> int | None:
        if not _DIGEST.match(digest):
            return None
        try:
            return self._blob_path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def open_blob(self, digest: str) -> BinaryIO | None:
        """The stored blob opened for reading, or None when none has ``digest``.

        Opened under the lock that collecting deleted versions' blobs takes: an open file outlives its unlinking,
        so a download that has begun ends with every byte even when a delete removes the blob meanwhile.
        """
        if not _DIGEST.match(digest):
            return None
        with self._lock:
            try:
                return self._blob_path(digest).open("rb")
            except FileNotFoundError:
                return None

    def put_blob(self, digest: str, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> tuple[BlobInfo, bool]:
        """Store ``chunks`` under ``digest`` if they hash to it; the bool says whether it is new."""
        writer = _BlobWriter(self._tmp, _check_digest(digest), max_bytes)
        try:
            for chunk in chunks:
                writer.account(len(chunk))
                writer.write(chunk)
            return self._store_blob(writer)
        finally:
            writer.discard()

    async def put_blob_async(
        self, digest: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None
    ) -> tuple[BlobInfo, bool]:
        """As :meth:`put_blob`, for a request body; disk writes run in a thread, 1 MiB at a time."""
        writer = _BlobWriter(self._tmp, _check_digest(digest), max_bytes)
        try:
            buffer = bytearray()
            async for chunk in chunks:
                writer.account(len(chunk))
                buffer += chunk
                if len(buffer) >= CHUNK_SIZE:
                    data, buffer = buffer, bytearray()
                    await asyncio.to_thread(writer.write, data)
            if buffer:
                await asyncio.to_thread(writer.write, buffer)
            return await asyncio.to_thread(self._store_blob, writer)
        finally:
            writer.discard()

    def _store_blob(self, writer: _BlobWriter) -> tuple[BlobInfo, bool]:
        writer.finish()
        target = self._blob_path(writer.digest)
        info = BlobInfo(digest=writer.digest, size=writer.size)
        with self._lock:  # against a delete collecting this digest at the same moment
            if target.exists():
                return info, False
            os.replace(writer.path, target)
            _fsync_dir(self._blobs)
        return info, True

    # ------------------------------------------------------------ install

    def install(self, manifest_json: Mapping[str, JsonValue], *, owner: str) -> tuple[InstalledVersion, bool]:
        """Verify a manifest against the stored blobs and install it; the bool says whether it is new."""
        manifest, digest = admit_manifest(manifest_json, self.accepted_formats, self.runnable)
        existing = self.find(manifest.name, version=manifest.version)
        if existing is not None:
            return self._same(existing, digest), False
        admit_blobs(manifest, self._blob_path)
        text = json.dumps(dict(manifest_json), ensure_ascii=False, allow_nan=False)
        staged = self._materialise(manifest, text)
        try:
            if self.trusted is not None:
                # After every other admission check, on the materialised files: the bundle must bind these bytes.
                verify_package(manifest_json, {e.path: staged / e.path for e in manifest.files}, self.trusted(), scratch=self._tmp)
            return self._commit(manifest, digest, owner, text, staged)
        finally:
            _remove(staged)

    @staticmethod
    def _same(existing: InstalledVersion, digest: str) -> InstalledVersion:
        if existing.digest != digest:
            raise LLMOSError(
                "already_exists",
                f"{existing.name}@{existing.version} is installed with another manifest ({existing.digest})",
                param="version",
            )
        return existing

    def _materialise(self, manifest: PackageManifest, text: str) -> Path:
        """The package folder, built under ``tmp/``: files hard-linked from blobs (copied where links fail)."""
        staged = self._tmp / f"package-{secrets.token_hex(8)}"
        staged.mkdir()
        try:
            folders = {staged}
            for i, entry in enumerate(manifest.files):
                target = staged / entry.path
                target.parent.mkdir(parents=True, exist_ok=True)
                folders.add(target.parent)
                try:
                    os.link(self._blob_path(entry.digest), target)
                except FileNotFoundError:
                    raise LLMOSError(
                        "manifest_blob_unknown", f"{entry.path}: blob {entry.digest} is not uploaded", param=f"files.{i}.digest"
                    ) from None
                except OSError:  # another file system, or no hard links there
                    shutil.copyfile(self._blob_path(entry.digest), target)
                    with target.open("rb+") as stream:
                        os.fsync(stream.fileno())
            with (staged / MANIFEST_NAME).open("x", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            for folder in folders:
                _fsync_dir(folder)
        except BaseException:
            _remove(staged)
            raise
        return staged

    def _commit(self, manifest: PackageManifest, digest: str, owner: str, text: str, staged: Path) -> tuple[InstalledVersion, bool]:
        final = self._packages / digest.removeprefix("sha256:")
        blobs = sorted({entry.digest for entry in manifest.files})
        installed_at = int(self._clock())
        with self._lock:
            row = self._db.execute(
                "SELECT name, version, digest, owner, installed_at, manifest FROM versions WHERE name = ? AND version = ?",
                (manifest.name, manifest.version),
            ).fetchone()
            if row is not None:  # another thread installed it while we were verifying
                return self._same(self._row(row), digest), False
            if not all(self._blob_path(blob).exists() for blob in blobs):
                raise LLMOSError("manifest_blob_unknown", "a blob was deleted during the install; upload it again")
            os.replace(staged, final)
            try:
                _fsync_dir(self._packages)
                with self._transaction() as db:
                    db.execute(
                        "INSERT INTO versions (name, version, digest, owner, installed_at, manifest) VALUES (?, ?, ?, ?, ?, ?)",
                        (manifest.name, manifest.version, digest, owner, installed_at, text),
                    )
                    db.executemany("INSERT INTO version_blobs (package, blob) VALUES (?, ?)", [(digest, b) for b in blobs])
            except BaseException:
                _remove(final)
                raise
            self._manifests[digest] = manifest
        return InstalledVersion(manifest.name, manifest.version, digest, owner, installed_at, manifest), True

    # ------------------------------------------------------------ reading

    def manifest(self, digest: str) -> dict[str, JsonValue] | None:
        """The installed manifest with this package digest, exactly as it was received."""
        with self._lock:
            row = self._db.execute("SELECT manifest FROM versions WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else cast(dict[str, JsonValue], json.loads(row[0]))

    def package_dir(self, digest: str) -> Path:
        return self._packages / _check_digest(digest).removeprefix("sha256:")

    def versions(self, name: str | None = None) -> list[InstalledVersion]:
        """Installed versions ordered by name, then install order."""
        if name is None:
            return self._query("ORDER BY name, seq", ())
        return self._query("WHERE name = ? ORDER BY seq", (name,))

    def find(self, name: str, *, version: str | None = None, digest: str | None = None) -> InstalledVersion | None:
        """The version of ``name`` matching every filter given (the newest installed when none is)."""
        found = [
            v for v in self.versions(name)
            if (version is None or v.version == version) and (digest is None or v.digest == digest)
        ]  # fmt: skip
        return found[-1] if found else None

    def names(self) -> list[str]:
        with self._lock:
            return [row[0] for row in self._db.execute("SELECT DISTINCT name FROM versions ORDER BY name")]

    # ------------------------------------------------------------ delete

    def delete_version(self, name: str, version: str) -> InstalledVersion:
        """Remove the row, then the package folder, then the blobs no other version uses."""
        found = self.find(name, version=version)
        if found is None:
            raise LLMOSError("version_not_found", f"{name} has no version {version!r}", param="version")
        with self._lock:
            with self._transaction() as db:
                db.execute("DELETE FROM versions WHERE digest = ?", (found.digest,))
                db.execute("INSERT OR IGNORE INTO blob_gc (blob) SELECT blob FROM version_blobs WHERE package = ?", (found.digest,))
                db.execute("DELETE FROM version_blobs WHERE package = ?", (found.digest,))
                # With its last version the model is gone: a later install of the name starts a new history.
                db.execute("DELETE FROM activations WHERE name = ? AND NOT EXISTS (SELECT 1 FROM versions WHERE name = ?)", (name, name))
            self._manifests.pop(found.digest, None)
            folder = self._packages / found.digest.removeprefix("sha256:")
            doomed = self._tmp / f"deleted-{secrets.token_hex(8)}"
            if folder.exists():
                os.replace(folder, doomed)  # one rename, so no half-removed package is ever visible
                _remove(doomed)
            with self._transaction():
                self._collect_blobs()
        return found

    # ------------------------------------------------------------ activation

    def record_activation(self, name: str, version: str) -> None:
        """Append to the activation history; the last record of a name is its active version."""
        found = self.find(name, version=version)
        if found is None:
            raise LLMOSError("version_not_found", f"{name} has no version {version!r}", param="version")
        with self._lock, self._transaction() as db:
            db.execute(
                "INSERT INTO activations (name, version, digest, activated_at) VALUES (?, ?, ?, ?)",
                (name, version, found.digest, int(self._clock())),
            )

    def history(self, name: str) -> list[ActivationRecord]:
        """Every activation of ``name``, oldest first (deleted versions included)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT version, digest, activated_at FROM activations WHERE name = ? ORDER BY seq", (name,)
            ).fetchall()
        return [ActivationRecord(version=v, digest=d, activated_at=t) for v, d, t in rows]

    def _activated(self, name: str) -> list[InstalledVersion]:
        """Installed versions in activation order, newest first, one entry per activation record."""
        installed = {v.digest: v for v in self.versions(name)}
        return [installed[r.digest] for r in reversed(self.history(name)) if r.digest in installed]

    def active_version(self, name: str) -> InstalledVersion | None:
        activated = self._activated(name)
        return activated[0] if activated else None

    def previous_version(self, name: str) -> InstalledVersion | None:
        """The version active before the current one, by history (not SemVer), skipping deleted ones."""
        activated = self._activated(name)
        return next((v for v in activated if v.digest != activated[0].digest), None)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
