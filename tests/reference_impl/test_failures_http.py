"""Failures after the 200 become an error event then [DONE]; a kill -9 mid-upload leaves the registry consistent."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

from reference_impl.app import engine_loader
from reference_impl.engine import Delta, EngineError, SamplingParams, TextModel
from reference_impl.registry import InstalledVersion, Registry
from reference_impl.runtime import Closable, Loader
from reference_impl.settings import Settings
from tests.support.server import free_port, running_server


def failing_after(deltas: int) -> Any:
    """A loader whose text models break after ``deltas`` deltas: the engine failing mid-generation."""

    def make(registry: Registry, settings: Settings) -> Loader:
        real = engine_loader(registry, settings)

        def load(version: InstalledVersion) -> Closable:
            model = real(version)
            if isinstance(model, TextModel):
                original = model.generate

                async def generate(prompt: str, params: SamplingParams, *, chat: bool, **options: Any) -> AsyncIterator[Delta]:
                    count = 0
                    async for delta in original(prompt, params, chat=chat, **options):
                        if count == deltas:
                            raise EngineError("injected failure")
                        count += 1
                        yield delta

                model.generate = generate  # type: ignore[method-assign]
            return model

        return load

    return make


def test_engine_failure_mid_stream_is_an_error_event_then_done(tmp_path: Path, tiny_llama_dir: Path) -> None:
    with running_server(Settings(insecure_local=True, data_dir=tmp_path, models=[tiny_llama_dir]), loader=failing_after(2)) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=60) as http:
        name = http.get("/v1/models").json()["data"][0]["id"]
        body = {"model": name, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20, "stream": True}
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            raw = b"".join(response.iter_raw()).decode()
        events = [line[len("data: "):] for line in raw.split("\n\n") if line]
        assert events[-1] == "[DONE]"
        error = json.loads(events[-2])
        assert error["error"]["code"] == "engine_error" and "injected" not in error["error"]["message"]
        assert sum(1 for e in events[:-2] if json.loads(e)["choices"][0]["delta"].get("content")) == 2
        plain = http.post("/v1/chat/completions", json={**body, "stream": False})
        assert (plain.status_code, plain.json()["error"]["code"]) == (500, "engine_error")
        assert http.get("/llmos/v1/health/ready").status_code == 200


def _serve(data_dir: Path, model: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "reference_impl.cli", "serve", "--port", str(port), "--data-dir", str(data_dir), "--model", str(model)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            if httpx.get(f"{base}/llmos/v1/health/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError("server not ready")


def test_kill_9_during_upload_then_restart_finds_the_registry_consistent(tmp_path: Path, tiny_llama_dir: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = _serve(tmp_path, tiny_llama_dir, port)
    digest = "sha256:" + "1" * 64
    try:
        _wait_ready(base, process)

        def slow_body() -> Iterator[bytes]:
            for _ in range(200):
                yield b"x" * 65536
                time.sleep(0.01)

        def upload() -> None:
            try:
                httpx.put(f"{base}/llmos/v1/blobs/{digest}", content=slow_body(), headers={"content-type": "application/octet-stream"}, timeout=30)
            except httpx.TransportError:
                pass  # the server dies under it: that is the point

        import threading

        uploader = threading.Thread(target=upload)
        uploader.start()
        time.sleep(0.5)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        uploader.join(30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    with running_server(Settings(insecure_local=True, data_dir=tmp_path, models=[tiny_llama_dir])) as srv, httpx.Client(base_url=srv.base_url, timeout=60) as http:
        assert http.head(f"/llmos/v1/blobs/{digest}").status_code == 404
        leftovers = [p for p in (tmp_path / "registry" / "tmp").rglob("*") if p.is_file()] if (tmp_path / "registry" / "tmp").exists() else []
        assert leftovers == []
        models = http.get("/v1/models").json()["data"]
        assert len(models) == 1 and models[0]["state"] == "ready"
        name = models[0]["id"]
        assert http.post("/v1/chat/completions", json={"model": name, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).status_code == 200


def test_a_client_that_disconnects_cancels_its_generation(tmp_path: Path, tiny_llama_dir: Path) -> None:
    with running_server(Settings(insecure_local=True, data_dir=tmp_path / "data", models=[tiny_llama_dir])) as srv, \
            httpx.Client(base_url=srv.base_url, timeout=60) as http:
        version = srv.app.state.registry.versions("tiny-llama")[0]
        model = srv.app.state.runtime.loaded(version)
        assert isinstance(model, TextModel)
        body = {"model": "tiny-llama", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 400, "stream": True}
        with http.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            next(response.iter_raw())  # generation has begun; leaving the block drops the connection
        deadline = time.monotonic() + 30
        while model.stats.requests_cancelled < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert model.stats.requests_cancelled == 1
        assert model.stats.active == 0 and model.stats.tokens_generated < 400
        assert http.get("/llmos/v1/health/ready").status_code == 200


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_an_upload_cut_short_keeps_nothing_and_is_no_server_error(tmp_path: Path, tiny_llama_dir: Path) -> None:
    data = b"x" * 4096
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    seen = _Records()
    for name in ("uvicorn.error", "llmos"):
        logging.getLogger(name).addHandler(seen)
    try:
        with running_server(Settings(insecure_local=True, data_dir=tmp_path / "data", models=[tiny_llama_dir])) as srv, \
                httpx.Client(base_url=srv.base_url, timeout=30) as http:
            port = int(srv.base_url.rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port)) as raw:
                head = f"PUT /llmos/v1/blobs/{digest} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n"
                raw.sendall(head.encode() + data[:1000])
                time.sleep(0.3)  # the server is reading the body when the client goes
            deadline = time.monotonic() + 10
            while list((tmp_path / "data" / "registry" / "tmp").iterdir()) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert list((tmp_path / "data" / "registry" / "tmp").iterdir()) == []
            assert http.head(f"/llmos/v1/blobs/{digest}").status_code == 404
            assert http.get("/llmos/v1/health/ready").status_code == 200
    finally:
        for name in ("uvicorn.error", "llmos"):
            logging.getLogger(name).removeHandler(seen)
    assert [r.getMessage() for r in seen.records] == []
