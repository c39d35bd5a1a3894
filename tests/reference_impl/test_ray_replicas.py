"""``llmos-ref serve --replicas 2``: two engine replicas on Ray Serve behind one endpoint, on the tiny models.

One server for the module (Ray and Serve take ~30 s to come up here). It runs in its own process group,
which the fixture ends as a whole: Ray's processes are children of the server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import free_port

READY_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def ray_server(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, tiny_bert_dir: Path) -> Iterator[str]:
    port = free_port()
    data = tmp_path_factory.mktemp("ray-data")
    log = (data.parent / "ray-server.log").open("wb")
    command = [sys.executable, "-m", "reference_impl.cli", "serve", "--replicas", "2", "--insecure-local", "--port", str(port),
               "--data-dir", str(data), "--model", str(tiny_llama_dir), "--model", str(tiny_bert_dir)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            assert process.poll() is None, f"the server exited: {(data.parent / 'ray-server.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, "the Ray-served endpoint did not become ready"
            try:
                health = httpx.get(f"{base}/llmos/v1/health/ready", timeout=5).json()
                if health.get("status") == "ok" and all(r["state"] == "ready" for r in health.get("replicas") or [None]):
                    break
            except (httpx.HTTPError, ValueError, TypeError):
                pass
            time.sleep(1)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)  # whatever of Ray's processes outlived the shutdown
        except ProcessLookupError:
            pass
        log.close()


def _health(base: str) -> dict[str, Any]:
    return dict(httpx.get(f"{base}/llmos/v1/health/ready", timeout=10).json())


def _versions(base: str) -> dict[str, dict[str, Any]]:
    """The active version of each model, by model name."""
    data = httpx.get(f"{base}/llmos/v1/models", timeout=10).json()["data"]
    return {m["name"]: next(v for v in m["versions"] if v["active"]) for m in data}


def _chat(base: str, **extra: Any) -> httpx.Response:
    body = {"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, **extra}
    return httpx.post(f"{base}/v1/chat/completions", json=body, timeout=60)


def _engine_pids(server_group: int | None = None) -> list[int]:
    """Process ids of the engine replica actors (Ray names their processes ``ray::EngineReplica``)."""
    out = subprocess.run(["pgrep", "-f", "ray::EngineReplica"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_health_reports_both_replicas_ready_with_every_loaded_version(ray_server: str) -> None:
    health = _health(ray_server)
    replicas = health["replicas"]
    assert [r["id"] for r in replicas] == ["engine-0", "engine-1"]
    loaded = {v["digest"] for v in _versions(ray_server).values() if v["state"] == "ready"}
    assert len(loaded) == 2
    for replica in replicas:
        assert replica["state"] == "ready"
        assert loaded <= set(replica["models"])


def test_chat_stream_and_embeddings_are_served_through_the_replicas(ray_server: str) -> None:
    first, again = _chat(ray_server, seed=5), _chat(ray_server, seed=5)
    assert first.status_code == 200, first.text
    assert first.json()["choices"][0]["message"]["content"] == again.json()["choices"][0]["message"]["content"]
    with httpx.stream("POST", f"{ray_server}/v1/chat/completions", timeout=60,
                      json={"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "stream": True}) as stream:
        lines = [line for line in stream.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]" and len(lines) >= 3
    vectors = httpx.post(f"{ray_server}/v1/embeddings", json={"model": "tiny-bert", "input": ["a", "b"]}, timeout=60)
    assert vectors.status_code == 200 and len(vectors.json()["data"]) == 2


def test_unload_and_load_apply_to_every_replica(ray_server: str) -> None:
    version = _versions(ray_server)["tiny-bert"]
    path = f"{ray_server}/llmos/v1/models/tiny-bert/versions/{version['version']}"
    assert httpx.post(f"{path}/unload", timeout=60).status_code == 202
    _wait(lambda: all(version["digest"] not in r["models"] for r in _health(ray_server)["replicas"]))
    assert httpx.post(f"{ray_server}/v1/embeddings", json={"model": "tiny-bert", "input": "a"}, timeout=30).status_code in (409, 503)
    assert httpx.post(f"{path}/load", timeout=60).status_code == 202
    _wait(lambda: httpx.get(path, timeout=10).json()["state"] == "ready")
    assert all(version["digest"] in r["models"] for r in _health(ray_server)["replicas"])
    assert httpx.post(f"{ray_server}/v1/embeddings", json={"model": "tiny-bert", "input": "a"}, timeout=30).status_code == 200


def test_a_killed_replica_fails_only_its_own_requests_cleanly_and_comes_back(ray_server: str) -> None:
    results: list[list[str]] = []

    def stream() -> None:
        body = {"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 400, "stream": True}
        with httpx.stream("POST", f"{ray_server}/v1/chat/completions", json=body, timeout=120) as response:
            results.append([line for line in response.iter_lines() if line.startswith("data: ")])

    workers = [threading.Thread(target=stream) for _ in range(2)]
    for worker in workers:
        worker.start()
    time.sleep(1.0)
    victim = _engine_pids()[0]
    os.kill(victim, signal.SIGKILL)
    for worker in workers:
        worker.join(timeout=120)
        assert not worker.is_alive(), "a stream hung after its replica was killed"
    for lines in results:
        assert lines[-1] == "data: [DONE]"
        last = json.loads(lines[-2].removeprefix("data: "))
        # Either the stream ran on the other replica and finished, or it ended with the standard's error.
        assert last.get("error", {}).get("code") == "not_ready" or last["choices"][0]["finish_reason"] in ("length", "stop")
    # Meanwhile the surviving replica serves; the restarted one reloads its models and is routed to again.
    assert _chat(ray_server).status_code == 200
    _wait(lambda: all(r["state"] == "ready" and len(r["models"]) == 2 for r in _health(ray_server)["replicas"]), timeout=120)
    assert victim not in _engine_pids()


def test_the_kit_passes_against_the_ray_served_endpoint(ray_server: str, tmp_path: Path) -> None:
    from conformance.cli import main

    report = tmp_path / "report.json"
    code = main(["run", "--base-url", ray_server, "--max-examples", "3", "--json", str(report)], environ={})
    data = json.loads(report.read_text())
    claimed = set(data["target"]["claimed_profiles"])
    bad = {r["id"]: [(c["name"], c["reason"]) for c in r["checks"] if c["verdict"] not in ("pass", "skipped")]
           for r in data["requirements"] if r["profile"] in claimed and r["verdict"] not in ("pass", "skipped")}
    assert bad == {}
    assert code == 0


def _wait(condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.5)
