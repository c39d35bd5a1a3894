"""The asynchronous client: the same operations as the synchronous one, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Collection, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Self, TypeVar, cast

import httpx
from pydantic import BaseModel, JsonValue

from llmos_std.discovery import DiscoveryDocument, Health
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
from llmos_std.packages import BlobInfo
from llmos_std.verification import MANIFEST_NAME
from llmos_std.client.errors import error_from_response
from llmos_std.client.retries import RetryPolicy
from llmos_std.client.streams import AsyncStream, stream_media_type
from llmos_std.client.wire import JSON_HEADERS, OCTET_HEADERS, ClientBase, async_chunks, async_file_chunks, blob_present, checked, file_size, health_of, manifest_body, next_pause, package_blobs, poll_deadline, request_body

T = TypeVar("T", bound=BaseModel)

class AsyncLLMOSClient(ClientBase):
    """The asynchronous twin of :class:`LLMOSClient`: same methods (and retries), awaited; ``sleep`` is awaited."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        openai_base_url: str | None = None,
        timeout: float = 60,
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        max_retries: int = 0,
        max_retry_wait: float = 30.0,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        super().__init__(base_url, api_key=api_key, openai_base_url=openai_base_url, headers=headers)
        self._retry = RetryPolicy(max_retries, max_retry_wait)
        self._sleep = sleep
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
        """Send one operation and return the raw response, whatever its status (the last one, after any retries)."""
        if content is not None and not isinstance(content, (bytes, AsyncIterable)):
            content = async_chunks(content)
        return await self._send(operation_id, self._build(operation_id, path_params, json, content, headers), stream=False)

    async def _send(self, operation_id: str, request: httpx.Request, *, stream: bool) -> httpx.Response:
        retries_done = 0
        while True:
            response = await self._http.send(request, stream=stream)
            pause = self._retry.pause(operation_id, request, response, retries_done)
            if pause is None:
                return response
            await response.aread()  # a refusal's body is small; reading it lets the connection be reused
            await response.aclose()
            await self._sleep(pause)
            retries_done += 1

    async def _stream(self, operation_id: str, body: JsonValue, model: type[T]) -> AsyncStream[T]:
        request = self._build(operation_id, None, body, None, {"Accept": "text/event-stream"})
        response = await self._send(operation_id, request, stream=True)
        try:
            if not response.is_success:
                await response.aread()
                raise error_from_response(response)
            stream_media_type(response)
        except BaseException:
            await response.aclose()
            raise
        return AsyncStream(response, model)

    # core
    async def discovery(self) -> DiscoveryDocument:
        return checked(await self.call("get_discovery"), DiscoveryDocument)

    async def health_live(self) -> Health:
        return health_of(await self.call("get_health_live"))

    async def health_ready(self) -> Health:
        return health_of(await self.call("get_health_ready"))

    async def list_models(self) -> ModelList:
        return checked(await self.call("list_models"), ModelList)

    # inference and embeddings
    async def chat_completion(self, request: ChatCompletionRequest | Mapping[str, JsonValue]) -> ChatCompletionResponse:
        body = request_body(ChatCompletionRequest, request, stream=False)
        return checked(await self.call("create_chat_completion", json=body), ChatCompletionResponse)

    async def stream_chat_completion(self, request: ChatCompletionRequest | Mapping[str, JsonValue]) -> AsyncStream[ChatCompletionChunk]:
        body = request_body(ChatCompletionRequest, request, stream=True)
        return await self._stream("create_chat_completion", body, ChatCompletionChunk)

    async def completion(self, request: CompletionRequest | Mapping[str, JsonValue]) -> CompletionResponse:
        body = request_body(CompletionRequest, request, stream=False)
        return checked(await self.call("create_completion", json=body), CompletionResponse)

    async def stream_completion(self, request: CompletionRequest | Mapping[str, JsonValue]) -> AsyncStream[CompletionChunk]:
        body = request_body(CompletionRequest, request, stream=True)
        return await self._stream("create_completion", body, CompletionChunk)

    async def embeddings(self, request: EmbeddingRequest | Mapping[str, JsonValue]) -> EmbeddingResponse:
        body = request_body(EmbeddingRequest, request, stream=False)
        return checked(await self.call("create_embedding", json=body), EmbeddingResponse)

    # model-management
    async def list_managed_models(self) -> ManagedModelList:
        return checked(await self.call("list_managed_models"), ManagedModelList)

    async def get_managed_model(self, name: str) -> ManagedModel:
        return checked(await self.call("get_managed_model", path_params={"name": name}), ManagedModel)

    async def get_model_version(self, name: str, version: str) -> ModelVersion:
        return await self._version_op("get_model_version", name, version)

    async def load(self, name: str, version: str) -> ModelVersion:
        return await self._version_op("load_model_version", name, version)

    async def unload(self, name: str, version: str) -> ModelVersion:
        return await self._version_op("unload_model_version", name, version)

    async def activate(self, name: str, version: str) -> ModelVersion:
        return await self._version_op("activate_model_version", name, version)

    async def rollback(self, name: str) -> ModelVersion:
        return checked(await self.call("rollback_model", path_params={"name": name}), ModelVersion)

    async def delete_version(self, name: str, version: str) -> DeletedObject:
        response = await self.call("delete_model_version", path_params={"name": name, "version": version})
        return checked(response, DeletedObject)

    async def _version_op(self, operation_id: str, name: str, version: str) -> ModelVersion:
        return checked(await self.call(operation_id, path_params={"name": name, "version": version}), ModelVersion)

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
        deadline = poll_deadline(timeout, poll_interval)
        while True:
            current = await self.get_model_version(name, version)
            pause = next_pause(current, until, deadline, timeout, poll_interval)
            if pause is None:
                return current
            await asyncio.sleep(pause)

    # model-packages
    async def head_blob(self, digest: str) -> bool:
        return blob_present(await self.call("head_blob", path_params={"digest": digest}))

    async def put_blob(
        self, digest: str, data: bytes | BinaryIO | Iterable[bytes] | AsyncIterable[bytes], *, size: int | None = None
    ) -> BlobInfo:
        """Upload a blob; files are read in a worker thread, in chunks, with ``Content-Length`` when their size is known."""
        headers = dict(OCTET_HEADERS)
        content: bytes | Iterable[bytes] | AsyncIterable[bytes]
        if isinstance(data, (bytes, bytearray, memoryview)):
            content = bytes(data)
        elif callable(getattr(data, "read", None)):
            file = cast(BinaryIO, data)
            size = file_size(file) if size is None else size
            content = async_file_chunks(file)
        else:
            content = data
        if size is not None and not isinstance(content, bytes):
            headers["Content-Length"] = str(size)
        response = await self.call("put_blob", path_params={"digest": digest}, content=content, headers=headers)
        return checked(response, BlobInfo)

    async def install_package(self, manifest: PackageManifest | Mapping[str, JsonValue]) -> ModelVersion:
        return checked(await self.call("install_package", json=manifest_body(manifest)), ModelVersion)

    async def get_package(self, digest: str) -> PackageManifest:
        return checked(await self.call("get_package", path_params={"digest": digest}), PackageManifest)

    async def upload_package(self, package_dir: Path | str) -> ModelVersion:
        """Upload every blob the server lacks (HEAD first), streaming from disk, then install the manifest as written."""
        directory = Path(package_dir)
        raw = await asyncio.to_thread((directory / MANIFEST_NAME).read_bytes)
        for digest, path in package_blobs(directory, raw):
            if not await self.head_blob(digest):
                with path.open("rb") as file:
                    await self.put_blob(digest, file)
        return checked(await self.call("install_package", content=raw, headers=JSON_HEADERS), ModelVersion)
