"""Rate limiting behind one small protocol, so a Redis implementation can replace the in-memory one.

`hit(key, limit, window_seconds)` counts one event for `key` and returns True when it is allowed
(at most `limit` events in any `window_seconds`, approximated with two fixed windows, as in the
usual sliding-window-counter scheme). `hit_all([(key, limit, window_seconds), ...])` does the same
for several keys at once: allowed only if every key is under its limit, and then counted on every
key; a refused event is counted on none (one round trip to Redis instead of one per key).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

Hit = tuple[str, int, float]  # (key, limit, window_seconds)


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: float) -> bool: ...

    async def hit_all(self, hits: Sequence[Hit]) -> bool: ...


class InMemoryRateLimiter:
    """Per-process sliding-window counter; memory is bounded by pruning windows that ended."""

    def __init__(self, now: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self._now = now
        self._max_keys = max_keys
        # key -> (window start, count in this window, count in previous window)
        self._state: dict[str, tuple[float, int, int]] = {}

    async def hit(self, key: str, limit: int, window_seconds: float) -> bool:
        return await self.hit_all([(key, limit, window_seconds)])

    async def hit_all(self, hits: Sequence[Hit]) -> bool:
        now = self._now()
        updated: list[tuple[str, tuple[float, int, int]]] = []
        allowed = True
        for key, limit, window_seconds in hits:
            window = int(now // window_seconds) * window_seconds
            start, current, previous = self._state.get(key, (window, 0, 0))
            if window != start:
                previous = current if window - start == window_seconds else 0
                start, current = window, 0
            elapsed = (now - start) / window_seconds
            if previous * (1.0 - elapsed) + current + 1 > limit:
                allowed = False
            updated.append((key, (start, current, previous)))
        for (key, (start, current, previous)), (_key, _limit, window_seconds) in zip(updated, hits, strict=True):
            self._state[key] = (start, current + 1 if allowed else current, previous)
            if len(self._state) > self._max_keys:
                self._prune(now, window_seconds)
        return allowed

    def _prune(self, now: float, window_seconds: float) -> None:
        horizon = now - 2 * window_seconds
        for key in [key for key, (start, _c, _p) in self._state.items() if start < horizon]:
            del self._state[key]
