"""The engine's per-token log probabilities in the two wire forms (LLMOS-LOGP-001, -002)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from llmos_std.logprobs import CompletionLogprobs, TokenLogprob, TopLogprob

from reference_impl.batching import TokenLogprob as EngineLogprob

TokenText = Callable[[int], str]


def chat_entries(entries: Sequence[EngineLogprob], text: TokenText) -> list[TokenLogprob]:
    def top(token: int, logprob: float) -> TopLogprob:
        piece = text(token)
        return TopLogprob(token=piece, logprob=min(logprob, 0.0), bytes=list(piece.encode("utf-8")))

    out = []
    for entry in entries:
        piece = text(entry.token)
        out.append(TokenLogprob(token=piece, logprob=min(entry.logprob, 0.0), bytes=list(piece.encode("utf-8")),
                                top_logprobs=[top(t, lp) for t, lp in entry.top]))
    return out


def completion_logprobs(entries: Sequence[EngineLogprob], text: TokenText, offset: int) -> tuple[CompletionLogprobs, int]:
    """The legacy lists for ``entries``, offsets counted from ``offset``; returns the offset after them."""
    tokens: list[str] = []
    offsets: list[int] = []
    tops: list[dict[str, float] | None] = []
    for entry in entries:
        piece = text(entry.token)
        tokens.append(piece)
        offsets.append(offset)
        offset += len(piece)
        alternatives: dict[str, float] = {}
        for token, logprob in entry.top:
            alternatives.setdefault(text(token), min(logprob, 0.0))
        tops.append(alternatives)
    result = CompletionLogprobs(tokens=tokens, token_logprobs=[min(e.logprob, 0.0) for e in entries], top_logprobs=tops, text_offset=offsets)
    return result, offset
