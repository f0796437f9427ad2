"""socket.io connection auth and immediate permission changes on open sockets."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import socketio

from server.core.connections import Connections
from server.core.db import utcnow
from server.core.models import User
from server.identity import service, tokens
from tests.conftest import bearer


def url_of(client) -> str:
    return str(client.make_url("/")).rstrip("/")


async def connect(client, **kwargs) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(url_of(client), transports=["websocket"], wait_timeout=10, **kwargs)
    return sio


async def refused_reason(client, **kwargs) -> str:
    """Connect and expect a refusal; returns the connect_error reason the server gave (code)."""
    sio = socketio.AsyncClient(reconnection=False)
    reasons: list[object] = []
    sio.on("connect_error", lambda data=None: reasons.append(data))
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(url_of(client), transports=["websocket"], wait_timeout=10, **kwargs)
    if reasons and isinstance(reasons[0], dict) and isinstance(reasons[0].get("data"), dict):
        return str(reasons[0]["data"]["code"])
    return "refused"


async def test_foreign_origin_no_credentials_expired_and_revoked_tokens_are_refused(client, actors, ctx):
    user_id, token = await actors.user("ulla")
    assert "unauthorized" in await refused_reason(client)
    assert await refused_reason(client, auth={"token": token}, headers={"Origin": "https://evil.example"}) == "refused"
    async with ctx.db.transaction() as session:
        expired, expired_secret = await tokens.create_token(session, user_id, "short", timedelta(hours=1))
        expired.expires_at = utcnow() - timedelta(seconds=1)
        revoked, revoked_secret = await tokens.create_token(session, user_id, "gone")
        revoked.revoked_at = utcnow()
    assert "invalid_token" in await refused_reason(client, auth={"token": expired_secret})
    assert "invalid_token" in await refused_reason(client, auth={"token": revoked_secret})
    sio = await connect(client, auth={"token": token})  # the same token is fine from a non-browser client
    await sio.disconnect()


async def wait_until(check, timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_membership_change_and_revocation_reach_open_sockets_at_once(client, actors, ctx):
    unit_a = await actors.unit("Avdelning A")
    unit_b = await actors.unit("Avdelning B")
    user_id, token = await actors.user("vera", units={unit_a: "member"})
    sio = await connect(client, auth={"token": token})
    dropped = asyncio.Event()
    sio.on("disconnect", lambda *args: dropped.set())
    connections: Connections = ctx.connections
    (sid,) = connections.of_user(user_id)
    assert connections.by_sid[sid].unit_ids == {unit_a}

    # A change made elsewhere (CLI or another node) arrives through the change feed.
    async with ctx.db.transaction() as session:
        user = await session.get(User, user_id)
        await service.set_membership(session, user, unit_b, "member")
        await service.remove_membership(session, user, unit_a)
    await wait_until(lambda: connections.by_sid[sid].unit_ids == {unit_b})
    assert sid in ctx.sio.manager.rooms["/"].get(f"unit:{unit_b}", {})
    assert sid not in ctx.sio.manager.rooms["/"].get(f"unit:{unit_a}", {})

    # Revoking the token that opened the socket closes it.
    token_id = connections.by_sid[sid].token_id
    async with ctx.db.transaction() as session:
        assert await service.revoke_token(session, token_id, utcnow())
    await asyncio.wait_for(dropped.wait(), 3)


async def test_disabling_an_account_drops_its_sockets(client, actors, ctx):
    user_id, token = await actors.user("wilma")
    sio = await connect(client, auth={"token": token})
    dropped = asyncio.Event()
    sio.on("disconnect", lambda *args: dropped.set())
    async with ctx.db.transaction() as session:
        await service.set_disabled(session, await session.get(User, user_id), True)
    await asyncio.wait_for(dropped.wait(), 3)
    assert (await client.get("/api/v1/me", headers=bearer(token))).status == 401
