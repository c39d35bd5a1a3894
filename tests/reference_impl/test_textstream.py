"""Incremental decoding and stop-string hold-back, tested without a model."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from reference_impl.textstream import REPLACEMENT_CHAR, StopFilter, TextStream


def _feed_chunks(chunks: list[str], stop: list[str]) -> tuple[list[str], bool]:
    """Feeds the growing text chunk by chunk, then ends the stream; returns the deltas and the stop flag."""
    stop_filter = StopFilter(stop)
    text, deltas, stopped = "", [], False
    for chunk in chunks:
        text += chunk
        delta, stopped = stop_filter.feed(text)
        deltas.append(delta)
        if stopped:
            break
    if not stopped:
        deltas.append(stop_filter.feed(text, final=True)[0])
    return deltas, stopped


def _byte_decode(pieces: list[bytes]) -> Callable[[list[int]], str]:
    def decode(ids: list[int]) -> str:
        return b"".join(pieces[i] for i in ids).decode("utf-8", errors="replace")

    return decode


chunk_lists = st.lists(st.text(alphabet="abc\n", max_size=4), max_size=12)


@given(chunks=chunk_lists, stop=st.lists(st.text(alphabet="abc\n", min_size=1, max_size=4), max_size=3))
def test_stop_filter_never_releases_a_stop_and_cuts_at_one(chunks: list[str], stop: list[str]) -> None:
    deltas, stopped = _feed_chunks(chunks, stop)
    text, output = "".join(chunks), "".join(deltas)
    assert text.startswith(output)
    assert not any(s in output for s in stop)
    assert stopped == any(s in text for s in stop)
    if stopped:
        assert any(text[len(output) :].startswith(s) for s in stop)
    else:
        assert output == text


@given(chunks=chunk_lists, stop=st.lists(st.text(alphabet="abc\n", min_size=1, max_size=4), max_size=3))
def test_only_a_possible_stop_start_is_held_back(chunks: list[str], stop: list[str]) -> None:
    # Hold-back must be minimal: whatever is not yet released could still grow into a stop string.
    stop_filter, text = StopFilter(stop), ""
    for chunk in chunks:
        text += chunk
        if stop_filter.feed(text)[1]:
            break
        held = text[stop_filter.emitted :]
        assert held == "" or any(s.startswith(held) and len(held) < len(s) for s in stop)


def test_stop_spanning_two_deltas_is_held_back_then_cut() -> None:
    stop_filter = StopFilter(["END"])
    assert stop_filter.feed("hello E") == ("hello ", False)  # "E" might start the stop string
    assert stop_filter.feed("hello EN") == ("", False)
    assert stop_filter.feed("hello END and more") == ("", True)
    assert stop_filter.feed("hello END and more", final=True) == ("", True)


def test_held_back_tail_is_released_when_it_stops_matching() -> None:
    stop_filter = StopFilter(["END"])
    assert stop_filter.feed("xE") == ("x", False)
    assert stop_filter.feed("xEx") == ("Ex", False)
    assert stop_filter.feed("xExE", final=True) == ("E", False)


def test_earliest_stop_wins_among_several() -> None:
    assert StopFilter(["cd", "b"]).feed("abcd") == ("a", True)


def test_multibyte_character_split_over_tokens_is_emitted_whole() -> None:
    pieces = [b"caf", b"\xc3", b"\xa9", b" \xe2\x82", b"\xac"]  # "café €" with both characters split
    stream = TextStream(_byte_decode(pieces))
    assert stream.push(0) == ("caf", False)
    assert stream.push(1) == ("", False)
    assert stream.push(2) == ("é", False)
    assert stream.push(3) == (" ", False)
    assert stream.push(4) == ("€", False)
    assert stream.finish() == ""


def test_incomplete_character_at_the_end_is_flushed_as_replacement() -> None:
    stream = TextStream(_byte_decode([b"ok", b"\xe2\x82"]))
    assert stream.push(0) == ("ok", False)
    assert stream.push(1) == ("", False)
    assert stream.finish() == REPLACEMENT_CHAR


@given(text=st.text(max_size=20), cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=10))
def test_byte_split_text_round_trips_without_replacement_chars(text: str, cuts: list[int]) -> None:
    data = text.encode("utf-8")
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    pieces = [data[a:b] for a, b in zip(bounds, bounds[1:])]
    stream = TextStream(_byte_decode(pieces))
    deltas = [stream.push(i)[0] for i in range(len(pieces))] + [stream.finish()]
    assert "".join(deltas) == text
    if REPLACEMENT_CHAR not in text:
        assert not any(REPLACEMENT_CHAR in d for d in deltas)


def test_stream_cuts_at_a_stop_split_over_tokens() -> None:
    stream = TextStream(_byte_decode([b"one t", b"wo", b" three"]), stop=["two"])
    assert stream.push(0) == ("one ", False)
    assert stream.push(1) == ("", True)
    assert stream.stopped
    assert stream.finish() == ""
