"""Runs a real reference server (uvicorn on a free 127.0.0.1 port) for the duration of a test."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from reference_impl.app import create_app
from reference_impl.settings import Settings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    base_url: str
    app: Any
    server: uvicorn.Server


@contextmanager
def serving(app: Any, port: int, *, startup_timeout: float = 120.0) -> Iterator[RunningServer]:
    """Serves any ASGI app on 127.0.0.1:port in a thread; stopped (lifespan shutdown included) on exit."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the server exited during start-up")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError("the server did not start in time")
        time.sleep(0.05)
    try:
        yield RunningServer(f"http://127.0.0.1:{port}", app, server)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def running_server(settings: Settings, *, startup_timeout: float = 120.0, **app_kwargs: Any) -> Iterator[RunningServer]:
    """The reference server on ``settings`` (host and port replaced by loopback and a free port)."""
    port = free_port()
    settings = settings.model_copy(update={"host": "127.0.0.1", "port": port})
    with serving(create_app(settings, **app_kwargs), port, startup_timeout=startup_timeout) as running:
        yield running
