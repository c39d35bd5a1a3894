"""Turns a growing list of generated token ids into safe text deltas: incremental decoding and stop strings.

Pure Python so the tricky parts (multi-byte characters split over tokens, stop strings split over deltas)
can be tested exhaustively without a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

REPLACEMENT_CHAR = "\ufffd"


class StopFilter:
    """Cuts a growing text at the first stop string and never releases any part of one.

    `feed` receives the whole text generated so far (each call extends the previous one) and returns the next
    piece that is safe to send: a tail that could still become a stop string is held back until it either
    completes one (then the text is cut before it) or stops matching.
    """

    def __init__(self, stop: Sequence[str]) -> None:
        self._stop = tuple(s for s in stop if s)
        self._longest = max((len(s) for s in self._stop), default=0)
        self._emitted = 0
        self.stopped = False

    @property
    def emitted(self) -> int:
        """How many characters of the text have been released so far."""
        return self._emitted

    def feed(self, text: str, *, final: bool = False) -> tuple[str, bool]:
        """Returns (new safe text, whether a stop string was found); `final` releases everything held back."""
        if self.stopped:
            return "", True
        start = self._emitted
        cut = min((i for i in (text.find(s, start) for s in self._stop) if i >= 0), default=-1)
        if cut >= 0:
            self._emitted = cut
            self.stopped = True
            return text[start:cut], True
        end = len(text) if final else len(text) - self._held_back(text, start)
        self._emitted = max(end, start)
        return text[start:end], False

    def _held_back(self, text: str, start: int) -> int:
        """Length of the longest tail of text[start:] that is a proper prefix of some stop string."""
        for size in range(min(self._longest - 1, len(text) - start), 0, -1):
            tail = text[len(text) - size :]
            if any(s.startswith(tail) for s in self._stop):
                return size
        return 0


class TextStream:
    """Incremental detokenizer with stop-string hold-back for one generated sequence.

    Every push decodes the whole id list and diffs it against what was already released, which is correct
    for tokens that merge or split characters; a tail of replacement characters (an incomplete UTF-8
    sequence) is held until the next token completes it or the stream ends.
    """

    def __init__(self, decode: Callable[[list[int]], str], stop: Sequence[str] = ()) -> None:
        self._decode = decode
        self._ids: list[int] = []
        self._filter = StopFilter(stop)

    @property
    def stopped(self) -> bool:
        return self._filter.stopped

    def push(self, token_id: int) -> tuple[str, bool]:
        """Adds a generated token; returns (new safe text, whether a stop string was completed)."""
        self._ids.append(token_id)
        text = self._decode(self._ids)
        return self._filter.feed(text.rstrip(REPLACEMENT_CHAR))

    def finish(self) -> str:
        """Releases whatever is still held back (the sequence has ended without a stop string)."""
        return self._filter.feed(self._decode(self._ids), final=True)[0]
