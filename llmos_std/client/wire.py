"""What both clients share: URLs from the operation table, headers, body building, parsing, polling."""

from __future__ import annotations

import asyncio
import json as jsonlib
import time
from collections.abc import AsyncIterator, Collection, Iterable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import BinaryIO, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, JsonValue, ValidationError

from llmos_std.discovery import Health
from llmos_std.management import ModelVersion
from llmos_std.manifest import PackageManifest
from llmos_std.models import VersionState
from llmos_std.operations import OPERATIONS_BY_ID, Operation
from llmos_std.client.errors import ResponseValidationError, error_from_response

T = TypeVar("T", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)

CHUNK_BYTES = 1024 * 1024
"""Read size when streaming a blob from disk."""
JSON_HEADERS = {"Content-Type": "application/json"}
OCTET_HEADERS = {"Content-Type": "application/octet-stream"}


def _package_version() -> str:
    try:
        return metadata.version("llmos-std")
    except metadata.PackageNotFoundError:
        return "0+unknown"


USER_AGENT = f"llmos-std-client/{_package_version()}"




def parse_model(model: type[T], content: bytes | str, response: httpx.Response) -> T:
    try:
        return model.model_validate_json(content)
    except ValidationError as exc:
        raise ResponseValidationError(model, exc, response) from exc


def checked(response: httpx.Response, model: type[T]) -> T:
    if not response.is_success:
        raise error_from_response(response)
    return parse_model(model, response.content, response)


def health_of(response: httpx.Response) -> Health:
    # Health answers 503 with a Health body when not ready (LLMOS-HLTH-001); that is a result, not an error.
    if response.status_code == 503:
        try:
            return Health.model_validate_json(response.content)
        except ValidationError:
            raise error_from_response(response) from None
    return checked(response, Health)


def blob_present(response: httpx.Response) -> bool:
    if response.is_success:
        return True
    if response.status_code == 404:
        return False
    raise error_from_response(response)


def request_body(model: type[R], request: R | Mapping[str, JsonValue], *, stream: bool) -> dict[str, JsonValue]:
    """Validate a request as the server will (strict JSON mode) and encode the fields that were set."""
    if not isinstance(request, model):
        request = model.model_validate_json(jsonlib.dumps(dict(request)))
    body: dict[str, JsonValue] = request.model_dump(mode="json", exclude_unset=True)
    if stream:
        body["stream"] = True
    elif body.get("stream") is True:
        raise ValueError("stream: true needs the stream_* method, which returns the chunks")
    return body


def manifest_body(manifest: PackageManifest | Mapping[str, JsonValue]) -> JsonValue:
    if isinstance(manifest, PackageManifest):
        return manifest.model_dump(mode="json")
    PackageManifest.model_validate_json(jsonlib.dumps(dict(manifest)))
    # Sent as given: the package digest is computed over the manifest the packager wrote.
    return dict(manifest)




def file_size(data: BinaryIO) -> int | None:
    try:
        if not data.seekable():
            return None
        here = data.tell()
        end = data.seek(0, 2)
        data.seek(here)
    except OSError:
        return None
    return end - here


def file_chunks(data: BinaryIO) -> Iterator[bytes]:
    while chunk := data.read(CHUNK_BYTES):
        yield chunk






class ClientBase:
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






def poll_deadline(timeout: float, poll_interval: float) -> float:
    if poll_interval <= 0 or timeout < 0:
        raise ValueError("poll_interval must be positive and timeout not negative")
    return time.monotonic() + timeout


def next_pause(current: ModelVersion, until: Collection[VersionState], deadline: float, timeout: float, poll_interval: float) -> float | None:
    """None when the wait is over; raises once the deadline has passed."""
    if current.state in until:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError(f"{current.name}@{current.version} still {current.state!r} after {timeout}s (waiting for {sorted(until)})")
    return min(poll_interval, remaining)


def package_blobs(directory: Path, raw_manifest: bytes) -> list[tuple[str, Path]]:
    """Each distinct blob of a package directory's manifest, with the file to read it from."""
    manifest = PackageManifest.model_validate_json(raw_manifest)
    blobs: dict[str, Path] = {}
    for entry in manifest.files:
        blobs.setdefault(entry.digest, directory / entry.path)
    return list(blobs.items())


async def async_chunks(chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def async_file_chunks(data: BinaryIO) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(data.read, CHUNK_BYTES):
        yield chunk
