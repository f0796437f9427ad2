"""Rate limiting shared by all nodes: an exact sliding-window log in Redis, one atomic Lua call per hit.

Compatible with the `RateLimiter` protocol of `server.core.ratelimit`
(`async def hit(key, limit, window_seconds) -> bool`, True = allowed). Each key is a sorted set under
`<prefix><key>` holding the timestamps (Redis server clock, microseconds) of the allowed hits in the
window; it expires one window after its last allowed hit, so idle keys vanish. Refused hits are not
recorded, so a client that keeps hammering is let in again as soon as its old hits leave the window.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from redis import asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("brygga.ratelimit")

# KEYS[1] key; ARGV[1] limit; ARGV[2] window in microseconds; ARGV[3] unique member
SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  return 1
end
return 0
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
    def from_url(cls, url: str, **kwargs: Any) -> RedisRateLimiter:
        return cls(aioredis.Redis.from_url(url), **kwargs)

    async def hit(self, key: str, limit: int, window_seconds: float) -> bool:
        if limit <= 0:
            return False
        window_us = max(1, int(window_seconds * 1_000_000))
        try:
            allowed = await self._script(keys=[self.prefix + key], args=[limit, window_us, uuid.uuid4().hex])
        except RedisError:
            log.warning("rate limiter unavailable", extra={"fail_open": self.fail_open})
            return self.fail_open
        return bool(allowed == 1)

    async def close(self) -> None:
        await self.redis.aclose()
