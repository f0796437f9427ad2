"""RedisRateLimiter against the real Redis on loopback: exact limits, atomic under concurrency, shared by
nodes, prefixed expiring keys, clear behaviour when Redis is down."""

from __future__ import annotations

import asyncio
import uuid
from typing import Protocol, runtime_checkable

import pytest
from redis import asyncio as aioredis

from server.core.ratelimit_redis import LocalFirstRateLimiter, RedisRateLimiter
from tests.conftest import REDIS_URL, free_port, port_open, require_service

pytestmark = pytest.mark.redis


@runtime_checkable
class RateLimiter(Protocol):  # the shape server.core.ratelimit defines
    async def hit(self, key: str, limit: int, window_seconds: float) -> bool: ...

    async def hit_all(self, hits: list[tuple[str, int, float]]) -> bool: ...


@pytest.fixture
async def limiter():
    require_service(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    prefix = f"brygga-test:{uuid.uuid4().hex}:"
    limiter = RedisRateLimiter.from_url(REDIS_URL, prefix=prefix)
    yield limiter
    keys = [key async for key in limiter.redis.scan_iter(match=prefix + "*")]
    if keys:
        await limiter.redis.delete(*keys)
    await limiter.close()


async def test_limit_is_exact_and_the_window_slides(limiter):
    assert isinstance(limiter, RateLimiter)
    results = [await limiter.hit("user:1", 3, 0.5) for _ in range(5)]
    assert results == [True, True, True, False, False]
    assert await limiter.hit("user:2", 3, 0.5)  # keys are independent
    await asyncio.sleep(0.6)
    assert await limiter.hit("user:1", 3, 0.5)


async def test_concurrent_hits_from_two_nodes_share_one_budget(limiter):
    other_node = RedisRateLimiter.from_url(REDIS_URL, prefix=limiter.prefix)
    try:
        hits = [node.hit("ip:10.0.0.1", 10, 30) for node in (limiter, other_node) for _ in range(40)]
        results = await asyncio.gather(*hits)
        assert sum(results) == 10
    finally:
        await other_node.close()


async def test_hit_all_is_one_decision_over_all_keys(limiter):
    hits = [("conn:s1", 5, 30), ("user:1", 5, 30), ("send:1", 2, 30)]
    assert [await limiter.hit_all(hits) for _ in range(4)] == [True, True, False, False]
    # The refused events were counted on no key: conn:s1 and user:1 hold two hits each.
    assert [await limiter.hit("user:1", 5, 30) for _ in range(4)] == [True, True, True, False]
    assert await limiter.redis.zcard(limiter.prefix + "conn:s1") == 2
    # A full key anywhere in the list refuses; keys of another event are unaffected.
    assert await limiter.hit_all([("conn:s2", 5, 30), ("user:1", 5, 30)]) is False
    assert await limiter.hit_all([("conn:s2", 5, 30), ("user:2", 5, 30)]) is True


async def test_concurrent_hit_all_from_two_nodes_share_one_budget(limiter):
    other_node = RedisRateLimiter.from_url(REDIS_URL, prefix=limiter.prefix)
    try:
        hits = [
            node.hit_all([(f"conn:{n}", 100, 30), ("send:u", 10, 30)])
            for n, node in enumerate((limiter, other_node) * 30)
        ]
        assert sum(await asyncio.gather(*hits)) == 10
    finally:
        await other_node.close()


async def test_a_burst_of_concurrent_events_is_counted_not_waved_through(limiter, caplog):
    # More concurrent calls than pooled connections (and than redis-py's default cap of 100).
    results = await asyncio.gather(*(limiter.hit("burst", 1000, 30) for _ in range(300)))
    assert all(results)
    assert await limiter.redis.zcard(limiter.prefix + "burst") == 300
    assert "rate limiter unavailable" not in caplog.text


async def test_keys_are_prefixed_and_expire(limiter):
    await limiter.hit("send:abc", 5, 2.0)
    key = limiter.prefix + "send:abc"
    assert await limiter.redis.exists(key)
    ttl_ms = await limiter.redis.pttl(key)
    assert 0 < ttl_ms <= 2000


async def test_unreachable_redis_fails_open_by_default_or_closed_on_request():
    dead = f"redis://127.0.0.1:{free_port()}/0"
    open_limiter = RedisRateLimiter(aioredis.Redis.from_url(dead, socket_connect_timeout=0.5))
    closed_limiter = RedisRateLimiter(aioredis.Redis.from_url(dead, socket_connect_timeout=0.5), fail_open=False)
    try:
        assert await open_limiter.hit("k", 1, 1) is True
        assert await closed_limiter.hit("k", 1, 1) is False
    finally:
        await open_limiter.close()
        await closed_limiter.close()


@pytest.fixture
async def local_first(limiter):
    front = LocalFirstRateLimiter(limiter, headroom=0.5, sync_seconds=0.05)
    yield front
    await front.close()  # closes `limiter` too; the fixture's cleanup tolerates that


async def test_local_first_is_exact_on_one_node_and_records_every_hit(local_first):
    results = [await local_first.hit("user:1", 6, 30) for _ in range(9)]
    assert results == [True] * 6 + [False] * 3
    await local_first.flush()
    assert await local_first.exact.redis.zcard(local_first.exact.prefix + "user:1") == 6


async def test_local_first_allows_far_from_the_limit_without_asking_redis(local_first):
    key = local_first.exact.prefix + "user:2"
    assert all([await local_first.hit("user:2", 100, 30) for _ in range(10)])
    assert await local_first.exact.redis.zcard(key) == 0  # not yet: decided locally, recorded in the background
    await asyncio.sleep(0.2)
    assert await local_first.exact.redis.zcard(key) == 10


async def test_local_first_nodes_share_one_budget_within_the_documented_bound(limiter):
    nodes = [
        LocalFirstRateLimiter(limiter, sync_seconds=0.05),
        LocalFirstRateLimiter(RedisRateLimiter.from_url(REDIS_URL, prefix=limiter.prefix), sync_seconds=0.05),
    ]
    try:
        # Spread over time: each node learns the other's hits from its flushes, so the budget holds exactly.
        paced = []
        for _ in range(20):
            paced += [await node.hit("send:paced", 10, 30) for node in nodes]
            await asyncio.sleep(0.06)
        assert sum(paced) == 10
        # A simultaneous burst on both nodes: at most (nodes - 1) x headroom x limit over the limit.
        burst = await asyncio.gather(*(node.hit("send:burst", 10, 30) for node in nodes for _ in range(40)))
        assert 10 <= sum(burst) <= 10 + 5
    finally:
        for node in nodes:
            await node.close()


async def test_local_first_refuses_while_full_and_lets_in_again_when_the_window_slides(local_first):
    # Limit 4, headroom 0.5: hits 1-2 are decided locally, 3-5 by the exact check in Redis.
    assert [await local_first.hit("user:3", 4, 0.5) for _ in range(5)] == [True] * 4 + [False]
    await asyncio.sleep(0.1)
    assert await local_first.hit("user:3", 4, 0.5) is False
    await asyncio.sleep(0.5)
    assert await local_first.hit("user:3", 4, 0.5) is True
