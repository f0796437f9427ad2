"""A socket connect whose authentication fails inside the server (database error) gets a clear, retryable
refusal at once instead of hanging until the client's own timeout (found by bench/connections.py)."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
import socketio


async def test_database_failure_during_connect_is_a_prompt_refusal(client, actors, migrated):
    _, token = await actors.user("pelle")
    with sqlite3.connect(migrated.data_dir / "brygga.db") as raw:
        raw.execute("ALTER TABLE access_tokens RENAME TO access_tokens_gone")  # a real database failure
    sio = socketio.AsyncClient(reconnection=False)
    errors: list[object] = []
    sio.on("connect_error", errors.append)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(
            str(client.make_url("/")).rstrip("/"), auth={"token": token}, transports=["websocket"], wait_timeout=10
        )
    assert loop.time() - started < 5
    message = "The server is busy; reconnect in a moment."
    assert errors == [{"message": message, "data": {"code": "unavailable", "message": message}}]


async def test_refusals_carry_a_machine_readable_code(client):
    sio = socketio.AsyncClient(reconnection=False)
    errors: list[object] = []
    sio.on("connect_error", errors.append)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(str(client.make_url("/")).rstrip("/"), auth={"token": "bry_nope"}, transports=["websocket"])
    message = "The token is unknown, expired or revoked."
    assert errors == [{"message": message, "data": {"code": "invalid_token", "message": message}}]
