"""Redis restarts under two nodes (issue 20 item 6): live delivery across nodes resumes within 2 s of
Redis' return, and the sockets of a node whose fan-out was interrupted are told to `sync`.

The test runs its own redis-server on a free loopback port, so it can stop and start it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from server.migrate import upgrade
from tests.conftest import bearer, free_port, port_open, require_service
from tests.ops.nodes import shut_down, start_node, user_with_tokens

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


class OwnRedis:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(100):
            if port_open("127.0.0.1", self.port):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    require_service(shutil.which("redis-server") is not None, "redis-server (Debian package)")
    redis = OwnRedis(tmp_path)
    try:
        yield redis
    finally:
        redis.stop()


async def client_on(url: str, token: str) -> tuple[socketio.AsyncClient, dict[str, list[Any]]]:
    sio = socketio.AsyncClient(reconnection=False)
    seen: dict[str, list[Any]] = defaultdict(list)
    for name in ("message:new", "sync:needed"):
        sio.on(name, (lambda n: lambda data: seen[n].append((asyncio.get_running_loop().time(), data)))(name))
    await sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return sio, seen


async def until(condition, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_live_delivery_across_nodes_resumes_within_2s_of_redis_returning(tmp_path, pg_database, own_redis):
    await own_redis.start()
    await upgrade(pg_database)
    _, [(_, anna_token)] = await user_with_tokens(pg_database, "anna", 1)
    bertil_id, [(_, bertil_token)] = await user_with_tokens(pg_database, "bertil", 1)
    shared_keys = {"BRYGGA_KEY_FILE": str(tmp_path / "kek.json")}  # nodes share the key file (docs/operations.md)
    node_a = await start_node(tmp_path, "a", pg_database, own_redis.url, shared_keys)
    node_b = await start_node(tmp_path, "b", pg_database, own_redis.url, shared_keys)
    clients: list[socketio.AsyncClient] = []
    try:
        async with aiohttp.ClientSession() as http:
            created = await http.post(
                f"{node_a.url}/api/v1/conversations",
                json={"subject": "Utskrivning", "user_ids": [str(bertil_id)]},
                headers=bearer(anna_token),
            )
            assert created.status == 201, await created.text()
            conversation_id = (await created.json())["id"]
        anna, _ = await client_on(node_a.url, anna_token)
        bertil, seen = await client_on(node_b.url, bertil_token)
        clients += [anna, bertil]

        async def send(body: str) -> str:
            ack = await anna.call(
                "message:send", {"conversation_id": conversation_id, "client_id": str(uuid.uuid4()), "body": body}
            )
            assert ack["ok"] is True, ack
            return str(ack["message"]["id"])

        def live(message_id: str) -> bool:
            return any(data["id"] == message_id for _at, data in seen["message:new"])

        before = await send("före avbrottet")
        await until(lambda: live(before), 5)

        own_redis.stop()
        during = await send("under avbrottet")  # stored and acked; node B cannot hear about it
        await asyncio.sleep(3)  # long enough for the stock listener's back-off to grow past 2 s
        assert not live(during)

        await own_redis.start()
        back = asyncio.get_running_loop().time()
        await until(lambda: bool(seen["sync:needed"]), 2.0)  # node B tells its sockets to catch up
        told = seen["sync:needed"][0][0] - back
        after = await send("efter avbrottet")
        await until(lambda: live(after), 2.0 - (asyncio.get_running_loop().time() - back))
        resumed = asyncio.get_running_loop().time() - back
        synced = await bertil.call("sync", {"since": 0})
        assert synced["ok"] is True, synced
        assert during in [message["id"] for message in synced["messages"]]
        print(f"\nredis back: sync:needed after {told:.2f} s, live delivery across nodes after {resumed:.2f} s")
    finally:
        logs = await shut_down(clients, [node_a, node_b])
    assert "Traceback" not in logs
