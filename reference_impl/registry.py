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

from pydantic import JsonValue, ValidationError

from llmos_std.errors import LLMOSError
from llmos_std.management import ActivationRecord
from llmos_std.manifest import PackageManifest, manifest_digest
from llmos_std.models import DIGEST_PATTERN
from llmos_std.packages import BlobInfo
from llmos_std.weightfiles import WEIGHT_SUFFIXES, weights_problem

MANIFEST_NAME = "llmos-package.json"
CHUNK_SIZE = 1 << 20
MAX_CONFIG_BYTES = 16 << 20
_DIGEST = re.compile(f"^{DIGEST_PATTERN}$")
_CODE_SUFFIXES = (".py", ".pyc")
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")

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


# ---------------------------------------------------------------- content checks


def _has_auto_map(path: Path) -> bool | None:
    """Whether a JSON config names remote code; None when it is too large to check."""
    if path.stat().st_size > MAX_CONFIG_BYTES:
        return None
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False  # what does not parse cannot be loaded, so it cannot load code either
    return isinstance(value, dict) and "auto_map" in value


def _validation_error(exc: ValidationError) -> LLMOSError:
    errors = exc.errors(include_url=False)
    for error in errors:
        loc = tuple(error["loc"])
        if len(loc) == 3 and loc[0] == "files" and loc[2] == "path":
            field = ".".join(str(part) for part in loc)
            return LLMOSError("path_invalid", f"{field}: {error['msg'].removeprefix('Value error, ')}", param=field)
    problems = []
    for error in errors:
        field = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{field}: {message}" if field else message)
    first = errors[0]
    param = ".".join(str(part) for part in first["loc"]) or None
    if param is None and problems[0].startswith("files:"):
        param = "files"  # the model-level checks (duplicate paths, no weights) are about files
    return LLMOSError("manifest_invalid", "; ".join(problems[:5]), param=param)


def _check_layout(manifest: PackageManifest) -> None:
    """Paths the package directory cannot hold: the manifest itself, or a file where a folder must be."""
    folded = {entry.path.casefold() for entry in manifest.files}
    for i, entry in enumerate(manifest.files):
        if entry.path.casefold() == MANIFEST_NAME:
            raise LLMOSError("path_invalid", f"files.{i}.path: the manifest cannot list itself", param=f"files.{i}.path")
        parts = entry.path.casefold().split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in folded:
                raise LLMOSError(
                    "path_invalid", f"files.{i}.path: {entry.path!r} lies under another listed file", param=f"files.{i}.path"
                )


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
    ) -> None:
        self.root = Path(root)
        self.accepted_formats = accepted_formats
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
        manifest, digest = self._validate(manifest_json)
        existing = self.find(manifest.name, version=manifest.version)
        if existing is not None:
            return self._same(existing, digest), False
        self._verify_blobs(manifest)
        text = json.dumps(dict(manifest_json), ensure_ascii=False, allow_nan=False)
        staged = self._materialise(manifest, text)
        try:
            return self._commit(manifest, digest, owner, text, staged)
        finally:
            _remove(staged)

    def _validate(self, manifest_json: Mapping[str, JsonValue]) -> tuple[PackageManifest, str]:
        try:
            manifest = PackageManifest.model_validate(dict(manifest_json))
        except ValidationError as exc:
            raise _validation_error(exc) from None
        try:
            digest = manifest_digest(manifest_json)
        except (ValueError, TypeError) as exc:
            raise LLMOSError("manifest_invalid", f"the manifest is not I-JSON: {exc}") from None
        _check_layout(manifest)
        if manifest.format not in self.accepted_formats:
            accepted = ", ".join(sorted(self.accepted_formats))
            raise LLMOSError("format_forbidden", f"format {manifest.format!r} is not accepted ({accepted})", param="format")
        for i, entry in enumerate(manifest.files):
            suffix = "." + entry.path.rsplit(".", 1)[-1].casefold() if "." in entry.path else ""
            if suffix in _CODE_SUFFIXES:
                raise LLMOSError("format_forbidden", f"{entry.path}: packages may not contain code", param=f"files.{i}.path")
            if suffix in _PICKLE_SUFFIXES and "pytorch-pickle" not in self.accepted_formats:
                raise LLMOSError("format_forbidden", f"{entry.path}: pickle files run code when loaded", param=f"files.{i}.path")
        return manifest, digest

    @staticmethod
    def _same(existing: InstalledVersion, digest: str) -> InstalledVersion:
        if existing.digest != digest:
            raise LLMOSError(
                "already_exists",
                f"{existing.name}@{existing.version} is installed with another manifest ({existing.digest})",
                param="version",
            )
        return existing

    def _verify_blobs(self, manifest: PackageManifest) -> None:
        missing = [(i, e) for i, e in enumerate(manifest.files) if not self.has_blob(e.digest)]
        if missing:
            i, entry = missing[0]
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise LLMOSError(
                "manifest_blob_unknown", f"{entry.path}: blob {entry.digest} is not uploaded{more}", param=f"files.{i}.digest"
            )
        for i, entry in enumerate(manifest.files):
            size = self.blob_size(entry.digest)
            if size != entry.size:
                raise LLMOSError(
                    "digest_invalid", f"{entry.path}: blob {entry.digest} has {size} bytes, the manifest says {entry.size}",
                    param=f"files.{i}.size",
                )
        for i, entry in enumerate(manifest.files):
            blob = self._blob_path(entry.digest)
            name = entry.path.rsplit("/", 1)[-1].casefold()
            if name.endswith("config.json") and _has_auto_map(blob) is not False:
                raise LLMOSError(
                    "format_forbidden", f"{entry.path}: auto_map loads code from the package (or the file is too large to check)",
                    param=f"files.{i}.path",
                )
            # Weights parse as the declared format; adapter weights as their suffix says.
            kind = {"weights": manifest.format, "adapter": WEIGHT_SUFFIXES.get(Path(name).suffix)}.get(entry.role)
            problem = weights_problem(blob, kind)
            if problem is not None:
                raise LLMOSError("weights_malformed", f"{entry.path}: not {kind}: {problem}", param=f"files.{i}.path")

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
