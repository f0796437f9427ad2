"""Rate limiting shared by all nodes: an exact sliding-window log in Redis, one atomic Lua call per event.

Compatible with the `RateLimiter` protocol of `server.core.ratelimit`
(`async def hit(key, limit, window_seconds) -> bool`, True = allowed; `hit_all` checks and counts
several keys in the same call, all or none). Each key is a sorted set under
`<prefix><key>` holding the timestamps (Redis server clock, microseconds) of the allowed hits in the
window; it expires one window after its last allowed hit, so idle keys vanish. Refused hits are not
recorded, so a client that keeps hammering is let in again as soon as its old hits leave the window.
"""

from __future__ import annotations

import logging
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
            args += [limit, max(1, int(window_seconds * 1_000_000))]
        try:
            allowed = await self._script(keys=[self.prefix + key for key, _limit, _window in hits], args=args)
        except RedisError:
            log.warning("rate limiter unavailable", extra={"fail_open": self.fail_open})
            return self.fail_open
        return bool(allowed == 1)

    async def close(self) -> None:
        await self.redis.aclose()
