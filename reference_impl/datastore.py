"""Datasets in SQLite (WAL): one writer, concurrent readers, every change one transaction.

Layout: ``datasets`` and ``versions`` describe what exists; each dataset's records live in a table
of their own, ``r_<id>``, keyed by (generation, index) packed into one integer. An append adds rows to the latest
generation, so version n is "generation g, index below record_count(n)" and versions share rows;
a derive into the same dataset writes a fresh generation. Rows that no version references are
invisible, which is what makes a derive atomic: it stages its output, then one transaction adds the
version (and, for a new dataset, the dataset row). Start-up removes whatever a crash left staged.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmos_std.data import Dataset, DatasetVersion, Record, VersionRef
from llmos_std.errors import LLMOSError
from llmos_std.query import QueryRequest, project

from reference_impl.sqlquery import compile_filter, extract, order_by

_SCHEMA = """
CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, name TEXT NOT NULL, description TEXT, schema TEXT,
    indexes TEXT NOT NULL, created INTEGER NOT NULL, latest INTEGER NOT NULL, UNIQUE (owner, name));
CREATE TABLE IF NOT EXISTS versions (
    dataset_id TEXT NOT NULL, version INTEGER NOT NULL, generation INTEGER NOT NULL, record_count INTEGER NOT NULL,
    created INTEGER NOT NULL, operation TEXT NOT NULL, parent_dataset TEXT, parent_version INTEGER, pipeline TEXT,
    records_in INTEGER NOT NULL, PRIMARY KEY (dataset_id, version)) WITHOUT ROWID;
"""
_DATASET_ROWS = ("SELECT d.id, d.owner, d.name, d.description, d.schema, d.indexes, d.created, d.latest, v.record_count "
                 "FROM datasets d JOIN versions v ON v.dataset_id = d.id AND v.version = d.latest")
"""A dataset with the record count of its latest version, in one read."""
_ID = re.compile(r"^ds_[A-Za-z0-9]{1,61}$")
BATCH = 2000
GEN_SHIFT = 40
"""A row's key is generation << 40 | index: one integer primary key (SQLite's fastest layout for ~1 KB
rows, which WITHOUT ROWID tables store poorly), ranges per version, and room for 10^12 records."""


def key_base(generation: int) -> int:
    return generation << GEN_SHIFT


def _table(dataset_id: str) -> str:
    if _ID.match(dataset_id) is None:  # ids are made here; the check keeps SQL built from them safe
        raise ValueError(f"bad dataset id {dataset_id!r}")
    return f'"r_{dataset_id}"'


def dumps(record: Any) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class VersionInfo:
    dataset_id: str
    version: int
    generation: int
    record_count: int


class DataStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode=WAL")
        self._writer.executescript(_SCHEMA)
        self._local = threading.local()
        self._reserved: dict[str, set[int]] = {}
        """Generations staged by derives in progress, per dataset (two derives never share one)."""
        self._recover()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    @property
    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def close(self) -> None:
        self._writer.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._write_lock:
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                self._writer.execute("ROLLBACK")
                raise
            self._writer.execute("COMMIT")

    def _recover(self) -> None:
        """Drop what a crash left staged: tables of datasets never committed, generations no version uses."""
        with self._write() as db:
            known = {row[0] for row in db.execute("SELECT id FROM datasets")}
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'r_ds_%'")]
            for table in tables:
                dataset_id = table[2:]
                if dataset_id not in known:
                    db.execute(f'DROP TABLE "{table}"')
                    continue
                used = [row[0] for row in db.execute("SELECT DISTINCT generation FROM versions WHERE dataset_id = ?", (dataset_id,))]
                marks = ",".join("?" * len(used))
                db.execute(f'DELETE FROM "{table}" WHERE (key >> {GEN_SHIFT}) NOT IN ({marks})', used)

    # ------------------------------------------------------------ datasets

    def create(self, owner: str, name: str, description: str | None, schema: Any, indexes: list[str]) -> Dataset:
        dataset_id = "ds_" + secrets.token_hex(10)
        now = int(time.time())
        with self._write() as db:
            if db.execute("SELECT 1 FROM datasets WHERE owner = ? AND name = ?", (owner, name)).fetchone():
                raise LLMOSError("already_exists", f"you already have a dataset named {name!r}", param="name")
            self._create_table(db, dataset_id, indexes)
            db.execute("INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
                       (dataset_id, owner, name, description, None if schema is None else json.dumps(schema), json.dumps(indexes), now))
            db.execute("INSERT INTO versions VALUES (?, 1, 1, 0, ?, 'create', NULL, NULL, NULL, 0)", (dataset_id, now))
        return self.get(owner, dataset_id)

    @staticmethod
    def _create_table(db: sqlite3.Connection, dataset_id: str, indexes: list[str]) -> None:
        table = _table(dataset_id)
        db.execute(f"CREATE TABLE {table} (key INTEGER PRIMARY KEY, data TEXT NOT NULL)")
        for n, field in enumerate(indexes):
            db.execute(f'CREATE INDEX "ix_{dataset_id}_{n}" ON {table} ({extract(field)}, key)')

    def _row(self, owner: str, dataset_id: str, db: sqlite3.Connection | None = None) -> tuple[Any, ...]:
        row = (db or self._reader).execute(f"{_DATASET_ROWS} WHERE d.id = ? AND d.owner = ?", (dataset_id, owner)).fetchone()
        if row is None:
            raise LLMOSError("dataset_not_found", f"no dataset {dataset_id!r}", param="dataset_id")
        return tuple(row)

    def get(self, owner: str, dataset_id: str) -> Dataset:
        return self._dataset(self._row(owner, dataset_id))

    @staticmethod
    def _dataset(row: tuple[Any, ...]) -> Dataset:
        dataset_id, owner, name, description, schema, indexes, created, latest, count = row
        return Dataset.model_validate({
            "id": dataset_id, "name": name, "owner": owner, "created": created, "version": latest, "record_count": count,
            "description": description, "schema": None if schema is None else json.loads(schema), "indexes": json.loads(indexes),
        })

    def schema(self, owner: str, dataset_id: str) -> Any:
        schema = self._row(owner, dataset_id)[4]
        return None if schema is None else json.loads(schema)

    def list_datasets(self, owner: str, *, after: str | None, limit: int) -> tuple[list[Dataset], str | None]:
        rows = self._reader.execute(
            f"{_DATASET_ROWS} WHERE d.owner = ? AND (? IS NULL OR (d.created, d.id) > (SELECT created, id FROM datasets WHERE id = ?)) "
            "ORDER BY d.created, d.id LIMIT ?", (owner, after, after, limit + 1)).fetchall()
        page = [self._dataset(tuple(r)) for r in rows[:limit]]
        return page, (page[-1].id if len(rows) > limit else None)

    def exists(self, owner: str, dataset_id: str) -> bool:
        return self._reader.execute("SELECT 1 FROM datasets WHERE id = ? AND owner = ?", (dataset_id, owner)).fetchone() is not None

    def delete(self, owner: str, dataset_id: str) -> None:
        with self._write() as db:
            self._row(owner, dataset_id, db)
            db.execute("DELETE FROM versions WHERE dataset_id = ?", (dataset_id,))
            db.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))
            db.execute(f"DROP TABLE {_table(dataset_id)}")

    # ------------------------------------------------------------ versions

    def version(self, owner: str, dataset_id: str, version: int | None, db: sqlite3.Connection | None = None) -> VersionInfo:
        latest = self._row(owner, dataset_id, db)[7]
        number = latest if version is None else version
        row = (db or self._reader).execute(
            "SELECT generation, record_count FROM versions WHERE dataset_id = ? AND version = ?", (dataset_id, number)).fetchone()
        if row is None:
            raise LLMOSError("dataset_version_not_found", f"dataset {dataset_id!r} has no version {number}", param="dataset_ref")
        return VersionInfo(dataset_id, number, row[0], row[1])

    def versions(self, owner: str, dataset_id: str) -> list[DatasetVersion]:
        self._row(owner, dataset_id)
        rows = self._reader.execute(
            "SELECT version, created, record_count, operation, parent_dataset, parent_version, pipeline, records_in "
            "FROM versions WHERE dataset_id = ? ORDER BY version", (dataset_id,)).fetchall()
        return [
            DatasetVersion.model_validate({
                "dataset_id": dataset_id, "version": v, "created": created, "record_count": count, "operation": op,
                "parent": None if parent is None else {"dataset_id": parent, "version": parent_version},
                "pipeline": None if pipeline is None else json.loads(pipeline), "records_in": records_in, "records_out": count,
            })
            for v, created, count, op, parent, parent_version, pipeline, records_in in rows
        ]

    # ------------------------------------------------------------ writing

    def append(self, owner: str, dataset_id: str, records: list[str]) -> tuple[int, int]:
        """Serialised records, appended as one new version; returns (version, record_count)."""
        with self._write() as db:
            current = self.version(owner, dataset_id, None, db)
            table = _table(dataset_id)
            base = key_base(current.generation) + current.record_count
            db.executemany(f"INSERT INTO {table} (key, data) VALUES (?, ?)", ((base + i, text) for i, text in enumerate(records)))
            count = current.record_count + len(records)
            new = current.version + 1
            db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?, 'append', ?, ?, NULL, ?)",
                       (dataset_id, new, current.generation, count, int(time.time()), dataset_id, current.version, len(records)))
            db.execute("UPDATE datasets SET latest = ? WHERE id = ?", (new, dataset_id))
        return new, count

    def stage(self, owner: str, source: VersionInfo, new_name: str | None) -> Staging:
        """Where a derive writes its output before it is committed (invisible until then)."""
        with self._write() as db:
            self._row(owner, source.dataset_id, db)
            if new_name is not None:
                if db.execute("SELECT 1 FROM datasets WHERE owner = ? AND name = ?", (owner, new_name)).fetchone():
                    raise LLMOSError("already_exists", f"you already have a dataset named {new_name!r}", param="name")
                target = "ds_" + secrets.token_hex(10)
                self._create_table(db, target, [])
                generation = 1
            else:
                target = source.dataset_id
                used = db.execute("SELECT max(generation) FROM versions WHERE dataset_id = ?", (target,)).fetchone()[0]
                generation = 1 + max([used, *self._reserved.get(target, set())])
                self._reserved.setdefault(target, set()).add(generation)
        return Staging(self, owner, source, target, generation, new_name)

    def release(self, dataset_id: str, generation: int) -> None:
        with self._write_lock:
            self._reserved.get(dataset_id, set()).discard(generation)

    # ------------------------------------------------------------ reading

    def iter_records(self, info: VersionInfo, *, batch: int = BATCH) -> Iterator[tuple[int, str]]:
        """(index, JSON text) of a version in index order, in bounded batches on one read snapshot."""
        conn = self._connect()
        try:
            conn.execute("BEGIN")
            last = -1
            table = _table(info.dataset_id)
            while True:
                base = key_base(info.generation)
                rows = conn.execute(f"SELECT key - ?, data FROM {table} WHERE key > ? AND key < ? ORDER BY key LIMIT ?",
                                    (base, base + last, base + info.record_count, batch)).fetchall()
                if not rows:
                    return
                yield from rows
                last = rows[-1][0]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return  # deleted before the read began
            raise
        finally:
            conn.close()

    def query(self, owner: str, dataset_id: str, version: int | None, request: QueryRequest) -> tuple[list[Record], str | None, int]:
        fingerprint = _fingerprint(dataset_id, request)
        position: int | None = None
        if request.cursor is not None:
            pinned, position = _read_cursor(request.cursor, fingerprint)
            if version is not None and version != pinned:
                raise LLMOSError("cursor_invalid", "the cursor belongs to another version of this dataset", param="cursor")
            version = pinned
        info = self.version(owner, dataset_id, version)
        base = key_base(info.generation)
        where = ["key >= ?", "key < ?"]
        params: list[Any] = [base, base + info.record_count]
        if request.where is not None:
            sql, extra = compile_filter(request.where)
            where.append(sql)
            params += extra
        sorted_query = bool(request.sort)
        if not sorted_query and position is not None:
            where.append("key > ?")
            params.append(base + position)
        sql = f"SELECT key - {base}, data FROM {_table(dataset_id)} WHERE {' AND '.join(where)} ORDER BY {order_by(request.sort)} LIMIT ?"
        params.append(request.limit + 1)
        if sorted_query:
            sql += " OFFSET ?"
            params.append(position or 0)
        rows = self._reader.execute(sql, params).fetchall()
        page = rows[: request.limit]
        records = [Record(index=idx, data=project(json.loads(text), request.fields)) for idx, text in page]
        next_cursor = None
        if len(rows) > request.limit:
            mark = (position or 0) + request.limit if sorted_query else page[-1][0]
            next_cursor = _make_cursor(info.version, mark, fingerprint)
        return records, next_cursor, info.version


class Staging:
    """A derive's output in the making: rows are written in batches, the version appears at commit."""

    def __init__(self, store: DataStore, owner: str, source: VersionInfo, target: str, generation: int, new_name: str | None) -> None:
        self._store = store
        self.owner = owner
        self.source = source
        self.target = target
        self.generation = generation
        self.new_name = new_name
        self.count = 0

    def write(self, records: Iterable[str]) -> None:
        base = key_base(self.generation) + self.count
        rows = [(base + i, text) for i, text in enumerate(records)]
        if not rows:
            return
        with self._store._write() as db:
            db.executemany(f"INSERT INTO {_table(self.target)} (key, data) VALUES (?, ?)", rows)
        self.count += len(rows)

    def commit(self, pipeline: list[Any]) -> VersionRef:
        now = int(time.time())
        with self._store._write() as db:
            # The source may have been deleted meanwhile: then nothing is committed.
            self._store._row(self.owner, self.source.dataset_id, db)
            if self.new_name is not None:
                if db.execute("SELECT 1 FROM datasets WHERE owner = ? AND name = ?", (self.owner, self.new_name)).fetchone():
                    raise LLMOSError("already_exists", f"you already have a dataset named {self.new_name!r}", param="name")
                db.execute("INSERT INTO datasets VALUES (?, ?, ?, NULL, NULL, '[]', ?, 1)", (self.target, self.owner, self.new_name, now))
                version = 1
            else:
                version = 1 + db.execute("SELECT latest FROM datasets WHERE id = ?", (self.target,)).fetchone()[0]
                db.execute("UPDATE datasets SET latest = ? WHERE id = ?", (version, self.target))
            db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?, 'derive', ?, ?, ?, ?)",
                       (self.target, version, self.generation, self.count, now, self.source.dataset_id, self.source.version,
                        json.dumps(pipeline), self.source.record_count))
        self._release()
        return VersionRef(dataset_id=self.target, version=version)

    def _release(self) -> None:
        if self.new_name is None:
            self._store.release(self.target, self.generation)

    def abandon(self) -> None:
        with self._store._write() as db:
            if self.new_name is not None:
                if not db.execute("SELECT 1 FROM datasets WHERE id = ?", (self.target,)).fetchone():
                    db.execute(f"DROP TABLE IF EXISTS {_table(self.target)}")
            elif db.execute("SELECT 1 FROM datasets WHERE id = ?", (self.target,)).fetchone():
                db.execute(f"DELETE FROM {_table(self.target)} WHERE key >= ? AND key < ?", (key_base(self.generation), key_base(self.generation + 1)))
        self._release()


# ---------------------------------------------------------------- cursors


def _fingerprint(dataset_id: str, request: QueryRequest) -> str:
    shape = request.model_dump(mode="json", include={"where", "sort", "fields"})
    return hashlib.sha256((dataset_id + json.dumps(shape, sort_keys=True)).encode()).hexdigest()[:16]


def _make_cursor(version: int, mark: int, fingerprint: str) -> str:
    raw = json.dumps([version, mark, fingerprint], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_cursor(cursor: str, fingerprint: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, mark, print_ = json.loads(raw)
        valid = isinstance(version, int) and isinstance(mark, int) and version >= 1 and mark >= 0 and isinstance(print_, str)
    except (ValueError, TypeError):
        valid = False
    if not valid:
        raise LLMOSError("cursor_invalid", "the cursor is not one this server issued", param="cursor")
    if print_ != fingerprint:
        raise LLMOSError("cursor_invalid", "the cursor belongs to a different query (where, sort and fields must stay the same)", param="cursor")
    return version, mark
