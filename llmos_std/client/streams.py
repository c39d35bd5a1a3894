"""SSE streams of typed chunks, sync and async: strict framing, the error event raised as an APIError."""

from __future__ import annotations

import json as jsonlib
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import Generic, Self, TypeVar

import httpx
from pydantic import BaseModel

from llmos_std.errors import ERROR_CODES, ErrorEnvelope
from llmos_std.sse import DataEvent, DoneEvent, SSEParser, StreamProtocolError
from llmos_std.client.errors import STATUS_BY_TYPE, APIError, ResponseValidationError, from_envelope
from llmos_std.client.wire import parse_model

T = TypeVar("T", bound=BaseModel)

def stream_media_type(response: httpx.Response) -> None:
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if media_type != "text/event-stream":
        raise StreamProtocolError(f"expected Content-Type text/event-stream, got {media_type or 'none'!r}")




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
            envelope = parse_model(ErrorEnvelope, event.data, self.response)
            code = envelope.error.code
            status = ERROR_CODES[code].status if code in ERROR_CODES else STATUS_BY_TYPE[envelope.error.type]
            raise from_envelope(envelope, status, self.response)
        return parse_model(self.model, event.data, self.response)


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
