"""A strict, incremental parser for the LLMOS server-sent-events grammar (DESIGN section 6).

The client reads streams with it and the conformance kit judges servers with it, so every violation
names the line it found and what the grammar expected there. Standard library only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import NoReturn

DONE_PAYLOAD = "[DONE]"
_DATA_PREFIX = b"data: "
_AFTER_DONE = "bytes after the data: [DONE] event; the stream must end there"
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
_SHOWN_CHARS = 80

class StreamProtocolError(Exception):
    """The bytes of a stream break the LLMOS event grammar.

    ``line_number`` is 1-based (None when the failure is not tied to one line, such as a missing
    ``[DONE]``); ``line`` is the offending line, decoded when possible and cut to 80 characters.
    """

    def __init__(
        self,
        message: str,
        *,
        line_number: int | None = None,
        line: str | None = None,
        events: tuple[SSEEvent, ...] = (),
    ) -> None:
        self.message = message
        self.line_number = line_number
        self.line = line
        self.events = events
        """Events the failing :meth:`SSEParser.feed` call completed before the violation, in order."""
        where = f"line {line_number}: " if line_number is not None else ""
        shown = f" (got {line!r})" if line is not None else ""
        super().__init__(f"{where}{message}{shown}")


@dataclass(frozen=True)
class DataEvent:
    """A ``data: <json>`` event; ``data`` is the JSON text, checked to be JSON but not decoded further."""

    data: str
    line_number: int = field(default=0, compare=False)
    """Where the event's data line was, for reports; not part of the event's identity."""


@dataclass(frozen=True)
class DoneEvent:
    """The ``data: [DONE]`` event that ends every stream."""

    line_number: int = field(default=0, compare=False)


SSEEvent = DataEvent | DoneEvent


def _shown(raw: bytes) -> str:
    text = raw.decode("utf-8", errors="backslashreplace")
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


def _reject_constant(name: str) -> NoReturn:
    # Python's json accepts NaN and Infinity; JSON (RFC 8259) does not.
    raise ValueError(f"{name} is not JSON")


class SSEParser:
    """Feed it bytes as they arrive; it returns the events completed so far.

    Grammar: ``data: <json>`` followed by a blank line is an event, ``data: [DONE]`` plus a blank
    line ends the stream, lines starting with ``:`` are comments, and blank lines outside an event
    are ignored (keep-alives are often ``: ping`` plus a blank line). Lines end with ``\\n`` or
    ``\\r\\n``. Anything else, including any byte after the ``[DONE]`` event, raises
    :class:`StreamProtocolError`. After an error the parser is unusable.

    A stream that simply stops is not an error of :meth:`close` unless it stops inside a line or an
    event: whether ``[DONE]`` came is :attr:`done`, so that callers can report it on its own.
    """

    def __init__(self, *, max_line_bytes: int | None = DEFAULT_MAX_LINE_BYTES) -> None:
        self._buffer = bytearray()
        self._scanned = 0
        self._line_number = 0
        self._done = False
        self._pending: tuple[int, bytes, str] | None = None
        """The open event: its data line's number, raw bytes and payload text."""
        self._max_line_bytes = max_line_bytes
        self._failed: StreamProtocolError | None = None
        self.saw_crlf = False
        """Whether any line ended with ``\\r\\n`` (allowed; recorded for reports)."""

    @property
    def done(self) -> bool:
        """Whether the ``data: [DONE]`` event has been parsed."""
        return self._done

    @property
    def line_number(self) -> int:
        """How many complete lines have been parsed."""
        return self._line_number

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse the next bytes of the stream; returns the events they complete, in order.

        On a violation the events this call completed before it ride on the error's ``events``.
        """
        self._check_usable()
        events: list[SSEEvent] = []
        if not chunk:
            return events
        self._buffer += chunk
        try:
            while True:
                if self._done:
                    self._fail(_AFTER_DONE, self._line_number + 1, bytes(self._buffer))
                end = self._buffer.find(b"\n", self._scanned)
                if end < 0:
                    self._scanned = len(self._buffer)
                    if self._max_line_bytes is not None and len(self._buffer) > self._max_line_bytes:
                        self._fail(f"line longer than {self._max_line_bytes} bytes", self._line_number + 1, bytes(self._buffer))
                    return events
                raw = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                self._scanned = 0
                self._line_number += 1
                event = self._line(raw)
                if event is not None:
                    events.append(event)
                if self._done and not self._buffer:
                    return events
        except StreamProtocolError as exc:
            exc.events = tuple(events)
            raise

    def close(self) -> None:
        """Declare the end of the stream; raises when it ends inside a line or an event."""
        self._check_usable()
        if self._buffer:
            self._fail("stream ended inside a line: the last line has no line terminator", self._line_number + 1, bytes(self._buffer))
        if self._pending is not None:
            number, raw, _text = self._pending
            self._fail("stream ended after a data line without the blank line that ends its event", number, raw)

    def _line(self, raw: bytes) -> SSEEvent | None:
        number = self._line_number
        if raw.endswith(b"\r"):
            raw = raw[:-1]
            self.saw_crlf = True
        if b"\r" in raw:
            self._fail("bare carriage return inside a line; lines end with \\n or \\r\\n", number, raw)
        if self._max_line_bytes is not None and len(raw) > self._max_line_bytes:
            self._fail(f"line longer than {self._max_line_bytes} bytes", number, raw)
        if self._pending is not None:
            return self._event_end(number, raw, self._pending)
        if raw == b"" or raw.startswith(b":"):
            return None
        if raw.startswith(b"data:"):
            self._pending = (number, raw, self._payload(number, raw))
            return None
        name, colon, _value = raw.partition(b":")
        if colon and name in (b"event", b"id", b"retry"):
            self._fail(f"field {name.decode()!r} is not part of the LLMOS grammar; only 'data: ' lines and ':' comments are", number, raw)
        self._fail("expected a 'data: ' line, a ':' comment or a blank line", number, raw)

    def _payload(self, number: int, raw: bytes) -> str:
        if not raw.startswith(_DATA_PREFIX):
            self._fail("expected 'data: ' with one space after the colon", number, raw)
        try:
            text = raw[len(_DATA_PREFIX) :].decode("utf-8")
        except UnicodeDecodeError as exc:
            self._fail(f"data is not valid UTF-8 (byte {exc.start + len(_DATA_PREFIX)} of the line)", number, raw)
        if text != DONE_PAYLOAD:
            try:
                json.loads(text, parse_constant=_reject_constant)
            except ValueError as exc:
                self._fail(f"data is neither JSON nor [DONE]: {exc}", number, raw)
        return text

    def _event_end(self, number: int, raw: bytes, pending: tuple[int, bytes, str]) -> SSEEvent:
        start, _data_raw, text = pending
        if raw != b"":
            self._fail(f"expected the blank line that ends the event whose data line is line {start}", number, raw)
        self._pending = None
        if text == DONE_PAYLOAD:
            self._done = True
            return DoneEvent(line_number=start)
        return DataEvent(text, line_number=start)

    def _fail(self, message: str, number: int, raw: bytes) -> NoReturn:
        self._failed = StreamProtocolError(message, line_number=number, line=_shown(raw))
        raise self._failed

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise StreamProtocolError(f"parser already failed: {self._failed}")
