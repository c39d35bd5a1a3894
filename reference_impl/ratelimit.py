"""Per-key rate limits: a token bucket per key, refilled continuously at ``limit`` tokens a minute."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass


@dataclass
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int
    """Seconds until the bucket is full again (RateLimit-Reset)."""
    retry_after: int
    """Seconds until one more request is allowed (Retry-After), 0 when allowed."""


class RateLimiter:
    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key_id: str, per_minute: int, now: float | None = None) -> Decision:
        now = time.monotonic() if now is None else now
        rate = per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.get(key_id, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - last) * rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key_id] = (tokens, now)
        retry = 0 if allowed else max(1, math.ceil((1.0 - tokens) / rate))
        reset = math.ceil((per_minute - tokens) / rate)
        return Decision(allowed, per_minute, int(tokens), reset, retry)
