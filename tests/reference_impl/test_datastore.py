"""The SQLite dataset store: SQL queries agree with the standard's semantics, pages are complete, crashes lose nothing committed."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmos_std.errors import LLMOSError
from llmos_std.query import QueryRequest, SortKey, matches, order, project
from reference_impl.datastore import DataStore, dumps

REPO = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).with_name("datastore_crash_helper.py")
OWNER = "alice"

names = st.sampled_from(["a", "b", "c"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from([0.5, 1.0, -2.5]), st.sampled_from(["", "x", "xy", "y", "ab", "é"]))
values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(names, scalars, max_size=2))
records = st.lists(st.dictionaries(names, values, max_size=3), min_size=1, max_size=12)
paths = st.sampled_from(["a", "b", "c", "a.b", "b.c"])


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda f, v: {"op": "eq", "field": f, "value": v}, paths, scalars),
        st.builds(lambda o, f, v: {"op": o, "field": f, "value": v}, st.sampled_from(["lt", "le", "gt", "ge"]), paths,
                  st.one_of(st.integers(-5, 5), st.sampled_from([0.5, "x", "y", ""]))),
        st.builds(lambda f, vs: {"op": "in", "field": f, "values": vs}, paths, st.lists(scalars, min_size=1, max_size=3)),
        st.builds(lambda f, v: {"op": "contains", "field": f, "value": v}, paths, scalars),
        st.builds(lambda f, v: {"op": "prefix", "field": f, "value": v}, paths, st.sampled_from(["", "x", "a", "é"])),
        st.builds(lambda f: {"op": "exists", "field": f}, paths),
    )


filters = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.builds(lambda of: {"op": "and", "of": of}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda of: {"op": "or", "of": of}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda of: {"op": "not", "of": of}, inner),
    ),
    max_leaves=6,
)
sorts = st.lists(st.builds(lambda f, o: {"field": f, "order": o}, paths, st.sampled_from(["asc", "desc"])), max_size=2)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> DataStore:
    return DataStore(tmp_path_factory.mktemp("store") / "datasets.sqlite")


def _dataset(store: DataStore, rows: list[dict[str, Any]], indexes: list[str] = []) -> str:
    dataset = store.create(OWNER, f"d{time.monotonic_ns()}", None, None, indexes)
    store.append(OWNER, dataset.id, [dumps(r) for r in rows])
    return dataset.id


def _all_pages(store: DataStore, dataset_id: str, body: dict[str, Any], version: int | None = None) -> list[tuple[int, dict[str, Any]]]:
    seen: list[tuple[int, dict[str, Any]]] = []
    cursor = None
    while True:
        request = QueryRequest.model_validate({**body, **({"cursor": cursor} if cursor else {})})
        page, cursor, _ = store.query(OWNER, dataset_id, version, request)
        seen += [(r.index, r.data) for r in page]
        if cursor is None:
            return seen


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=records, where=filters, sort=sorts, limit=st.integers(1, 5), indexed=st.booleans())
def test_sql_answers_equal_the_standard_semantics(store: DataStore, rows: list[dict[str, Any]], where: dict[str, Any], sort: list[dict[str, Any]], limit: int, indexed: bool) -> None:
    dataset_id = _dataset(store, rows, ["a", "a.b"] if indexed else [])
    request = QueryRequest.model_validate({"where": where, "sort": sort, "limit": limit})
    expected = [(i, project(r, None)) for i, r in order([(i, r) for i, r in enumerate(rows) if request.where and matches(request.where, r)],
                                                        [SortKey.model_validate(k) for k in sort])]
    assert _all_pages(store, dataset_id, {"where": where, "sort": sort, "limit": limit}) == expected


def test_projection_keeps_nesting_and_drops_missing_paths(store: DataStore) -> None:
    dataset_id = _dataset(store, [{"a": {"b": 1, "c": 2}, "d": 3}, {"d": 4}])
    assert _all_pages(store, dataset_id, {"fields": ["a.b", "d"]}) == [(0, {"a": {"b": 1}, "d": 3}), (1, {"d": 4})]


def test_a_cursor_pins_its_version_while_records_are_appended(store: DataStore) -> None:
    dataset_id = _dataset(store, [{"n": i} for i in range(10)])
    first, cursor, version = store.query(OWNER, dataset_id, None, QueryRequest(limit=4))
    store.append(OWNER, dataset_id, [dumps({"n": 100 + i}) for i in range(5)])
    rest = []
    while cursor:
        page, cursor, read = store.query(OWNER, dataset_id, None, QueryRequest(limit=4, cursor=cursor))
        assert read == version
        rest += page
    assert [r.data["n"] for r in first + rest] == list(range(10))


def test_a_cursor_is_refused_with_another_query_or_version(store: DataStore) -> None:
    dataset_id = _dataset(store, [{"n": i} for i in range(5)])
    _, cursor, version = store.query(OWNER, dataset_id, None, QueryRequest(limit=2))
    assert cursor is not None
    with pytest.raises(LLMOSError) as other_query:
        store.query(OWNER, dataset_id, None, QueryRequest.model_validate({"limit": 2, "cursor": cursor, "where": {"op": "exists", "field": "n"}}))
    with pytest.raises(LLMOSError) as other_version:
        store.query(OWNER, dataset_id, version - 1, QueryRequest(limit=2, cursor=cursor))
    with pytest.raises(LLMOSError) as garbage:
        store.query(OWNER, dataset_id, None, QueryRequest(limit=2, cursor="not-a-cursor"))
    assert {other_query.value.code, other_version.value.code, garbage.value.code} == {"cursor_invalid"}


def test_other_owners_see_nothing(store: DataStore) -> None:
    dataset_id = _dataset(store, [{"n": 1}])
    with pytest.raises(LLMOSError) as seen:
        store.get("mallory", dataset_id)
    assert seen.value.code == "dataset_not_found"
    assert store.list_datasets("mallory", after=None, limit=10) == ([], None)


def test_export_reads_a_version_in_bounded_batches(store: DataStore) -> None:
    dataset_id = _dataset(store, [{"n": i} for i in range(7)])
    store.append(OWNER, dataset_id, [dumps({"n": 7})])
    old = store.version(OWNER, dataset_id, 2)
    assert [json.loads(text)["n"] for _, text in store.iter_records(old, batch=3)] == list(range(7))


def _invariants(path: Path) -> tuple[int, int]:
    """Every version sees exactly its rows, and no unreferenced rows or tables survive recovery."""
    store = DataStore(path)
    try:
        db = store._writer
        versions = db.execute("SELECT dataset_id, version, generation, record_count FROM versions").fetchall()
        for dataset_id, _version, generation, count in versions:
            base = generation << 40
            rows = db.execute(f'SELECT count(*), ifnull(max(key) - ?, -1) FROM "r_{dataset_id}" WHERE key >= ? AND key < ?', (base, base, base + count)).fetchone()
            assert rows == (count, count - 1)
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 'r_ds_%'").fetchall():
            used = {g for d, _, g, _ in versions if f"r_{d}" == table}
            assert used, f"{table} belongs to no dataset"
            stray = db.execute(f'SELECT count(*) FROM "{table}" WHERE (key >> 40) NOT IN ({",".join("?" * len(used))})', sorted(used)).fetchone()[0]
            assert stray == 0
        return len(versions), db.execute("SELECT count(*) FROM datasets").fetchone()[0]
    finally:
        store.close()


@pytest.mark.parametrize("seed", range(6))
def test_sigkill_at_any_moment_leaves_the_last_committed_versions_intact(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "datasets.sqlite"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, str(HELPER), str(path), str(seed)], env=env, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "started"
    time.sleep(0.3 + random.Random(seed).random() * 1.2)
    process.send_signal(signal.SIGKILL)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    committed = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    versions, _datasets = _invariants(path)
    assert versions >= len(committed)
    # Every version the helper saw committed is still there with its records.
    store = DataStore(path)
    try:
        for entry in committed:
            info = store.version(OWNER, entry["dataset"], entry["version"])
            assert info.record_count == entry["record_count"]
    finally:
        store.close()
