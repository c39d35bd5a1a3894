"""The synchronous client."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
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
from llmos_std.client.streams import Stream, stream_media_type
from llmos_std.client.wire import JSON_HEADERS, OCTET_HEADERS, ClientBase, blob_present, checked, file_chunks, file_size, health_of, manifest_body, next_pause, package_blobs, poll_deadline, request_body

T = TypeVar("T", bound=BaseModel)

class LLMOSClient(ClientBase):
    """A synchronous client; typed methods return response models and raise :class:`APIError` subclasses.

    With ``max_retries`` above 0, a 429 or 503 refusal is sent again after ``Retry-After`` seconds (or a
    backoff of 0.5, 1, 2, ... s without one), each wait capped at ``max_retry_wait``; ``sleep`` does the waiting.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        openai_base_url: str | None = None,
        timeout: float = 60,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        max_retries: int = 0,
        max_retry_wait: float = 30.0,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        super().__init__(base_url, api_key=api_key, openai_base_url=openai_base_url, headers=headers)
        self._retry = RetryPolicy(max_retries, max_retry_wait)
        self._sleep = sleep
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
        """Send one operation and return the raw response, whatever its status (the last one, after any retries)."""
        return self._send(operation_id, self._build(operation_id, path_params, json, content, headers), stream=False)

    def _send(self, operation_id: str, request: httpx.Request, *, stream: bool) -> httpx.Response:
        retries_done = 0
        while True:
            response = self._http.send(request, stream=stream)
            pause = self._retry.pause(operation_id, request, response, retries_done)
            if pause is None:
                return response
            response.read()  # a refusal's body is small; reading it lets the connection be reused
            response.close()
            self._sleep(pause)
            retries_done += 1

    def _stream(self, operation_id: str, body: JsonValue, model: type[T]) -> Stream[T]:
        request = self._build(operation_id, None, body, None, {"Accept": "text/event-stream"})
        response = self._send(operation_id, request, stream=True)
        try:
            if not response.is_success:
                response.read()
                raise error_from_response(response)
            stream_media_type(response)
        except BaseException:
            response.close()
            raise
        return Stream(response, model)

    # core
    def discovery(self) -> DiscoveryDocument:
        return checked(self.call("get_discovery"), DiscoveryDocument)

    def health_live(self) -> Health:
        return health_of(self.call("get_health_live"))

    def health_ready(self) -> Health:
        return health_of(self.call("get_health_ready"))

    def list_models(self) -> ModelList:
        return checked(self.call("list_models"), ModelList)

    # inference and embeddings
    def chat_completion(self, request: ChatCompletionRequest | Mapping[str, JsonValue]) -> ChatCompletionResponse:
        body = request_body(ChatCompletionRequest, request, stream=False)
        return checked(self.call("create_chat_completion", json=body), ChatCompletionResponse)

    def stream_chat_completion(self, request: ChatCompletionRequest | Mapping[str, JsonValue]) -> Stream[ChatCompletionChunk]:
        body = request_body(ChatCompletionRequest, request, stream=True)
        return self._stream("create_chat_completion", body, ChatCompletionChunk)

    def completion(self, request: CompletionRequest | Mapping[str, JsonValue]) -> CompletionResponse:
        body = request_body(CompletionRequest, request, stream=False)
        return checked(self.call("create_completion", json=body), CompletionResponse)

    def stream_completion(self, request: CompletionRequest | Mapping[str, JsonValue]) -> Stream[CompletionChunk]:
        body = request_body(CompletionRequest, request, stream=True)
        return self._stream("create_completion", body, CompletionChunk)

    def embeddings(self, request: EmbeddingRequest | Mapping[str, JsonValue]) -> EmbeddingResponse:
        body = request_body(EmbeddingRequest, request, stream=False)
        return checked(self.call("create_embedding", json=body), EmbeddingResponse)

    # model-management
    def list_managed_models(self) -> ManagedModelList:
        return checked(self.call("list_managed_models"), ManagedModelList)

    def get_managed_model(self, name: str) -> ManagedModel:
        return checked(self.call("get_managed_model", path_params={"name": name}), ManagedModel)

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        return self._version_op("get_model_version", name, version)

    def load(self, name: str, version: str) -> ModelVersion:
        return self._version_op("load_model_version", name, version)

    def unload(self, name: str, version: str) -> ModelVersion:
        return self._version_op("unload_model_version", name, version)

    def activate(self, name: str, version: str) -> ModelVersion:
        return self._version_op("activate_model_version", name, version)

    def rollback(self, name: str) -> ModelVersion:
        return checked(self.call("rollback_model", path_params={"name": name}), ModelVersion)

    def delete_version(self, name: str, version: str) -> DeletedObject:
        response = self.call("delete_model_version", path_params={"name": name, "version": version})
        return checked(response, DeletedObject)

    def _version_op(self, operation_id: str, name: str, version: str) -> ModelVersion:
        return checked(self.call(operation_id, path_params={"name": name, "version": version}), ModelVersion)

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
        deadline = poll_deadline(timeout, poll_interval)
        while True:
            current = self.get_model_version(name, version)
            pause = next_pause(current, until, deadline, timeout, poll_interval)
            if pause is None:
                return current
            time.sleep(pause)

    # model-packages
    def head_blob(self, digest: str) -> bool:
        return blob_present(self.call("head_blob", path_params={"digest": digest}))

    def put_blob(self, digest: str, data: bytes | BinaryIO | Iterable[bytes], *, size: int | None = None) -> BlobInfo:
        """Upload a blob; files are streamed in chunks with ``Content-Length`` when their size is known."""
        headers = dict(OCTET_HEADERS)
        content: bytes | Iterable[bytes]
        if isinstance(data, (bytes, bytearray, memoryview)):
            content = bytes(data)
        elif callable(getattr(data, "read", None)):
            file = cast(BinaryIO, data)
            size = file_size(file) if size is None else size
            content = file_chunks(file)
        else:
            content = data
        if size is not None and not isinstance(content, bytes):
            headers["Content-Length"] = str(size)
        return checked(self.call("put_blob", path_params={"digest": digest}, content=content, headers=headers), BlobInfo)

    def install_package(self, manifest: PackageManifest | Mapping[str, JsonValue]) -> ModelVersion:
        return checked(self.call("install_package", json=manifest_body(manifest)), ModelVersion)

    def get_package(self, digest: str) -> PackageManifest:
        return checked(self.call("get_package", path_params={"digest": digest}), PackageManifest)

    def upload_package(self, package_dir: Path | str) -> ModelVersion:
        """Upload every blob the server lacks (HEAD first), streaming from disk, then install the manifest as written."""
        directory = Path(package_dir)
        raw = (directory / MANIFEST_NAME).read_bytes()
        for digest, path in package_blobs(directory, raw):
            if not self.head_blob(digest):
                with path.open("rb") as file:
                    self.put_blob(digest, file)
        return checked(self.call("install_package", content=raw, headers=JSON_HEADERS), ModelVersion)
