"""socket.io basics: authenticated connect, clear refusals, unknown events answered with an error ack."""

from __future__ import annotations

import pytest
import socketio

from tests.conftest import IN_CI  # noqa: F401


def url_of(client) -> str:
    return str(client.make_url("/")).rstrip("/")


async def test_token_connects_and_unknown_event_gets_error_ack(client, actors):
    _, token = await actors.user("dora")
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(url_of(client), auth={"token": token}, transports=["websocket"], wait_timeout=10)
    try:
        ack = await sio.call("no:such:event", {"x": 1}, timeout=5)
        assert ack["ok"] is False
        assert ack["error"]["code"] == "unknown_event"
    finally:
        await sio.disconnect()


@pytest.mark.parametrize("auth", [None, {"token": "bry_not-a-real-token"}, {"token": 42}])
async def test_connect_without_valid_credentials_is_refused(client, auth):
    sio = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(url_of(client), auth=auth, transports=["websocket"], wait_timeout=10)


async def test_foreign_origin_is_refused(client, actors):
    _, token = await actors.user("erik")
    sio = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await sio.connect(
            url_of(client), auth={"token": token}, headers={"Origin": "https://evil.example"}, transports=["polling"]
        )
    polling = await client.get("/socket.io/?EIO=4&transport=polling", headers={"Origin": "https://evil.example"})
    assert polling.status >= 400
