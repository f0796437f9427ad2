"""Rate limiting: `await limiter.hit(key, limit, window_seconds)` is True while `key` is within its budget.

The in-memory limiter is a sliding-window log per key, enough for one node; a Redis implementation
can replace it behind the same interface (registered as `ctx.services["ratelimiter"]`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Protocol


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: float) -> bool:
        """Count one hit for `key`; False once more than `limit` hits fall within `window_seconds`."""
        ...


class InMemoryRateLimiter:
    MAX_KEYS = 100_000  # bounded memory: the oldest keys are dropped first

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.hits: dict[str, deque[float]] = {}

    async def hit(self, key: str, limit: int, window_seconds: float) -> bool:
        now = self.clock()
        window = self.hits.get(key)
        if window is None:
            if len(self.hits) >= self.MAX_KEYS:
                self.hits.pop(next(iter(self.hits)))
            window = self.hits[key] = deque()
        while window and window[0] <= now - window_seconds:
            window.popleft()
        if len(window) >= limit:
            return False
        window.append(now)
        return True

    def forget(self, prefix: str) -> None:
        """Drop every key starting with `prefix` (e.g. when a connection closes)."""
        for key in [key for key in self.hits if key.startswith(prefix)]:
            del self.hits[key]
