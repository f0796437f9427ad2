"""Relay placement: a meeting nobody owns goes to the least-loaded node that announced room to spare;
and the owner check after a failover tells only the sockets whose owner died to join again.

Nodes announce `{participants, rooms, capacity, at}` in the Redis hash `brygga:video:nodes` once a
second (server/video/cluster.py). These tests write announcements as nodes would, on a real Redis
(a database of its own, so that other tests' nodes do not announce into it), and ask a node where a
new meeting goes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis import asyncio as aioredis

from server.video.cluster import NODES_KEY, Directory
from tests.conftest import port_open, require_service

PLACEMENT_REDIS = "redis://127.0.0.1:6379/11"


@pytest.fixture
async def redis() -> AsyncIterator[aioredis.Redis]:
    require_service(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    client = aioredis.Redis.from_url(PLACEMENT_REDIS)
    await client.delete(NODES_KEY)
    yield client
    await client.delete(NODES_KEY)
    await client.aclose()


def node(name: str, sio: Any = None) -> Directory:
    # Placement and owner checks read only Redis; rooms and database are not touched.
    return Directory(
        rooms=None,  # type: ignore[arg-type]
        sio=sio,
        db=None,  # type: ignore[arg-type]
        node=name,
        redis_url=PLACEMENT_REDIS,
        lease_seconds=5.0,
        capacity=10,
    )


async def announce(redis: aioredis.Redis, name: str, participants: int, capacity: int, age: float = 0.0) -> None:
    info: dict[str, Any] = {"participants": participants, "rooms": 1, "capacity": capacity, "at": time.time() - age}
    await redis.hset(NODES_KEY, name, json.dumps(info))


async def place(name: str) -> str:
    directory = node(name)
    try:
        return await directory._place()
    finally:
        assert directory.redis is not None
        await directory.redis.aclose()


async def test_a_new_meeting_goes_to_the_least_loaded_relay(redis):
    await announce(redis, "node-1", participants=6, capacity=10)
    await announce(redis, "node-2", participants=3, capacity=10)
    await announce(redis, "relay-host", participants=8, capacity=50)  # a relay-only host with more room
    assert await place("node-1") == "relay-host"
    assert await place("node-2") == "relay-host"


async def test_full_and_silent_nodes_get_no_new_meetings(redis):
    await announce(redis, "node-1", participants=9, capacity=10)
    await announce(redis, "full", participants=10, capacity=10)
    await announce(redis, "dead", participants=0, capacity=10, age=10.0)  # stopped announcing
    assert await place("node-2") == "node-1"


async def test_a_node_keeps_the_meeting_on_a_tie_or_when_nobody_announced(redis):
    assert await place("node-1") == "node-1"
    await announce(redis, "node-1", participants=2, capacity=10)
    await announce(redis, "node-2", participants=2, capacity=10)
    assert await place("node-1") == "node-1"
    assert await place("node-2") == "node-2"


async def test_when_every_relay_is_full_the_asking_node_takes_it(redis):
    await announce(redis, "node-1", participants=10, capacity=10)
    assert await place("node-2") == "node-2"


class Sockets:
    """Records what a node's owner check does to its sockets (python-socketio's AsyncServer would send it)."""

    def __init__(self) -> None:
        self.told: list[tuple[str, str | None]] = []
        self.left: set[str] = set()

    async def emit(self, event: str, data: Any = None, *, to: str | None = None, **_: Any) -> None:
        self.told.append((event, to))

    async def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        self.left.add(sid)


async def test_after_a_takeover_only_sockets_of_the_dead_owner_are_told_to_join_again(redis):
    """A socket that reconnected to this node and joined again before the owner check ran is in this
    node's room already: telling it to join again would leave it without media."""
    sockets = Sockets()
    survivor = node("node-2", sockets)
    listener = redis.pubsub()
    await listener.subscribe("brygga:video:node:node-3")  # a live owner of another meeting
    meeting, other_meeting = uuid.uuid4(), uuid.uuid4()
    survivor.members = {
        meeting: {"rejoined": "node-2", "still-on-dead-owner": "node-1"},
        other_meeting: {"fine": "node-3"},
    }
    try:
        await survivor._check_owners()
    finally:
        await listener.aclose()
        assert survivor.redis is not None
        await survivor.redis.aclose()
    assert sockets.told == [("video:media_failed", "still-on-dead-owner")]
    assert sockets.left == {"still-on-dead-owner"}
    assert survivor.members == {meeting: {"rejoined": "node-2"}, other_meeting: {"fine": "node-3"}}
