"""The kit's transport discipline: a stale keep-alive connection is retried once on a fresh one; a
failure on a fresh connection is the target's (LLMOS issue 8, item 3)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from conformance.verdicts import CheckFailed
from conformance.wire import Wire

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@contextmanager
def raw_server(handle: str) -> Iterator[tuple[str, list[int]]]:
    """A loopback server that reads one request per connection; ``stale``: answers it (keep-alive
    advertised) and closes silently, as a server dropping an idle connection does; ``reset``: closes
    without answering. Yields the origin and a list counting connections."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.2)
    port = sock.getsockname()[1]
    connections: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            connections.append(1)
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    if handle == "stale":
                        conn.sendall(OK)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", connections
    finally:
        stop.set()
        thread.join(timeout=2)
        sock.close()


def test_a_request_on_a_connection_the_server_closed_is_retried_on_a_fresh_one() -> None:
    with raw_server("stale") as (origin, connections):
        wire = Wire(origin, origin, api_key=None, admin_key=None, timeout=5)
        try:
            assert wire.request("GET", "/v1/models").status == 200
            # The pooled connection is dead; without the retry this would read as the target's failure.
            assert wire.request("GET", "/v1/models").status == 200
        finally:
            wire.close()
    assert len(connections) == 2


def test_a_failure_on_a_fresh_connection_is_the_targets() -> None:
    with raw_server("reset") as (origin, connections):
        wire = Wire(origin, origin, api_key=None, admin_key=None, timeout=5)
        try:
            with pytest.raises(CheckFailed) as failed:
                wire.request("GET", "/v1/models")
        finally:
            wire.close()
    assert "transport failure" in failed.value.seen or "broke off" in failed.value.seen
    assert len(connections) == 1  # judged at once: nothing to blame on a stale pool


def test_curl_lines_carry_whole_bodies_and_never_a_key() -> None:
    wire = Wire("http://127.0.0.1:9", "http://127.0.0.1:9", api_key="llmos-secret-key-0123", admin_key=None)
    try:
        with pytest.raises(CheckFailed) as failed:
            wire.request("POST", "/v1/completions", json_body={"model": "m", "prompt": "x" * 5000})
    finally:
        wire.close()
    curl = failed.value.exchange.curl(wire.secrets)
    assert "x" * 5000 in curl and "llmos-secret-key-0123" not in curl and "Bearer <redacted>" in curl
