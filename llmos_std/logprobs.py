"""Token log probabilities: the chat form (``logprobs`` + ``top_logprobs``) and the legacy completions form.

Values are natural logarithms of the probabilities the server's sampler drew from (after any
constraint mask, before temperature), so every value is at most 0 (LLMOS-LOGP-001, -002).
"""

from __future__ import annotations

from pydantic import Field

from llmos_std.wire import OpenWireModel

MAX_TOP_LOGPROBS = 20
MAX_COMPLETION_LOGPROBS = 5


class TopLogprob(OpenWireModel):
    token: str
    logprob: float = Field(le=0)
    bytes: list[int] | None
    """The token's UTF-8 bytes (a token may hold part of a character)."""


class TokenLogprob(OpenWireModel):
    token: str
    logprob: float = Field(le=0)
    bytes: list[int] | None
    top_logprobs: list[TopLogprob]
    """The most likely tokens at this position, most likely first; as many as ``top_logprobs`` asked."""


class ChatLogprobs(OpenWireModel):
    content: list[TokenLogprob] | None
    """One entry per completion token, in order."""
    refusal: list[TokenLogprob] | None = None


class CompletionLogprobs(OpenWireModel):
    """The legacy form: parallel lists, one element per completion token."""

    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None] | None
    text_offset: list[int]
    """Each token's character offset in the choice's text."""
