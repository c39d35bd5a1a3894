"""The client against a real loopback HTTP server that answers from a table each test controls."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import JsonValue, ValidationError

from llmos_std.client import (
    APIError,
    AsyncLLMOSClient,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    LLMOSClient,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    StreamProtocolError,
    parse_retry_after,
)
from llmos_std.discovery import Health
from llmos_std.inference import ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, EmbeddingResponse
from llmos_std.management import ModelVersion

MODES = ["sync", "async"]

# ---------------------------------------------------------------- the server


@dataclass
class Reply:
    status: int = 200
    body: bytes | list[bytes] = b""
    """A list is sent with chunked transfer encoding, one flushed write per item."""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Route = Reply | Callable[[Received], Reply]


class _State:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.received: list[Received] = []
        self.lock = threading.Lock()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    state: _State

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that stops reading a stream early makes the writer fail; that is expected


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes; Nagle would delay the body
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def _serve(self) -> None:
        received = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self._body())
        state = self.server.state
        with state.lock:
            state.received.append(received)
            route = state.routes.get((self.command, self.path))
        if route is None:
            reply = Reply(404, _envelope("not_found", "no route", "not_found_error"))
        else:
            reply = route(received) if callable(route) else route
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if isinstance(reply.body, list):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for piece in reply.body:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
                time.sleep(0.001)  # let the client see the writes as separate reads
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve


@dataclass
class Server:
    url: str
    state: _State

    def route(self, method: str, path: str, reply: Route) -> None:
        self.state.routes[(method, path)] = reply

    @property
    def received(self) -> list[Received]:
        return self.state.received


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = _State()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield Server(f"http://127.0.0.1:{httpd.server_address[1]}", httpd.state)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


# ---------------------------------------------------------------- helpers


def run(mode: str, url: str, action: Callable[[Any], Any], **options: Any) -> Any:
    """Run ``action(client)`` on a sync or an async client, awaiting its result in the async case."""
    if mode == "sync":
        with LLMOSClient(url, **options) as client:
            return action(client)

    async def main() -> Any:
        async with AsyncLLMOSClient(url, **options) as client:
            return await action(client)

    return asyncio.run(main())


def collect(mode: str, url: str, method: str, request: Any, into: list[Any]) -> None:
    """Iterate a stream to its end, appending each chunk to ``into`` so that callers see what came before an error."""
    if mode == "sync":
        with LLMOSClient(url) as client, getattr(client, method)(request) as stream:
            for chunk in stream:
                into.append(chunk)
        return

    async def main() -> None:
        async with AsyncLLMOSClient(url) as client:
            async with await getattr(client, method)(request) as stream:
                async for chunk in stream:
                    into.append(chunk)

    asyncio.run(main())


def _envelope(code: str | None, message: str, type_: str, param: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}}).encode()


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


DIGEST = "sha256:" + "a" * 64
CHAT = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000, "model": "tiny",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}, "system_fingerprint": DIGEST,
}
REQUEST: dict[str, JsonValue] = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "tiny",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def _sse(*payloads: Any, done: bool = True) -> bytes:
    events = b"".join(b"data: " + json.dumps(p, ensure_ascii=False).encode() + b"\n\n" for p in payloads)
    return events + (b"data: [DONE]\n\n" if done else b"")


def _pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _version(state: str, version: str = "1.0.0") -> dict[str, Any]:
    return {"object": "llmos.model_version", "name": "tiny", "version": version, "digest": DIGEST, "state": state,
            "active": False, "installed_at": 1, "state_changed_at": 2, "owner": "alice"}


SSE = "text/event-stream"


# ---------------------------------------------------------------- plain operations


@pytest.mark.parametrize("mode", MODES)
def test_chat_completion_returns_the_typed_model_and_sends_auth(server: Server, mode: str) -> None:
    server.route("POST", "/v1/chat/completions", Reply(200, _json(CHAT)))
    result = run(mode, server.url, lambda c: c.chat_completion(REQUEST), api_key="sk-test")
    assert isinstance(result, ChatCompletionResponse)
    assert result.choices[0].message.content == "Hello"
    assert result.system_fingerprint == DIGEST
    (sent,) = server.received
    assert json.loads(sent.body) == REQUEST
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.headers["user-agent"].startswith("llmos-std-client/")
    assert sent.headers["content-type"] == "application/json"


@pytest.mark.parametrize("mode", MODES)
def test_model_requests_send_only_the_fields_set(server: Server, mode: str) -> None:
    server.route("POST", "/v1/chat/completions", Reply(200, _json(CHAT)))
    request = ChatCompletionRequest(model="tiny", messages=[{"role": "user", "content": "Hi"}], seed=3)  # type: ignore[list-item]
    run(mode, server.url, lambda c: c.chat_completion(request))
    assert json.loads(server.received[0].body) == {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "seed": 3}


@pytest.mark.parametrize("mode", MODES)
def test_strict_validation_does_not_coerce(server: Server, mode: str) -> None:
    server.route("POST", "/v1/chat/completions", Reply(200, _json({**CHAT, "created": "123"})))
    with pytest.raises(ResponseValidationError) as info:
        run(mode, server.url, lambda c: c.chat_completion(REQUEST))
    assert info.value.model is ChatCompletionResponse
    assert info.value.validation_error.errors()[0]["loc"] == ("created",)
    assert info.value.response.status_code == 200


def test_invalid_request_dict_fails_before_sending(server: Server) -> None:
    with LLMOSClient(server.url) as client:
        with pytest.raises(ValidationError):
            client.chat_completion({**REQUEST, "frobnicate": True})  # closed request model: unknown field
        with pytest.raises(ValueError, match="stream_"):
            client.chat_completion({**REQUEST, "stream": True})
    assert server.received == []


@pytest.mark.parametrize("mode", MODES)
def test_openai_paths_go_to_openai_base_url(server: Server, mode: str) -> None:
    embedding = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}],
                 "model": "emb", "usage": {"prompt_tokens": 1, "total_tokens": 1}}
    server.route("POST", "/openai/v1/embeddings", Reply(200, _json(embedding)))
    server.route("GET", "/llmos/v1/health/live", Reply(200, _json({"object": "llmos.health", "status": "ok"})))

    async def both_async(c: Any) -> Any:
        return await c.embeddings({"model": "emb", "input": "x"}), await c.health_live()

    def both_sync(c: Any) -> Any:
        return c.embeddings({"model": "emb", "input": "x"}), c.health_live()

    result, health = run(mode, server.url + "/", both_sync if mode == "sync" else both_async, openai_base_url=server.url + "/openai")
    assert isinstance(result, EmbeddingResponse) and isinstance(health, Health)
    assert [r.path for r in server.received] == ["/openai/v1/embeddings", "/llmos/v1/health/live"]


@pytest.mark.parametrize("mode", MODES)
def test_health_503_with_a_health_body_is_a_result(server: Server, mode: str) -> None:
    server.route("GET", "/llmos/v1/health/ready", Reply(503, _json({"object": "llmos.health", "status": "unavailable", "detail": "loading"})))
    health = run(mode, server.url, lambda c: c.health_ready())
    assert health.status == "unavailable"


def test_health_503_with_an_envelope_raises(server: Server) -> None:
    server.route("GET", "/llmos/v1/health/ready", Reply(503, _envelope("not_ready", "starting", "server_error")))
    with LLMOSClient(server.url) as client, pytest.raises(ServerError) as info:
        client.health_ready()
    assert info.value.code == "not_ready"


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "code", "type_", "cls"),
    [
        (400, "invalid_value", "invalid_request_error", BadRequestError),  # with a param, checked below
        (401, "missing_api_key", "authentication_error", AuthenticationError),
        (403, "insufficient_scope", "permission_error", PermissionDeniedError),
        (404, "model_not_found", "not_found_error", NotFoundError),  # the common "wrong model" case
        (409, "state_conflict", "conflict_error", ConflictError),
        (413, "payload_too_large", "invalid_request_error", PayloadTooLargeError),
        (429, "rate_limited", "rate_limit_error", RateLimitError),
        (500, "engine_error", "server_error", ServerError),
        (503, "not_ready", "server_error", ServerError),  # any 5xx is a ServerError
        (415, "unsupported_media_type", "invalid_request_error", APIError),  # no subclass: the base class
        (404, "vendor_specific", "not_found_error", NotFoundError),  # an unknown code is kept, spec is None
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_error_envelopes_map_to_classes(server: Server, mode: str, status: int, code: str, type_: str, cls: type[APIError]) -> None:
    server.route("POST", "/v1/chat/completions", Reply(status, _envelope(code, "nope", type_, "messages.0")))
    with pytest.raises(APIError) as info:
        run(mode, server.url, lambda c: c.chat_completion(REQUEST))
    error = info.value
    assert type(error) is cls
    assert (error.status, error.code, error.type, error.param, error.message) == (status, code, type_, "messages.0", "nope")
    assert error.response.status_code == status
    assert (error.spec is None) == (code == "vendor_specific")


@pytest.mark.parametrize("mode", MODES)
def test_rate_limit_carries_retry_after(server: Server, mode: str) -> None:
    server.route("GET", "/v1/models", Reply(429, _envelope("rate_limited", "slow down", "rate_limit_error"), {"Retry-After": "7"}))
    with pytest.raises(RateLimitError) as info:
        run(mode, server.url, lambda c: c.list_models())
    assert info.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),  # absent
        ("0", 0.0),  # retry now
        ("1.5", 1.5),  # tolerated decimal
        ("soon", None),  # invalid
        ("-3", None),  # negative delta is invalid
        ("inf", None),  # float() accepts it, HTTP does not
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    seconds = parse_retry_after(later)
    assert seconds is not None and 25 <= seconds <= 30
    assert parse_retry_after(format_datetime(datetime(2000, 1, 1, tzinfo=timezone.utc), usegmt=True)) == 0.0


@pytest.mark.parametrize("mode", MODES)
def test_non_envelope_error_body_keeps_the_response(server: Server, mode: str) -> None:
    server.route("GET", "/v1/models", Reply(502, b"<html>bad gateway</html>", content_type="text/html"))
    with pytest.raises(ServerError) as info:
        run(mode, server.url, lambda c: c.list_models())
    assert info.value.code is None and info.value.envelope is None
    assert "not an error envelope" in info.value.message
    assert info.value.response.text == "<html>bad gateway</html>"


# ---------------------------------------------------------------- streaming

TEXT = "héllo ✓"
TRANSCRIPT = (
    b": keep-alive\n\n"
    + _sse(_chunk({"role": "assistant", "content": ""}), _chunk({"content": "hé"}), _chunk({"content": "llo ✓"}), _chunk({}, "stop"))
)


@pytest.mark.parametrize("size", [2, 7, 1000])  # many tiny writes, splits inside "é"/"✓", one write
@pytest.mark.parametrize("mode", MODES)
def test_stream_parses_chunks_across_split_writes(server: Server, mode: str, size: int) -> None:
    server.route("POST", "/v1/chat/completions", Reply(200, _pieces(TRANSCRIPT, size), content_type=SSE))
    chunks: list[ChatCompletionChunk] = []
    collect(mode, server.url, "stream_chat_completion", REQUEST, chunks)
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == TEXT
    assert chunks[-1].choices[0].finish_reason == "stop"
    sent = server.received[0]
    assert json.loads(sent.body) == {**REQUEST, "stream": True}
    assert sent.headers["accept"] == SSE


@pytest.mark.parametrize("mode", MODES)
def test_text_completion_stream(server: Server, mode: str) -> None:
    piece = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "tiny",
             "choices": [{"index": 0, "text": "ok", "finish_reason": "length"}]}
    server.route("POST", "/v1/completions", Reply(200, [_sse(piece)], content_type=SSE))
    chunks: list[Any] = []
    collect(mode, server.url, "stream_completion", {"model": "tiny", "prompt": "p"}, chunks)
    assert [c.choices[0].text for c in chunks] == ["ok"]


@pytest.mark.parametrize("mode", MODES)
def test_stream_without_done_raises_after_the_chunks(server: Server, mode: str) -> None:
    server.route("POST", "/v1/chat/completions", Reply(200, [_sse(_chunk({"content": "a"}), done=False)], content_type=SSE))
    chunks: list[Any] = []
    with pytest.raises(StreamProtocolError, match="without data: \\[DONE\\]"):
        collect(mode, server.url, "stream_chat_completion", REQUEST, chunks)
    assert len(chunks) == 1


@pytest.mark.parametrize("mode", MODES)
def test_stream_error_event_raises_the_typed_error(server: Server, mode: str) -> None:
    body = _sse(_chunk({"content": "a"}), {"error": {"message": "engine died", "type": "server_error", "param": None, "code": "engine_error"}})
    server.route("POST", "/v1/chat/completions", Reply(200, _pieces(body, 50), content_type=SSE))
    chunks: list[Any] = []
    with pytest.raises(ServerError) as info:
        collect(mode, server.url, "stream_chat_completion", REQUEST, chunks)
    assert len(chunks) == 1
    assert (info.value.code, info.value.status, info.value.message) == ("engine_error", 500, "engine died")
    assert info.value.response.status_code == 200


@pytest.mark.parametrize("mode", MODES)
def test_stream_http_error_is_raised_by_the_call(server: Server, mode: str) -> None:
    server.route("POST", "/v1/chat/completions", Reply(404, _envelope("model_not_found", "no such model", "not_found_error", "model")))

    async def start(c: Any) -> Any:
        return await c.stream_chat_completion(REQUEST)

    with pytest.raises(NotFoundError) as info:  # raised before any iteration
        run(mode, server.url, (lambda c: c.stream_chat_completion(REQUEST)) if mode == "sync" else start)
    assert info.value.param == "model"


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(200, _json(CHAT)), StreamProtocolError),  # a JSON answer to a stream request
        (Reply(200, [b"event: chunk\n"], content_type=SSE), StreamProtocolError),  # grammar violation
        (Reply(200, [_sse({**_chunk({}), "created": "1"})], content_type=SSE), ResponseValidationError),  # strict chunk
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_stream_violations_raise(server: Server, mode: str, reply: Reply, error: type[Exception]) -> None:
    server.route("POST", "/v1/chat/completions", reply)
    with pytest.raises(error):
        collect(mode, server.url, "stream_chat_completion", REQUEST, [])


def test_stream_can_be_closed_early(server: Server) -> None:
    server.route("POST", "/v1/chat/completions", Reply(200, _pieces(TRANSCRIPT, 5), content_type=SSE))
    with LLMOSClient(server.url) as client:
        with client.stream_chat_completion(REQUEST) as stream:
            first = next(stream)
            assert stream.response.headers["content-type"] == SSE
        assert first.choices[0].delta.role == "assistant"
        assert stream.response.is_closed
        assert client.call("list_models").status_code == 404  # the client stays usable after an early close


def test_async_stream_can_be_closed_early(server: Server) -> None:
    server.route("POST", "/v1/chat/completions", Reply(200, _pieces(TRANSCRIPT, 5), content_type=SSE))

    async def main() -> bool:
        async with AsyncLLMOSClient(server.url) as client:
            stream = await client.stream_chat_completion(REQUEST)
            async with stream:
                await stream.__anext__()
            return stream.response.is_closed

    assert asyncio.run(main())


# ---------------------------------------------------------------- management and URLs


@pytest.mark.parametrize("mode", MODES)
def test_lifecycle_methods_build_urls_from_the_table(server: Server, mode: str) -> None:
    base = "/llmos/v1/models/tiny"
    for action in ("load", "unload", "activate"):
        server.route("POST", f"{base}/versions/1.0.0/{action}", Reply(202, _json(_version("loading"))))
    server.route("POST", f"{base}/rollback", Reply(202, _json(_version("ready"))))
    server.route("DELETE", f"{base}/versions/1.0.0", Reply(200, _json({"id": "tiny@1.0.0", "object": "llmos.model_version", "deleted": True})))

    def sync(c: Any) -> list[Any]:
        return [c.load("tiny", "1.0.0"), c.unload("tiny", "1.0.0"), c.activate("tiny", "1.0.0"), c.rollback("tiny"), c.delete_version("tiny", "1.0.0")]

    async def async_(c: Any) -> list[Any]:
        return [await c.load("tiny", "1.0.0"), await c.unload("tiny", "1.0.0"), await c.activate("tiny", "1.0.0"),
                await c.rollback("tiny"), await c.delete_version("tiny", "1.0.0")]

    results = run(mode, server.url, sync if mode == "sync" else async_)
    assert all(isinstance(r, ModelVersion) for r in results[:4]) and results[4].deleted
    assert [(r.method, r.path) for r in server.received] == [
        ("POST", f"{base}/versions/1.0.0/load"), ("POST", f"{base}/versions/1.0.0/unload"),
        ("POST", f"{base}/versions/1.0.0/activate"), ("POST", f"{base}/rollback"), ("DELETE", f"{base}/versions/1.0.0"),
    ]


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"name": "tiny", "version": "1.0.0+build.5"}, "/llmos/v1/models/tiny/versions/1.0.0%2Bbuild.5"),  # '+' is quoted
        ({"name": "a/b", "version": "1"}, "/llmos/v1/models/a%2Fb/versions/1"),  # a slash cannot add a segment
        ({"name": "..", "version": "1"}, "/llmos/v1/models/%2E%2E/versions/1"),  # dot segments are not resolved away
        ({"name": "x y", "version": "é"}, "/llmos/v1/models/x%20y/versions/%C3%A9"),  # space and non-ASCII
    ],
)
def test_path_params_are_url_quoted(server: Server, params: dict[str, str], path: str) -> None:
    with LLMOSClient(server.url) as client:
        assert client.call("get_model_version", path_params=params).status_code == 404
    assert server.received[0].path == path


def test_digest_colon_stays_literal_and_params_are_checked(server: Server) -> None:
    with LLMOSClient(server.url) as client:
        assert client.url("get_package", {"digest": DIGEST})[1] == f"{server.url}/llmos/v1/packages/{DIGEST}"
        with pytest.raises(ValueError, match="path parameters"):
            client.call("get_model_version", path_params={"name": "tiny"})
        with pytest.raises(ValueError, match="empty"):
            client.call("get_managed_model", path_params={"name": ""})
        with pytest.raises(KeyError):
            client.call("no_such_operation")


@pytest.mark.parametrize("mode", MODES)
def test_wait_for_version_polls_until_settled(server: Server, mode: str) -> None:
    states = iter(["loading", "loading", "ready"])
    server.route("GET", "/llmos/v1/models/tiny/versions/1.0.0", lambda _r: Reply(200, _json(_version(next(states)))))
    result = run(mode, server.url, lambda c: c.wait_for_version("tiny", "1.0.0", poll_interval=0.01))
    assert result.state == "ready"
    assert len(server.received) == 3


@pytest.mark.parametrize("mode", MODES)
def test_wait_for_version_times_out(server: Server, mode: str) -> None:
    server.route("GET", "/llmos/v1/models/tiny/versions/1.0.0", Reply(200, _json(_version("loading"))))
    with pytest.raises(TimeoutError, match="still 'loading'"):
        run(mode, server.url, lambda c: c.wait_for_version("tiny", "1.0.0", timeout=0.1, poll_interval=0.02))


# ---------------------------------------------------------------- packages


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def package(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    files = {
        "model.safetensors": bytes(range(256)) * 10_000,  # 2.5 MiB: several read chunks
        "config.json": b'{"model_type": "llama"}',
        "tokenizer.json": b'{"tokenizer": true}',
    }
    roles = {"model.safetensors": "weights", "config.json": "config", "tokenizer.json": "tokenizer"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    manifest = {
        "schema_version": "1", "name": "tiny", "version": "1.0.0", "kind": "causal-lm", "architecture": "LlamaForCausalLM",
        "format": "safetensors", "capabilities": ["text-generation"], "context_length": {"value": 128, "source": "config"},
        "license": "Apache-2.0",
        "files": [{"path": n, "digest": _digest(d), "size": len(d), "role": roles[n]} for n, d in files.items()],
    }
    (tmp_path / "llmos-package.json").write_text(json.dumps(manifest, indent=2))
    return tmp_path, files


@pytest.mark.parametrize("mode", MODES)
def test_upload_package_skips_blobs_the_server_has(server: Server, mode: str, package: tuple[Path, dict[str, bytes]]) -> None:
    directory, files = package
    present = _digest(files["config.json"])
    for data in files.values():
        path = f"/llmos/v1/blobs/{_digest(data)}"
        server.route("HEAD", path, Reply(200 if _digest(data) == present else 404))
        server.route("PUT", path, Reply(201, _json({"object": "llmos.blob", "digest": _digest(data), "size": len(data)})))
    server.route("POST", "/llmos/v1/packages", Reply(201, _json(_version("installed"))))

    result = run(mode, server.url, lambda c: c.upload_package(directory))
    assert isinstance(result, ModelVersion)
    puts = [r for r in server.received if r.method == "PUT"]
    assert sorted(r.path for r in puts) == sorted(f"/llmos/v1/blobs/{_digest(d)}" for d in files.values() if _digest(d) != present)
    for put in puts:
        assert put.body == next(d for d in files.values() if put.path.endswith(_digest(d)))
        assert put.headers["content-length"] == str(len(put.body))
        assert put.headers["content-type"] == "application/octet-stream"
    assert [r.method for r in server.received] == ["HEAD", "PUT", "HEAD", "HEAD", "PUT", "POST"]
    assert server.received[-1].body == (directory / "llmos-package.json").read_bytes()  # the manifest as written


@pytest.mark.parametrize("mode", MODES)
def test_put_blob_streams_an_iterator(server: Server, mode: str) -> None:
    data = b"abc" * 1000
    server.route("PUT", f"/llmos/v1/blobs/{_digest(data)}", Reply(201, _json({"object": "llmos.blob", "digest": _digest(data), "size": len(data)})))
    info = run(mode, server.url, lambda c: c.put_blob(_digest(data), iter([data[:1000], data[1000:]])))
    assert info.size == len(data)
    assert server.received[0].body == data
    assert server.received[0].headers["transfer-encoding"] == "chunked"


@pytest.mark.parametrize("mode", MODES)
def test_head_blob(server: Server, mode: str) -> None:
    server.route("HEAD", f"/llmos/v1/blobs/{DIGEST}", Reply(200))

    async def both_async(c: Any) -> Any:
        return await c.head_blob(DIGEST), await c.head_blob("sha256:" + "b" * 64)

    assert run(mode, server.url, (lambda c: (c.head_blob(DIGEST), c.head_blob("sha256:" + "b" * 64))) if mode == "sync" else both_async) == (True, False)


def test_install_and_get_package(server: Server, package: tuple[Path, dict[str, bytes]]) -> None:
    directory, _ = package
    manifest = json.loads((directory / "llmos-package.json").read_text())
    server.route("POST", "/llmos/v1/packages", Reply(201, _json(_version("installed"))))
    server.route("GET", f"/llmos/v1/packages/{DIGEST}", Reply(200, _json(manifest)))
    with LLMOSClient(server.url) as client:
        assert client.install_package(manifest).state == "installed"
        assert client.get_package(DIGEST).name == "tiny"
        with pytest.raises(ValidationError):
            client.install_package({**manifest, "version": "one"})  # not SemVer: refused before sending
    assert json.loads(server.received[0].body) == manifest
    assert len(server.received) == 2


# ---------------------------------------------------------------- retries

MODELS = _json({"object": "list", "data": []})
UNAVAILABLE = _envelope("not_ready", "warming up", "server_error")
LIMITED = _envelope("rate_limited", "slow down", "rate_limit_error")


def _replies(*replies: Reply) -> Callable[[Received], Reply]:
    """A route that answers each request with the next reply, repeating the last one."""
    queue = list(replies)
    return lambda _r: queue.pop(0) if len(queue) > 1 else queue[0]


def _recorded_sleep(mode: str, into: list[float]) -> Any:
    """A sleep that records the wait instead of waiting, for a sync or an async client."""
    if mode == "sync":
        return into.append

    async def sleep(seconds: float) -> None:
        into.append(seconds)

    return sleep


@pytest.mark.parametrize("mode", MODES)
def test_retries_honour_retry_after_then_succeed(server: Server, mode: str) -> None:
    refusal = Reply(503, UNAVAILABLE, {"Retry-After": "0"})
    server.route("GET", "/v1/models", _replies(refusal, refusal, Reply(200, MODELS)))
    waits: list[float] = []
    result = run(mode, server.url, lambda c: c.list_models(), max_retries=2, sleep=_recorded_sleep(mode, waits))
    assert result.data == []
    assert len(server.received) == 3 and waits == [0.0, 0.0]


@pytest.mark.parametrize("mode", MODES)
def test_retries_really_wait_retry_after(server: Server, mode: str) -> None:
    server.route("GET", "/v1/models", _replies(Reply(429, LIMITED, {"Retry-After": "0.2"}), Reply(200, MODELS)))
    started = time.monotonic()
    run(mode, server.url, lambda c: c.list_models(), max_retries=1)  # the default sleep
    assert time.monotonic() - started >= 0.2
    assert len(server.received) == 2


@pytest.mark.parametrize("mode", MODES)
def test_no_retries_by_default(server: Server, mode: str) -> None:
    server.route("GET", "/v1/models", _replies(Reply(503, UNAVAILABLE, {"Retry-After": "0"}), Reply(200, MODELS)))
    waits: list[float] = []
    with pytest.raises(ServerError) as info:
        run(mode, server.url, lambda c: c.list_models(), sleep=_recorded_sleep(mode, waits))
    assert info.value.code == "not_ready"
    assert len(server.received) == 1 and waits == []


@pytest.mark.parametrize("mode", MODES)
def test_retries_give_up_with_the_last_error(server: Server, mode: str) -> None:
    server.route("GET", "/v1/models", Reply(429, LIMITED, {"Retry-After": "0"}))
    waits: list[float] = []
    with pytest.raises(RateLimitError) as info:
        run(mode, server.url, lambda c: c.list_models(), max_retries=2, sleep=_recorded_sleep(mode, waits))
    assert info.value.retry_after == 0.0
    assert len(server.received) == 3 and len(waits) == 2


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, [0.5, 1.0, 1.5]),  # no Retry-After: 0.5 * 2**n, the third wait capped at 1.5
        ({"Retry-After": "soon"}, [0.5, 1.0, 1.5]),  # an invalid Retry-After counts as absent
        ({"Retry-After": "100"}, [1.5, 1.5, 1.5]),  # the server asks for more than the cap
        ({"Retry-After": "0.25"}, [0.25, 0.25, 0.25]),  # under the cap: exactly what was asked
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_retry_waits(server: Server, mode: str, headers: dict[str, str], expected: list[float]) -> None:
    server.route("GET", "/v1/models", Reply(503, UNAVAILABLE, headers))
    waits: list[float] = []
    with pytest.raises(ServerError):
        run(mode, server.url, lambda c: c.list_models(), max_retries=3, max_retry_wait=1.5, sleep=_recorded_sleep(mode, waits))
    assert waits == expected


@pytest.mark.parametrize(
    ("status", "code", "type_"),
    [
        (500, "engine_error", "server_error"),  # the server may have done the work: not safe to resend
        (502, "engine_error", "server_error"),  # only 503 among the 5xx says "not now"
        (409, "model_not_loaded", "conflict_error"),  # waiting does not fix a conflict
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_other_errors_are_not_retried(server: Server, mode: str, status: int, code: str, type_: str) -> None:
    server.route("POST", "/v1/chat/completions", Reply(status, _envelope(code, "no", type_), {"Retry-After": "0"}))
    with pytest.raises(APIError) as info:
        run(mode, server.url, lambda c: c.chat_completion(REQUEST), max_retries=3, sleep=_recorded_sleep(mode, []))
    assert info.value.status == status
    assert len(server.received) == 1


@pytest.mark.parametrize("mode", MODES)
def test_health_503_is_an_answer_not_retried(server: Server, mode: str) -> None:
    server.route("GET", "/llmos/v1/health/ready", Reply(503, _json({"object": "llmos.health", "status": "unavailable"})))
    health = run(mode, server.url, lambda c: c.health_ready(), max_retries=3, sleep=_recorded_sleep(mode, []))
    assert health.status == "unavailable"
    assert len(server.received) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_body_sent_from_an_iterator_is_not_retried(server: Server, mode: str) -> None:
    server.route("PUT", f"/llmos/v1/blobs/{DIGEST}", Reply(503, UNAVAILABLE, {"Retry-After": "0"}))
    with pytest.raises(ServerError):
        run(mode, server.url, lambda c: c.put_blob(DIGEST, iter([b"abc"])), max_retries=3, sleep=_recorded_sleep(mode, []))
    assert len(server.received) == 1  # the iterator is spent: sending again would send nothing


@pytest.mark.parametrize("mode", MODES)
def test_a_stream_refused_before_it_starts_is_retried(server: Server, mode: str) -> None:
    server.route("POST", "/v1/chat/completions", _replies(
        Reply(429, LIMITED, {"Retry-After": "0"}), Reply(200, _pieces(TRANSCRIPT, 50), content_type=SSE)))
    waits: list[float] = []

    def sync(c: Any) -> list[Any]:
        with c.stream_chat_completion(REQUEST) as stream:
            return list(stream)

    async def async_(c: Any) -> list[Any]:
        async with await c.stream_chat_completion(REQUEST) as stream:
            return [chunk async for chunk in stream]

    chunks = run(mode, server.url, sync if mode == "sync" else async_, max_retries=1, sleep=_recorded_sleep(mode, waits))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == TEXT
    assert len(server.received) == 2 and waits == [0.0]
    assert all(json.loads(r.body) == {**REQUEST, "stream": True} for r in server.received)  # the same request again


@pytest.mark.parametrize("mode", MODES)
def test_an_error_event_inside_a_stream_is_not_retried(server: Server, mode: str) -> None:
    body = _sse(_chunk({"content": "a"}), {"error": {"message": "busy", "type": "rate_limit_error", "param": None, "code": "rate_limited"}})
    server.route("POST", "/v1/chat/completions", Reply(200, [body], content_type=SSE))

    def sync(c: Any) -> None:
        with c.stream_chat_completion(REQUEST) as stream:
            list(stream)

    async def async_(c: Any) -> None:
        async with await c.stream_chat_completion(REQUEST) as stream:
            [chunk async for chunk in stream]

    with pytest.raises(RateLimitError):
        run(mode, server.url, sync if mode == "sync" else async_, max_retries=3, sleep=_recorded_sleep(mode, []))
    assert len(server.received) == 1  # the stream had started and delivered a chunk: resending could repeat it


@pytest.mark.parametrize("options", [{"max_retries": -1}, {"max_retry_wait": -0.5}])
def test_retry_options_are_checked(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        LLMOSClient("http://127.0.0.1:9", **options)
