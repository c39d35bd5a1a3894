"""Opt-in retries: which refusals are retried, and how long to wait before the next attempt."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from llmos_std.client.errors import parse_retry_after

RETRY_STATUSES = frozenset({429, 503})
"""Refusals that say "not now" before any work was done, so that sending the request again is safe."""
NEVER_RETRIED = frozenset({"get_health_live", "get_health_ready"})
"""Health answers 503 with a Health body when not ready: that is the answer, not a refusal."""
BACKOFF_BASE = 0.5
"""Seconds before the first retry when the refusal has no usable ``Retry-After``; doubled each retry."""


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 0
    """Retries after the first attempt; 0 sends each request once."""
    max_wait: float = 30.0
    """Upper bound on any one wait, whatever ``Retry-After`` asks for."""

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.max_wait < 0:
            raise ValueError("max_retries and max_retry_wait must not be negative")

    def pause(self, operation_id: str, request: httpx.Request, response: httpx.Response, retries_done: int) -> float | None:
        """Seconds to wait before sending ``request`` again, or None when ``response`` is final."""
        if retries_done >= self.max_retries or response.status_code not in RETRY_STATUSES or operation_id in NEVER_RETRIED:
            return None
        # A body sent from an iterator (a blob streamed from disk) has been consumed and cannot be sent again.
        if not isinstance(request.stream, httpx.ByteStream):
            return None
        after = parse_retry_after(response.headers.get("Retry-After"))
        wait = BACKOFF_BASE * 2**retries_done if after is None else after
        return min(wait, self.max_wait)
