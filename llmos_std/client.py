"""Typed httpx client for LLMOS servers, sync and async, built on the operation table.

Raw access: ``call(op_id, ...)`` returns any operation's ``httpx.Response`` unchecked; every error the
client raises for a server answer carries ``.response``; streams expose ``.response`` (headers) too.
Async stream methods are awaited (the request is sent, HTTP errors raise) and return an ``AsyncStream``.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import math
import time
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Collection, Generator, Iterable, Iterator, Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Generic, Self, TypeVar, cast
from urllib.parse import quote

import httpx
from pydantic import BaseModel, JsonValue, ValidationError

from llmos_std.discovery import DiscoveryDocument, Health
from llmos_std.errors import ERROR_CODES, ErrorCodeSpec, ErrorEnvelope
from llmos_std.inference import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    EmbeddingRequest,
    EmbeddingResponse,
)
from llmos_std.management import SETTLED_STATES, DeletedObject, ManagedModel, ManagedModelList, ModelVersion
from llmos_std.manifest import PackageManifest
from llmos_std.models import ModelList, VersionState
from llmos_std.operations import OPERATIONS_BY_ID, Operation
from llmos_std.packages import BlobInfo
from llmos_std.sse import DataEvent, DoneEvent, SSEParser, StreamProtocolError

__all__ = [
    "APIError", "AsyncLLMOSClient", "AsyncStream", "AuthenticationError", "BadRequestError",
    "ConflictError", "LLMOSClient", "NotFoundError", "PayloadTooLargeError", "PermissionDeniedError",
    "RateLimitError", "ResponseValidationError", "ServerError", "Stream", "StreamProtocolError",
    "error_from_response", "parse_retry_after",
]

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)

CHUNK_BYTES = 1024 * 1024
"""Read size when streaming a blob from disk."""
MANIFEST_FILE = "llmos-package.json"
_JSON = {"Content-Type": "application/json"}
_OCTETS = {"Content-Type": "application/octet-stream"}


def _package_version() -> str:
    try:
        return metadata.version("llmos-std")
    except metadata.PackageNotFoundError:
        return "0+unknown"


USER_AGENT = f"llmos-std-client/{_package_version()}"


# ---------------------------------------------------------------- errors


class APIError(Exception):
    """The server answered with an error: a non-2xx status, or an error event inside a stream.

    ``code``, ``type`` and ``param`` come from the envelope (None when the body was not one).
    Unlike :class:`llmos_std.errors.LLMOSError` it keeps what the wire said, even a code or status
    the standard does not define. Inside a stream ``status`` is the status the code maps to, while
    ``response.status_code`` is the 200 the stream started with.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        response: httpx.Response,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        envelope: ErrorEnvelope | None = None,
    ) -> None:
        super().__init__(f"{status} {code or '-'}: {message}")
        self.message = message
        self.status = status
        self.response = response
        self.code = code
        self.type = type
        self.param = param
        self.envelope = envelope

    @property
    def spec(self) -> ErrorCodeSpec | None:
        """The standard's entry for ``code``, or None when the code is null or not in the table."""
        return ERROR_CODES.get(self.code) if self.code is not None else None


class BadRequestError(APIError):
    """400."""


class AuthenticationError(APIError):
    """401."""


class PermissionDeniedError(APIError):
    """403."""


class NotFoundError(APIError):
    """404."""


class ConflictError(APIError):
    """409."""


class PayloadTooLargeError(APIError):
    """413."""


class RateLimitError(APIError):
    """429; ``retry_after`` is the ``Retry-After`` header in seconds, or None when absent or invalid."""

    def __init__(self, message: str, *, status: int, response: httpx.Response, **fields: Any) -> None:
        super().__init__(message, status=status, response=response, **fields)
        self.retry_after = parse_retry_after(response.headers.get("Retry-After"))


class ServerError(APIError):
    """Any 5xx."""


class ResponseValidationError(Exception):
    """A 2xx body (or stream event) that does not validate, strictly, against the operation's model."""

    def __init__(self, model: type[BaseModel], error: ValidationError, response: httpx.Response) -> None:
        super().__init__(f"{model.__name__}: {error}")
        self.model = model
        self.validation_error = error
        self.response = response


_CLASS_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
    409: ConflictError, 413: PayloadTooLargeError, 429: RateLimitError,
}
_STATUS_BY_TYPE = {
    "invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
    "not_found_error": 404, "conflict_error": 409, "rate_limit_error": 429, "server_error": 500,
}


def _error_class(status: int) -> type[APIError]:
    return ServerError if 500 <= status <= 599 else _CLASS_BY_STATUS.get(status, APIError)


def _preview(content: bytes) -> str:
    text = content[:200].decode("utf-8", errors="backslashreplace")
    return repr(text) + ("..." if len(content) > 200 else "")


def _from_envelope(envelope: ErrorEnvelope, status: int, response: httpx.Response) -> APIError:
    detail = envelope.error
    return _error_class(status)(
        detail.message, status=status, response=response, code=detail.code, type=detail.type,
        param=detail.param, envelope=envelope,
    )


def error_from_response(response: httpx.Response) -> APIError:
    """The exception for a non-2xx response whose body has been read."""
    status = response.status_code
    try:
        envelope = ErrorEnvelope.model_validate_json(response.content)
    except ValidationError:
        message = f"HTTP {status}; the body was not an error envelope: {_preview(response.content)}"
        return _error_class(status)(message, status=status, response=response)
    return _from_envelope(envelope, status, response)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None when absent or invalid."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


# ---------------------------------------------------------------- parsing


def _parse(model: type[T], content: bytes | str, response: httpx.Response) -> T:
    try:
        return model.model_validate_json(content)
    except ValidationError as exc:
        raise ResponseValidationError(model, exc, response) from exc


def _checked(response: httpx.Response, model: type[T]) -> T:
    if not response.is_success:
        raise error_from_response(response)
    return _parse(model, response.content, response)


def _health(response: httpx.Response) -> Health:
    # Health answers 503 with a Health body when not ready (LLMOS-HLTH-001); that is a result, not an error.
    if response.status_code == 503:
        try:
            return Health.model_validate_json(response.content)
        except ValidationError:
            raise error_from_response(response) from None
    return _checked(response, Health)


def _blob_present(response: httpx.Response) -> bool:
    if response.is_success:
        return True
    if response.status_code == 404:
        return False
    raise error_from_response(response)


def _request_body(model: type[R], request: R | Mapping[str, JsonValue], *, stream: bool) -> dict[str, JsonValue]:
    """Validate a request as the server will (strict JSON mode) and encode the fields that were set."""
    if not isinstance(request, model):
        request = model.model_validate_json(jsonlib.dumps(dict(request)))
    body: dict[str, JsonValue] = request.model_dump(mode="json", exclude_unset=True)
    if stream:
        body["stream"] = True
    elif body.get("stream") is True:
        raise ValueError("stream: true needs the stream_* method, which returns the chunks")
    return body


def _manifest_body(manifest: PackageManifest | Mapping[str, JsonValue]) -> JsonValue:
    if isinstance(manifest, PackageManifest):
        return manifest.model_dump(mode="json")
    PackageManifest.model_validate_json(jsonlib.dumps(dict(manifest)))
    # Sent as given: the package digest is computed over the manifest the packager wrote.
    return dict(manifest)


def _stream_media_type(response: httpx.Response) -> None:
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media_type != "text/event-stream":
        raise StreamProtocolError(f"expected Content-Type text/event-stream, got {media_type or 'none'!r}")


def _file_size(data: BinaryIO) -> int | None:
    try:
        if not data.seekable():
            return None
        here = data.tell()
        end = data.seek(0, 2)
        data.seek(here)
    except OSError:
        return None
    return end - here


def _file_chunks(data: BinaryIO) -> Iterator[bytes]:
    while chunk := data.read(CHUNK_BYTES):
        yield chunk


class _ChunkDecoder(Generic[T]):
    """Turns stream bytes into chunk models; shared by the sync and async streams."""

    def __init__(self, model: type[T], response: httpx.Response) -> None:
        self.model = model
        self.response = response
        self.parser = SSEParser()
        self.finished = False

    def feed(self, data: bytes) -> tuple[list[T], Exception | None]:
        """The chunks these bytes complete, and the error to raise once they are delivered."""
        failure: Exception | None = None
        try:
            events = self.parser.feed(data)
        except StreamProtocolError as exc:
            events, failure = list(exc.events), exc
        chunks: list[T] = []
        for event in events:
            if isinstance(event, DoneEvent):
                self.finished = True  # what follows [DONE] is the kit's to judge, not the client's
                return chunks, None
            try:
                chunks.append(self._decode(event))
            except (APIError, ResponseValidationError) as exc:
                return chunks, exc
        return chunks, failure

    def end(self) -> None:
        """The body ended before ``[DONE]``: always an error."""
        self.parser.close()
        raise StreamProtocolError("stream ended without data: [DONE]", line_number=self.parser.line_number)

    def _decode(self, event: DataEvent) -> T:
        value = jsonlib.loads(event.data)
        if isinstance(value, dict) and "error" in value:
            envelope = _parse(ErrorEnvelope, event.data, self.response)
            code = envelope.error.code
            status = ERROR_CODES[code].status if code in ERROR_CODES else _STATUS_BY_TYPE[envelope.error.type]
            raise _from_envelope(envelope, status, self.response)
        return _parse(self.model, event.data, self.response)


class Stream(Generic[T]):
    """The chunks of a streamed response, validated one by one; close it (or use ``with``) if you stop early."""

    def __init__(self, response: httpx.Response, model: type[T]) -> None:
        self.response = response
        self._decoder = _ChunkDecoder(model, response)
        self._chunks = self._iterate()

    def _iterate(self) -> Generator[T, None, None]:
        try:
            for data in self.response.iter_bytes():
                chunks, failure = self._decoder.feed(data)
                yield from chunks
                if failure is not None:
                    raise failure
                if self._decoder.finished:
                    return
            self._decoder.end()
        finally:
            self.response.close()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        return next(self._chunks)

    def close(self) -> None:
        self._chunks.close()
        self.response.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncStream(Generic[T]):
    """The async twin of :class:`Stream`."""

    def __init__(self, response: httpx.Response, model: type[T]) -> None:
        self.response = response
        self._decoder = _ChunkDecoder(model, response)
        self._chunks = self._iterate()

    async def _iterate(self) -> AsyncGenerator[T, None]:
        try:
            async for data in self.response.aiter_bytes():
                chunks, failure = self._decoder.feed(data)
                for chunk in chunks:
                    yield chunk
                if failure is not None:
                    raise failure
                if self._decoder.finished:
                    return
            self._decoder.end()
        finally:
            await self.response.aclose()

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        return await self._chunks.__anext__()

    async def close(self) -> None:
        await self._chunks.aclose()
        await self.response.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# ---------------------------------------------------------------- clients


class _ClientBase:
    """URL building and default headers, shared by both clients."""

    def __init__(self, base_url: str, *, api_key: str | None, openai_base_url: str | None, headers: Mapping[str, str] | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.openai_base_url = (openai_base_url or base_url).rstrip("/")
        self.headers: dict[str, str] = {"User-Agent": USER_AGENT}
        if api_key is not None:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.headers.update(headers or {})

    def url(self, operation_id: str, path_params: Mapping[str, str] | None = None) -> tuple[Operation, str]:
        """The operation and its absolute URL, path parameters URL-quoted (OpenAI paths on ``openai_base_url``)."""
        op = OPERATIONS_BY_ID[operation_id]
        params = dict(path_params or {})
        if set(params) != set(op.path_params):
            raise ValueError(f"{operation_id} takes path parameters {sorted(op.path_params)}, got {sorted(params)}")
        path = op.path
        for name, value in params.items():
            if not value:
                raise ValueError(f"path parameter {name!r} is empty")
            quoted = quote(value, safe=":@")
            # Dot segments would be resolved away by URL normalisation; escape them so they stay values.
            path = path.replace(f"{{{name}}}", quoted.replace(".", "%2E") if quoted in (".", "..") else quoted)
        base = self.openai_base_url if op.path.startswith("/v1/") else self.base_url
        return op, base + path


class LLMOSClient(_ClientBase):
    """A synchronous client; typed methods return response models and raise :class:`APIError` subclasses."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        openai_base_url: str | None = None,
        timeout: float = 60,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(base_url, api_key=api_key, openai_base_url=openai_base_url, headers=headers)
        self._http = httpx.Client(timeout=timeout, transport=transport, headers=self.headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _build(self, operation_id: str, path_params: Mapping[str, str] | None, json: JsonValue | None,
               content: bytes | Iterable[bytes] | None, headers: Mapping[str, str] | None) -> httpx.Request:
        op, url = self.url(operation_id, path_params)
        return self._http.build_request(op.method, url, json=json, content=content, headers=headers)

    def call(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, str] | None = None,
        json: JsonValue | None = None,
        content: bytes | Iterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one operation and return the raw response, whatever its status."""
        return self._http.send(self._build(operation_id, path_params, json, content, headers))

    def _stream(self, operation_id: str, body: JsonValue, model: type[T]) -> Stream[T]:
        request = self._build(operation_id, None, body, None, {"Accept": "text/event-stream"})
        response = self._http.send(request, stream=True)
        try:
            if not response.is_success:
                response.read()
                raise error_from_response(response)
            _stream_media_type(response)
        except BaseException:
            response.close()
            raise
        return Stream(response, model)

    # core
    def discovery(self) -> DiscoveryDocument:
        return _checked(self.call("get_discovery"), DiscoveryDocument)

    def health_live(self) -> Health:
        return _health(self.call("get_health_live"))

    def health_ready(self) -> Health:
        return _health(self.call("get_health_ready"))

    def list_models(self) -> ModelList:
        return _checked(self.call("list_models"), ModelList)

    # inference and embeddings
    def chat_completion(self, request: ChatCompletionRequest | Mapping[str, JsonValue]) -> ChatCompletionResponse:
        body = _request_body(ChatCompletionRequest, request, stream=False)
        return _checked(self.call("create_chat_completion", json=body), ChatCompletionResponse)

    def stream_chat_completion(self, request: ChatCompletionRequest | Mapping[str, JsonValue]) -> Stream[ChatCompletionChunk]:
        body = _request_body(ChatCompletionRequest, request, stream=True)
        return self._stream("create_chat_completion", body, ChatCompletionChunk)

    def completion(self, request: CompletionRequest | Mapping[str, JsonValue]) -> CompletionResponse:
        body = _request_body(CompletionRequest, request, stream=False)
        return _checked(self.call("create_completion", json=body), CompletionResponse)

    def stream_completion(self, request: CompletionRequest | Mapping[str, JsonValue]) -> Stream[CompletionChunk]:
        body = _request_body(CompletionRequest, request, stream=True)
        return self._stream("create_completion", body, CompletionChunk)

    def embeddings(self, request: EmbeddingRequest | Mapping[str, JsonValue]) -> EmbeddingResponse:
        body = _request_body(EmbeddingRequest, request, stream=False)
        return _checked(self.call("create_embedding", json=body), EmbeddingResponse)

    # model-management
    def list_managed_models(self) -> ManagedModelList:
        return _checked(self.call("list_managed_models"), ManagedModelList)

    def get_managed_model(self, name: str) -> ManagedModel:
        return _checked(self.call("get_managed_model", path_params={"name": name}), ManagedModel)

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        return self._version_op("get_model_version", name, version)

    def load(self, name: str, version: str) -> ModelVersion:
        return self._version_op("load_model_version", name, version)

    def unload(self, name: str, version: str) -> ModelVersion:
        return self._version_op("unload_model_version", name, version)

    def activate(self, name: str, version: str) -> ModelVersion:
        return self._version_op("activate_model_version", name, version)

    def rollback(self, name: str) -> ModelVersion:
        return _checked(self.call("rollback_model", path_params={"name": name}), ModelVersion)

    def delete_version(self, name: str, version: str) -> DeletedObject:
        response = self.call("delete_model_version", path_params={"name": name, "version": version})
        return _checked(response, DeletedObject)

    def _version_op(self, operation_id: str, name: str, version: str) -> ModelVersion:
        return _checked(self.call(operation_id, path_params={"name": name, "version": version}), ModelVersion)

    def wait_for_version(
        self,
        name: str,
        version: str,
        *,
        until: Collection[VersionState] = SETTLED_STATES,
        timeout: float = 300.0,
        poll_interval: float = 0.5,
    ) -> ModelVersion:
        """Poll the version until its state is in ``until``; raises :class:`TimeoutError` after ``timeout`` seconds."""
        deadline = _deadline(timeout, poll_interval)
        while True:
            current = self.get_model_version(name, version)
            pause = _next_pause(current, until, deadline, timeout, poll_interval)
            if pause is None:
                return current
            time.sleep(pause)

    # model-packages
    def head_blob(self, digest: str) -> bool:
        return _blob_present(self.call("head_blob", path_params={"digest": digest}))

    def put_blob(self, digest: str, data: bytes | BinaryIO | Iterable[bytes], *, size: int | None = None) -> BlobInfo:
        """Upload a blob; files are streamed in chunks with ``Content-Length`` when their size is known."""
        headers = dict(_OCTETS)
        content: bytes | Iterable[bytes]
        if isinstance(data, (bytes, bytearray, memoryview)):
            content = bytes(data)
        elif callable(getattr(data, "read", None)):
            file = cast(BinaryIO, data)
            size = _file_size(file) if size is None else size
            content = _file_chunks(file)
        else:
            content = data
        if size is not None and not isinstance(content, bytes):
            headers["Content-Length"] = str(size)
        return _checked(self.call("put_blob", path_params={"digest": digest}, content=content, headers=headers), BlobInfo)

    def install_package(self, manifest: PackageManifest | Mapping[str, JsonValue]) -> ModelVersion:
        return _checked(self.call("install_package", json=_manifest_body(manifest)), ModelVersion)

    def get_package(self, digest: str) -> PackageManifest:
        return _checked(self.call("get_package", path_params={"digest": digest}), PackageManifest)

    def upload_package(self, package_dir: Path | str) -> ModelVersion:
        """Upload every blob the server lacks (HEAD first), streaming from disk, then install the manifest as written."""
        directory = Path(package_dir)
        raw = (directory / MANIFEST_FILE).read_bytes()
        for digest, path in _blobs(directory, raw):
            if not self.head_blob(digest):
                with path.open("rb") as file:
                    self.put_blob(digest, file)
        return _checked(self.call("install_package", content=raw, headers=_JSON), ModelVersion)


class AsyncLLMOSClient(_ClientBase):
    """The asynchronous twin of :class:`LLMOSClient`: same methods, awaited."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        openai_base_url: str | None = None,
        timeout: float = 60,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(base_url, api_key=api_key, openai_base_url=openai_base_url, headers=headers)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport, headers=self.headers)

    async def close(self) -> None:
        await self._http.aclose()

    async def aclose(self) -> None:
        await self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    def _build(self, operation_id: str, path_params: Mapping[str, str] | None, json: JsonValue | None,
               content: bytes | AsyncIterable[bytes] | None, headers: Mapping[str, str] | None) -> httpx.Request:
        op, url = self.url(operation_id, path_params)
        return self._http.build_request(op.method, url, json=json, content=content, headers=headers)

    async def call(
        self,
        operation_id: str,
        *,
        path_params: Mapping[str, str] | None = None,
        json: JsonValue | None = None,
        content: bytes | Iterable[bytes] | AsyncIterable[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send one operation and return the raw response, whatever its status."""
        if content is not None and not isinstance(content, (bytes, AsyncIterable)):
            content = _async_chunks(content)
        return await self._http.send(self._build(operation_id, path_params, json, content, headers))

    async def _stream(self, operation_id: str, body: JsonValue, model: type[T]) -> AsyncStream[T]:
        request = self._build(operation_id, None, body, None, {"Accept": "text/event-stream"})
        response = await self._http.send(request, stream=True)
        try:
            if not response.is_success:
                await response.aread()
                raise error_from_response(response)
            _stream_media_type(response)
        except BaseException:
            await response.aclose()
            raise
        return AsyncStream(response, model)

    # core
    async def discovery(self) -> DiscoveryDocument:
        return _checked(await self.call("get_discovery"), DiscoveryDocument)

    async def health_live(self) -> Health:
        return _health(await self.call("get_health_live"))

    async def health_ready(self) -> Health:
        return _health(await self.call("get_health_ready"))

    async def list_models(self) -> ModelList:
        return _checked(await self.call("list_models"), ModelList)

    # inference and embeddings
    async def chat_completion(self, request: ChatCompletionRequest | Mapping[str, JsonValue]) -> ChatCompletionResponse:
        body = _request_body(ChatCompletionRequest, request, stream=False)
        return _checked(await self.call("create_chat_completion", json=body), ChatCompletionResponse)

    async def stream_chat_completion(self, request: ChatCompletionRequest | Mapping[str, JsonValue]) -> AsyncStream[ChatCompletionChunk]:
        body = _request_body(ChatCompletionRequest, request, stream=True)
        return await self._stream("create_chat_completion", body, ChatCompletionChunk)

    async def completion(self, request: CompletionRequest | Mapping[str, JsonValue]) -> CompletionResponse:
        body = _request_body(CompletionRequest, request, stream=False)
        return _checked(await self.call("create_completion", json=body), CompletionResponse)

    async def stream_completion(self, request: CompletionRequest | Mapping[str, JsonValue]) -> AsyncStream[CompletionChunk]:
        body = _request_body(CompletionRequest, request, stream=True)
        return await self._stream("create_completion", body, CompletionChunk)

    async def embeddings(self, request: EmbeddingRequest | Mapping[str, JsonValue]) -> EmbeddingResponse:
        body = _request_body(EmbeddingRequest, request, stream=False)
        return _checked(await self.call("create_embedding", json=body), EmbeddingResponse)

    # model-management
    async def list_managed_models(self) -> ManagedModelList:
        return _checked(await self.call("list_managed_models"), ManagedModelList)

    async def get_managed_model(self, name: str) -> ManagedModel:
        return _checked(await self.call("get_managed_model", path_params={"name": name}), ManagedModel)

    async def get_model_version(self, name: str, version: str) -> ModelVersion:
        return await self._version_op("get_model_version", name, version)

    async def load(self, name: str, version: str) -> ModelVersion:
        return await self._version_op("load_model_version", name, version)

    async def unload(self, name: str, version: str) -> ModelVersion:
        return await self._version_op("unload_model_version", name, version)

    async def activate(self, name: str, version: str) -> ModelVersion:
        return await self._version_op("activate_model_version", name, version)

    async def rollback(self, name: str) -> ModelVersion:
        return _checked(await self.call("rollback_model", path_params={"name": name}), ModelVersion)

    async def delete_version(self, name: str, version: str) -> DeletedObject:
        response = await self.call("delete_model_version", path_params={"name": name, "version": version})
        return _checked(response, DeletedObject)

    async def _version_op(self, operation_id: str, name: str, version: str) -> ModelVersion:
        return _checked(await self.call(operation_id, path_params={"name": name, "version": version}), ModelVersion)

    async def wait_for_version(
        self,
        name: str,
        version: str,
        *,
        until: Collection[VersionState] = SETTLED_STATES,
        timeout: float = 300.0,
        poll_interval: float = 0.5,
    ) -> ModelVersion:
        """Poll the version until its state is in ``until``; raises :class:`TimeoutError` after ``timeout`` seconds."""
        deadline = _deadline(timeout, poll_interval)
        while True:
            current = await self.get_model_version(name, version)
            pause = _next_pause(current, until, deadline, timeout, poll_interval)
            if pause is None:
                return current
            await asyncio.sleep(pause)

    # model-packages
    async def head_blob(self, digest: str) -> bool:
        return _blob_present(await self.call("head_blob", path_params={"digest": digest}))

    async def put_blob(
        self, digest: str, data: bytes | BinaryIO | Iterable[bytes] | AsyncIterable[bytes], *, size: int | None = None
    ) -> BlobInfo:
        """Upload a blob; files are read in a worker thread, in chunks, with ``Content-Length`` when their size is known."""
        headers = dict(_OCTETS)
        content: bytes | Iterable[bytes] | AsyncIterable[bytes]
        if isinstance(data, (bytes, bytearray, memoryview)):
            content = bytes(data)
        elif callable(getattr(data, "read", None)):
            file = cast(BinaryIO, data)
            size = _file_size(file) if size is None else size
            content = _async_file_chunks(file)
        else:
            content = data
        if size is not None and not isinstance(content, bytes):
            headers["Content-Length"] = str(size)
        response = await self.call("put_blob", path_params={"digest": digest}, content=content, headers=headers)
        return _checked(response, BlobInfo)

    async def install_package(self, manifest: PackageManifest | Mapping[str, JsonValue]) -> ModelVersion:
        return _checked(await self.call("install_package", json=_manifest_body(manifest)), ModelVersion)

    async def get_package(self, digest: str) -> PackageManifest:
        return _checked(await self.call("get_package", path_params={"digest": digest}), PackageManifest)

    async def upload_package(self, package_dir: Path | str) -> ModelVersion:
        """Upload every blob the server lacks (HEAD first), streaming from disk, then install the manifest as written."""
        directory = Path(package_dir)
        raw = await asyncio.to_thread((directory / MANIFEST_FILE).read_bytes)
        for digest, path in _blobs(directory, raw):
            if not await self.head_blob(digest):
                with path.open("rb") as file:
                    await self.put_blob(digest, file)
        return _checked(await self.call("install_package", content=raw, headers=_JSON), ModelVersion)


# ---------------------------------------------------------------- helpers of both clients


def _deadline(timeout: float, poll_interval: float) -> float:
    if poll_interval <= 0 or timeout < 0:
        raise ValueError("poll_interval must be positive and timeout not negative")
    return time.monotonic() + timeout


def _next_pause(current: ModelVersion, until: Collection[VersionState], deadline: float, timeout: float, poll_interval: float) -> float | None:
    """None when the wait is over; raises once the deadline has passed."""
    if current.state in until:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"{current.name}@{current.version} still {current.state!r} after {timeout}s (waiting for {sorted(until)})")
    return min(poll_interval, remaining)


def _blobs(directory: Path, raw_manifest: bytes) -> list[tuple[str, Path]]:
    """Each distinct blob of a package directory's manifest, with the file to read it from."""
    manifest = PackageManifest.model_validate_json(raw_manifest)
    blobs: dict[str, Path] = {}
    for entry in manifest.files:
        blobs.setdefault(entry.digest, directory / entry.path)
    return list(blobs.items())


async def _async_chunks(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def _async_file_chunks(data: BinaryIO) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(data.read, CHUNK_BYTES):
        yield chunk
