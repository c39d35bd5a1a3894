"""The SSE parser: valid streams parse back whatever the chunking; every violation names its line."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmos_std.sse import DataEvent, DoneEvent, SSEEvent, SSEParser, StreamProtocolError

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
# Comments and payloads carry non-ASCII text so that chunk splits fall inside multi-byte characters.
COMMENT_TEXT = st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]), max_size=20)
ITEMS = st.lists(
    st.one_of(
        st.tuples(st.just("data"), JSON_VALUES.map(lambda v: json.dumps(v, ensure_ascii=False))),
        st.tuples(st.just("comment"), COMMENT_TEXT),
        st.tuples(st.just("blank"), st.just("")),
    ),
    max_size=8,
)


def _serialize(items: list[tuple[str, str]], eols: list[str]) -> tuple[bytes, list[SSEEvent]]:
    """The wire bytes of a valid stream and the events it must parse to; ``eols`` picks each line's ending."""
    lines: list[str] = []
    events: list[SSEEvent] = []
    for kind, text in items:
        if kind == "data":
            lines += [f"data: {text}", ""]
            events.append(DataEvent(text))
        elif kind == "comment":
            lines.append(f":{text}")
        else:
            lines.append("")
    lines += ["data: [DONE]", ""]
    events.append(DoneEvent())
    wire = "".join(line + eols[i % len(eols)] for i, line in enumerate(lines))
    return wire.encode("utf-8"), events


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


def _parse(pieces: list[bytes]) -> tuple[SSEParser, list[SSEEvent]]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for piece in pieces:
        events += parser.feed(piece)
    parser.close()
    return parser, events


@settings(max_examples=300, deadline=None)
@given(ITEMS, st.lists(st.sampled_from(["\n", "\r\n"]), min_size=1, max_size=4), st.lists(st.integers(min_value=0), max_size=12))
def test_valid_stream_parses_back_whatever_the_chunking(items: list[tuple[str, str]], eols: list[str], cuts: list[int]) -> None:
    wire, expected = _serialize(items, eols)
    parser, events = _parse(_split(wire, cuts))
    assert events == expected
    assert parser.done
    assert parser.saw_crlf == ("\r\n" in wire.decode())


@settings(max_examples=100, deadline=None)
@given(ITEMS)
def test_byte_at_a_time_equals_all_at_once(items: list[tuple[str, str]]) -> None:
    wire, expected = _serialize(items, ["\n"])
    assert _parse([wire[i : i + 1] for i in range(len(wire))])[1] == expected
    assert _parse([wire])[1] == expected


BAD_LINES = [
    "event: message",  # SSE field the LLMOS grammar does not use
    "id: 7",  # same
    "retry: 100",  # same
    'data:{"a":1}',  # no space after the colon
    "data: {broken",  # not JSON
    "data: NaN",  # Python's json accepts it, JSON does not
    "data",  # a field name without a colon
    "hello world",  # not a field at all
    "data: [DONE] ",  # [DONE] with trailing space is neither [DONE] nor JSON
]


@settings(max_examples=200, deadline=None)
@given(ITEMS, st.sampled_from(BAD_LINES), st.integers(min_value=0), st.lists(st.integers(min_value=0), max_size=6))
def test_an_injected_bad_line_is_reported_at_its_line(items: list[tuple[str, str]], bad: str, position: int, cuts: list[int]) -> None:
    wire, _ = _serialize(items, ["\n"])
    lines = wire.decode().split("\n")[:-1]
    # Only insert where an event is not open: after a blank line, a comment, or at the start.
    boundaries = [0] + [i + 1 for i, line in enumerate(lines[:-2]) if not line.startswith("data: ")]
    at = boundaries[position % len(boundaries)]
    broken = "".join(line + "\n" for line in [*lines[:at], bad, "", *lines[at:]]).encode()
    with pytest.raises(StreamProtocolError) as info:
        _parse(_split(broken, cuts))
    assert info.value.line_number == at + 1
    assert info.value.line == bad


@pytest.mark.parametrize(
    ("wire", "line_number", "fragment"),
    [
        (b"data: {}\ndata: {}\n\n", 2, "blank line that ends the event whose data line is line 1"),  # two data lines in one event
        (b"data: {}\n: ping\n\n", 2, "blank line"),  # a comment before the blank line that ends an event
        (b'data: "\xff"\n\n', 1, "not valid UTF-8"),  # invalid UTF-8 in the payload
        (b"data: {}\rx\n\n", 1, "bare carriage return"),  # lone CR is not a line ending here
        (b"data: [DONE]\n\ndata: {}\n\n", 3, "after the data: [DONE]"),  # an event after [DONE]
        (b"data: [DONE]\n\n: bye\n", 3, "after the data: [DONE]"),  # even a comment after [DONE]
        (b"event: x\n", 1, "field 'event'"),  # the field is named in the message
        (b"data: \n\n", 1, "neither JSON nor [DONE]"),  # empty payload
    ],
)
def test_violations_are_precise(wire: bytes, line_number: int, fragment: str) -> None:
    with pytest.raises(StreamProtocolError) as info:
        _parse([wire])
    assert info.value.line_number == line_number
    assert fragment in str(info.value)


def test_bytes_after_done_in_a_later_chunk_are_a_violation() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: [DONE]\n\n") == [DoneEvent()]
    with pytest.raises(StreamProtocolError, match="after the data: \\[DONE\\]"):
        parser.feed(b"\n")


@pytest.mark.parametrize(
    ("wire", "fragment"),
    [
        (b"data: {}\n\ndata: {}", "no line terminator"),  # cut inside a line
        (b"data: {}\n", "without the blank line"),  # cut between the data line and its blank line
    ],
)
def test_close_raises_on_trailing_partial_data(wire: bytes, fragment: str) -> None:
    parser = SSEParser()
    parser.feed(wire)
    with pytest.raises(StreamProtocolError, match=fragment):
        parser.close()


def test_clean_end_without_done_is_reported_by_done_not_close() -> None:
    parser = SSEParser()
    assert parser.feed(b": hi\n\ndata: {}\n\n") == [DataEvent("{}")]
    parser.close()
    assert not parser.done


def test_events_before_a_violation_ride_on_the_error() -> None:
    parser = SSEParser()
    with pytest.raises(StreamProtocolError) as info:
        parser.feed(b'data: {"a": 1}\n\ndata: 2\n\nid: 3\n')
    assert info.value.events == (DataEvent('{"a": 1}'), DataEvent("2"))
    assert [event.line_number for event in info.value.events] == [1, 3]
    with pytest.raises(StreamProtocolError, match="already failed"):
        parser.feed(b"\n")


def test_line_length_is_bounded() -> None:
    parser = SSEParser(max_line_bytes=16)
    parser.feed(b"data: 1234567890")
    with pytest.raises(StreamProtocolError, match="longer than 16 bytes"):
        parser.feed(b"1")


def test_multibyte_character_split_across_chunks() -> None:
    wire = 'data: "é✓"\n\ndata: [DONE]\n\n'.encode()
    split = wire.index("✓".encode()) + 1  # inside the three-byte character
    _, events = _parse([wire[:split], wire[split:]])
    assert events == [DataEvent('"é✓"'), DoneEvent()]
