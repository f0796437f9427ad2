"""Rate limiting shared by all nodes: an exact sliding-window log in Redis, one atomic Lua call per event
(`RedisRateLimiter`), and in front of it `LocalFirstRateLimiter`, which the server uses: no round trip
while a key is far from its limit.

Compatible with the `RateLimiter` protocol of `server.core.ratelimit`
(`async def hit(key, limit, window_seconds) -> bool`, True = allowed; `hit_all` checks and counts
several keys in the same call, all or none). Each key is a sorted set under
`<prefix><key>` holding the timestamps (Redis server clock, microseconds) of the allowed hits in the
window; it expires one window after its last allowed hit, so idle keys vanish. Refused hits are not
recorded, so a client that keeps hammering is let in again as soon as its old hits leave the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Sequence
from typing import Any

from redis import asyncio as aioredis
from redis.exceptions import RedisError

from server.core.ratelimit import Hit

log = logging.getLogger("brygga.ratelimit")

# KEYS[i] key; ARGV[1] unique member; ARGV[2i] limit and ARGV[2i+1] window in microseconds of KEYS[i].
# Allowed only if every key is under its limit; then the hit is recorded on every key, else on none.
SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= tonumber(ARGV[2 * i]) then
    return 0
  end
end
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[1])
  redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[2 * i + 1]) / 1000))
end
return 1
"""


def _micros(window_seconds: float) -> int:
    """A window as the scripts take it: whole microseconds, at least one."""
    return max(1, int(window_seconds * 1_000_000))


class RedisRateLimiter:
    """`await limiter.hit("socket:send:<user id>", 20, 10.0)` → True if allowed, False if over the limit.

    If Redis cannot be reached the limiter fails open (allows and logs a warning) unless
    `fail_open=False`; Redis being down already breaks cross-node fan-out, and refusing every care
    message because the limiter is down would be worse than briefly not limiting.
    """

    def __init__(self, redis: aioredis.Redis, *, prefix: str = "brygga:rl:", fail_open: bool = True) -> None:
        self.redis = redis
        self.prefix = prefix
        self.fail_open = fail_open
        self._script: Any = redis.register_script(SLIDING_WINDOW)

    @classmethod
    def from_url(cls, url: str, *, max_connections: int = 50, **kwargs: Any) -> RedisRateLimiter:
        # A blocking pool: a burst of concurrent events waits briefly for one of `max_connections`
        # connections. redis-py's default pool raises MaxConnectionsError beyond 100 concurrent calls,
        # which here would mean failing open (no limit) exactly when a client floods the node.
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=max_connections, timeout=5)
        return cls(aioredis.Redis(connection_pool=pool), **kwargs)

    async def hit(self, key: str, limit: int, window_seconds: float) -> bool:
        return await self.hit_all([(key, limit, window_seconds)])

    async def hit_all(self, hits: Sequence[Hit]) -> bool:
        """One Lua call for all keys (a socket.io event checks two or three)."""
        if any(limit <= 0 for _key, limit, _window in hits):
            return False
        args: list[str | int] = [uuid.uuid4().hex]
        for _key, limit, window_seconds in hits:
            args += [limit, _micros(window_seconds)]
        try:
            allowed = await self._script(keys=[self.prefix + key for key, _limit, _window in hits], args=args)
        except RedisError:
            log.warning("rate limiter unavailable", extra={"fail_open": self.fail_open})
            return self.fail_open
        return bool(allowed == 1)

    async def close(self) -> None:
        await self.redis.aclose()


# KEYS[i] key; ARGV[1] unique prefix; ARGV[2i] hits to record and ARGV[2i+1] window in microseconds of
# KEYS[i]. Records the hits unconditionally (they were allowed already) and returns each key's count.
RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local counts = {}
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  for n = 1, tonumber(ARGV[2 * i]) do
    redis.call('ZADD', key, now, ARGV[1] .. ':' .. i .. ':' .. n)
  end
  redis.call('PEXPIRE', key, math.ceil(window / 1000))
  counts[i] = redis.call('ZCARD', key)
end
return counts
"""


PRUNE_SECONDS = 1.0  # how often the local-first limiter drops counts whose window has passed


class LocalFirstRateLimiter:
    """The shared limits of `RedisRateLimiter` without a Redis round trip per event while a key is far
    from its limit.

    The exact check costs every event a round trip to Redis: with two busy nodes on two cores it held
    the acked sends at 2,050 – 2,178 per second against 2,527 – 2,546 this way (bench/messaging.py,
    back to back). Here an event is allowed at once while the key's
    count (as last read from Redis, plus this node's hits since) stays under `headroom` × limit; its
    hits are recorded in Redis by a background flush every `sync_seconds`, which also reads back the
    count of all nodes. Nearer the limit, this node's pending hits are flushed and the exact check
    decides. One node alone is therefore exact; with several, hits another node has not flushed yet
    are unseen, so a burst spread over n nodes can pass up to (n - 1) × headroom × limit over the
    limit within one flush interval. Keys are the exact limiter's (same prefix and scheme).
    """

    def __init__(self, exact: RedisRateLimiter, *, headroom: float = 0.5, sync_seconds: float = 0.1) -> None:
        self.exact = exact
        self.headroom = headroom
        self.sync_seconds = sync_seconds
        self._script: Any = exact.redis.register_script(RECORD)
        self._known: dict[str, tuple[int, float, float]] = {}  # key -> (count in Redis, read at, window)
        self._unflushed: dict[str, int] = {}  # key -> this node's hits allowed but not yet in Redis
        self._pending: dict[str, tuple[int, float]] = {}  # key -> (hits to record, window)
        self._flushing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._pruned_at = 0.0

    async def hit(self, key: str, limit: int, window_seconds: float) -> bool:
        return await self.hit_all([(key, limit, window_seconds)])

    async def hit_all(self, hits: Sequence[Hit]) -> bool:
        now = time.monotonic()
        near = [hit for hit in hits if self._estimate(hit[0], now) + 1 > hit[1] * self.headroom]
        if not near:
            for key, _limit, window_seconds in hits:
                self._unflushed[key] = self._unflushed.get(key, 0) + 1
                count, _ = self._pending.get(key, (0, window_seconds))
                self._pending[key] = (count + 1, window_seconds)
            self._start_flusher()
            return True
        await self.flush()  # so that the exact check counts this node's hits
        for key, limit, window_seconds in near:
            # Exact for a window after this: the hits it records are in Redis only, not in `_known`.
            self._known[key] = (math.ceil(limit * self.headroom), time.monotonic(), window_seconds)
        return await self.exact.hit_all(hits)

    def _estimate(self, key: str, now: float) -> int:
        count, read_at, window_seconds = self._known.get(key, (0, 0.0, 0.0))
        fresh = count if now - read_at < window_seconds else 0  # older hits have left the window
        return fresh + self._unflushed.get(key, 0)

    def _start_flusher(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush_soon(), name="ratelimit-flush")

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self.sync_seconds)
        await self.flush()

    async def flush(self) -> None:
        """Record this node's allowed hits in Redis and read back every node's count of those keys."""
        async with self._flushing:
            pending, self._pending = self._pending, {}
            if not pending:
                return
            keys = list(pending)
            args: list[str | int] = [uuid.uuid4().hex]
            for key in keys:
                count, window_seconds = pending[key]
                args += [count, _micros(window_seconds)]
            try:
                counts = await self._script(keys=[self.exact.prefix + key for key in keys], args=args)
            except RedisError:
                log.warning("rate limiter unavailable", extra={"fail_open": self.exact.fail_open})
                counts = [0] * len(keys)
            now = time.monotonic()
            for key, total in zip(keys, counts, strict=True):
                recorded, window_seconds = pending[key]
                self._known[key] = (int(total), now, window_seconds)
                left = self._unflushed.get(key, 0) - recorded
                if left > 0:
                    self._unflushed[key] = left
                else:
                    self._unflushed.pop(key, None)
            self._forget_expired(now)

    def _forget_expired(self, now: float) -> None:
        # A scan of every known key (one per connection and user), so not on each 0.1 s flush.
        if now - self._pruned_at < PRUNE_SECONDS:
            return
        self._pruned_at = now
        expired = [key for key, (_c, read_at, window) in self._known.items() if now - read_at >= window]
        for key in expired:
            if key not in self._unflushed:
                del self._known[key]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
        await self.exact.close()
