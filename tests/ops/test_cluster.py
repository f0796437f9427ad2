"""Two real nodes on one PostgreSQL database and one Redis: revoking on node A drops sockets on node B."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import aiohttp
import pytest
import socketio

from server.migrate import upgrade
from tests.conftest import REDIS_URL, bearer, port_open, require_service
from tests.ops.nodes import node_env, shut_down, start_node, user_with_tokens

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


async def wait_for(condition, timeout: float = 5.0) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not condition():
        if loop.time() - started > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
    return loop.time() - started


async def test_revocation_on_node_a_drops_sockets_on_node_b(tmp_path, pg_database):
    require_service(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    await upgrade(pg_database)
    _, [(socket_token_id, socket_token), (_, api_token)] = await user_with_tokens(pg_database, "kalle")
    node_a = await start_node(tmp_path, "a", pg_database, REDIS_URL)
    node_b = await start_node(tmp_path, "b", pg_database, REDIS_URL)
    clients: list[socketio.AsyncClient] = []
    try:
        client = socketio.AsyncClient(reconnection=False)
        clients.append(client)
        await client.connect(node_b.url, auth={"token": socket_token}, transports=["websocket"])
        _, [(_, bystander_token)] = await user_with_tokens(pg_database, "lisa", 1)
        bystander = socketio.AsyncClient(reconnection=False)
        clients.append(bystander)
        await bystander.connect(node_b.url, auth={"token": bystander_token}, transports=["websocket"])

        revoke = f"{node_a.url}/api/v1/tokens/{socket_token_id}"
        async with aiohttp.ClientSession() as http, http.delete(revoke, headers=bearer(api_token)) as response:
            assert response.status == 204
        elapsed = await wait_for(lambda: not client.connected, timeout=2.0)  # security.md: < 2 s
        assert elapsed < 2.0
        assert bystander.connected  # only that user's sockets go

        # The revoked token no longer connects anywhere; the user's other credential still does.
        with pytest.raises(socketio.exceptions.ConnectionError):
            await socketio.AsyncClient(reconnection=False).connect(
                node_b.url, auth={"token": socket_token}, transports=["websocket"]
            )
        again = socketio.AsyncClient(reconnection=False)
        clients.append(again)
        await again.connect(node_a.url, auth={"token": api_token}, transports=["websocket"])

        # Disabling the account from the CLI (a third process) drops it on every node, too.
        env = node_env(tmp_path / "cli", 0, pg_database, REDIS_URL)
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "server", "user", "disable", "--login", "kalle"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        await wait_for(lambda: not again.connected, timeout=2.0)
        assert bystander.connected
    finally:
        logs = await shut_down(clients, [node_a, node_b])
    assert "Traceback" not in logs
