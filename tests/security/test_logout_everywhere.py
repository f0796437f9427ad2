""""Log out everywhere" ends every credential of the user (issue 15, item 7): sessions, sockets and
personal access tokens, which must no longer work for REST or for reconnecting."""

from __future__ import annotations

import aiohttp
import pytest
import socketio
from sqlalchemy import select

from server.core.context import CTX
from server.core.models import AccessToken, User
from server.identity import service
from tests.conftest import bearer

ORIGIN = {"Origin": "http://127.0.0.1"}


async def test_logout_everywhere_ends_personal_access_tokens(client, actors):
    ctx = client.app[CTX]
    user_id, first = await actors.user("olof")
    async with ctx.db.transaction() as session:
        second = await service.create_token_for(session, await session.get(User, user_id), "script", None)
    assert (await client.get("/api/v1/tokens", headers=bearer(second))).status == 200

    url = str(client.make_url("/")).rstrip("/")
    async with aiohttp.ClientSession() as http:
        connected = socketio.AsyncClient(reconnection=False, http_session=http)
        await connected.connect(url, auth={"token": second}, headers=ORIGIN, transports=["websocket"])

        answer = await client.post("/api/v1/session/logout-everywhere", headers=bearer(first))
        assert answer.status == 200
        assert (await answer.json())["revoked_tokens"] == 2

        for token in (first, second):  # REST
            assert (await client.get("/api/v1/tokens", headers=bearer(token))).status == 401
        for _ in range(100):  # the open socket is dropped ...
            if not connected.connected:
                break
            await connected.sleep(0.02)
        assert not connected.connected
        again = socketio.AsyncClient(reconnection=False, http_session=http)  # ... and cannot come back
        with pytest.raises(socketio.exceptions.ConnectionError):
            await again.connect(url, auth={"token": second}, headers=ORIGIN, transports=["websocket"])
    async with ctx.db.transaction() as session:
        rows = (await session.execute(select(AccessToken).where(AccessToken.user_id == user_id))).scalars().all()
    assert len(rows) == 2 and all(row.revoked_at is not None for row in rows)
