"""Datasets at scale over real HTTP: append rate, query latency, export memory, derive rate, beside SQLite's own ceiling.

Serves the reference server (data only, no model) in a subprocess so that its RSS is its own, then:
  * raw SQLite: the same rows inserted with one executemany in one transaction (the ceiling);
  * append: 1 KB records as JSON Lines, 5,000 per request, records/s;
  * query p50/p95 of the first page: indexed equality, a range and `contains` (both full scans);
  * export of the whole dataset, with the server's peak RSS before and after (flat means streamed);
  * derive of a smaller dataset through strip + lowercase + dedupe + redact_pii, records/s.

    .venv/bin/python bench/data_bench.py                       # 1,000,000 records, derive 100,000
    .venv/bin/python bench/data_bench.py --records 200000 --derive-records 20000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.server import free_port  # noqa: E402

BATCH = 5000
WORDS = ("order", "refund", "broken", "ARRIVED", "late", "Hello", "café", "support", "ticket", "thanks", "please", "help")
SERVER = """
import sys, uvicorn
from pathlib import Path
from reference_impl.app import create_app
from reference_impl.settings import Settings
settings = Settings(insecure_local=True, bundled_defaults=False, data_dir=Path(sys.argv[1]), port=int(sys.argv[2]))
uvicorn.run(create_app(settings), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def record(rng: random.Random, n: int) -> dict[str, object]:
    """About 1 KB: a text with an email and a phone in some, a language, a score and tags."""
    words = " ".join(rng.choice(WORDS) for _ in range(150))
    text = f"  {words[:900]} contact {'user%d@example.com' % n if n % 7 == 0 else 'nobody'} call +1 555 123 {n % 10000:04d}  "
    return {"n": n, "lang": ("en", "fr", "de", "es", "it", "pt", "nl", "sv", "pl", "ja")[n % 10], "score": rng.random(), "tags": [rng.choice(WORDS)], "text": text}


def jsonl(rows: list[dict[str, object]]) -> bytes:
    return ("\n".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in rows) + "\n").encode()


def batches(total: int, seed: int) -> Iterator[list[dict[str, object]]]:
    rng = random.Random(seed)
    for start in range(0, total, BATCH):
        yield [record(rng, n) for n in range(start, min(total, start + BATCH))]


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak(pid: int) -> None:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def sqlite_ceiling(path: Path, total: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE r (key INTEGER PRIMARY KEY, data TEXT NOT NULL)")
    texts = [[json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in batch] for batch in batches(total, 1)]
    started = time.perf_counter()
    conn.execute("BEGIN")
    idx = 0
    for batch in texts:
        conn.executemany("INSERT INTO r VALUES (?, ?)", ((idx + i, t) for i, t in enumerate(batch)))
        idx += len(batch)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return total / elapsed


def timed(client: httpx.Client, method: str, url: str, runs: int, **kwargs: object) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
        response.raise_for_status()
        samples.append(time.perf_counter() - started)
    return samples


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def append_all(client: httpx.Client, dataset: str, total: int, seed: int) -> float:
    payloads = [jsonl(batch) for batch in batches(total, seed)]  # built first: the timing is the server's
    started = time.perf_counter()
    for body in payloads:
        client.post(f"/llmos/v1/datasets/{dataset}/records", content=body, headers={"content-type": "application/jsonl"}).raise_for_status()
    return total / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--derive-records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ceiling = sqlite_ceiling(Path(tmp) / "raw.sqlite", args.records)
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(Path(tmp) / "data"), str(port)], env=env)
        try:
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
            for _ in range(300):
                try:
                    if client.get("/llmos/v1/health/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            big = client.post("/llmos/v1/datasets", json={"name": "big", "indexes": ["lang", "score"]}).json()["id"]
            rate = append_all(client, big, args.records, 1)
            print(f"records: {args.records:,} of ~1 KB")
            print(f"append (HTTP, JSON Lines, {BATCH}/request): {rate:,.0f} records/s   sqlite raw executemany: {ceiling:,.0f} records/s   ratio {rate / ceiling:.2f}")
            queries = {
                "indexed equality (lang = 'fr', first 100)": {"where": {"op": "eq", "field": "lang", "value": "fr"}, "limit": 100},
                "indexed range (score >= 0.999)": {"where": {"op": "ge", "field": "score", "value": 0.999}, "limit": 100},
                "contains (text contains 'user4200007@', full scan)": {"where": {"op": "contains", "field": "text", "value": "user4200007@"}, "limit": 100},
                "indexed equality sorted by score desc (first 100 of 10%)": {"where": {"op": "eq", "field": "lang", "value": "fr"}, "sort": [{"field": "score", "order": "desc"}], "limit": 100},
            }
            for name, body in queries.items():
                runs = args.runs if "full scan" not in name and "sorted" not in name else max(5, args.runs // 4)
                samples = timed(client, "POST", f"/llmos/v1/datasets/{big}/query", runs, json=body)
                print(f"query {name}: p50 {p(samples, 0.5):.1f} ms  p95 {p(samples, 0.95):.1f} ms  ({runs} runs)")
            reset_peak(server.pid)
            before = rss_kib(server.pid, "VmHWM")
            started = time.perf_counter()
            size = lines = 0
            with client.stream("GET", f"/llmos/v1/datasets/{big}/export") as response:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    lines += chunk.count(b"\n")
            elapsed = time.perf_counter() - started
            after = rss_kib(server.pid, "VmHWM")
            print(f"export: {lines:,} lines, {size / 1e6:,.0f} MB in {elapsed:.1f} s ({lines / elapsed:,.0f} records/s); server peak RSS {before / 1024:.0f} MiB before, {after / 1024:.0f} MiB during")
            small = client.post("/llmos/v1/datasets", json={"name": "small"}).json()["id"]
            append_all(client, small, args.derive_records, 2)
            pipeline = [{"op": "strip", "field": "text"}, {"op": "lowercase", "field": "text"}, {"op": "dedupe", "field": "text"}, {"op": "redact_pii", "field": "text"}]
            started = time.perf_counter()
            op = client.post(f"/llmos/v1/datasets/{small}/derive", json={"name": "small-clean", "pipeline": pipeline}).json()
            while op["status"] == "running":
                time.sleep(0.05)
                op = client.get(f"/llmos/v1/operations/{op['id']}").json()
            elapsed = time.perf_counter() - started
            print(f"derive strip+lowercase+dedupe+redact_pii: {args.derive_records:,} records in {elapsed:.1f} s = {args.derive_records / elapsed:,.0f} records/s ({op['status']})")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
