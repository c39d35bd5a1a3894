"""Runs `transformers serve` (the OpenAI-compatible server inside `transformers`) as a third-party test target.

The server is pinned to one local model directory (preloaded before it listens), so ``GET /health`` answering
200 means the model is ready. Requests must name the model exactly as ``os.path.abspath(model_dir)`` (the id that
``GET /v1/models`` lists) or leave ``model`` out; any other name gets a 400.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from tests.support.server import free_port

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",  # the CLI otherwise asks PyPI for a newer transformers at start-up
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "PYTHONUNBUFFERED": "1",
}


def _output(log: IO[bytes], limit: int = 6000) -> str:
    log.seek(0)
    text = log.read().decode("utf-8", errors="replace")
    return text[-limit:] if text else "(no output)"


def _stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


@contextmanager
def transformers_serve(
    model_dir: Path, *, device: str = "cpu", startup_timeout: float = 120.0
) -> Iterator[str]:
    """Serve `model_dir` with `transformers serve` on a free 127.0.0.1 port; yields its origin (http://127.0.0.1:PORT).

    Start-up output is captured and quoted in the error if the server exits or is not ready in `startup_timeout`;
    on exit that one process is terminated (killed after 15 s).
    """
    port = free_port()
    command = [
        sys.executable, "-m", "transformers.cli.transformers", "serve", os.path.abspath(model_dir),
        "--host", "127.0.0.1", "--port", str(port), "--device", device,
    ]  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile(prefix="transformers-serve-") as log:
        proc = subprocess.Popen(
            command, env={**os.environ, **OFFLINE_ENV}, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + startup_timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"`transformers serve` exited with status {proc.returncode} during start-up:\n{_output(log)}"
                    )
                try:
                    if httpx.get(f"{base_url}/health", timeout=2.0).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"`transformers serve` not ready after {startup_timeout:.0f}s:\n{_output(log)}")
                time.sleep(0.2)
            yield base_url
        finally:
            _stop(proc)
