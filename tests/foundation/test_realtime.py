"""socket.io basics: authenticated connect, clear refusals, unknown events answered with an error ack, room fan-out."""

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


async def test_room_emit_reaches_each_socket_once_and_skips_the_given_one(client, actors, ctx):
    """Fan-out (InlineFanout) to several rooms: a socket in two of them gets one copy; skip_sid is honoured."""
    from server.core.realtime import unit_room, user_room

    ward = await actors.unit("Avdelning 7")
    anna_id, anna = await actors.user("anna", units={ward: "member"})
    _bo_id, bo = await actors.user("bo", units={ward: "member"})
    sockets = [socketio.AsyncClient(reconnection=False) for _ in range(3)]
    received: list[list[dict]] = [[] for _ in sockets]
    for number, (sio, token) in enumerate(zip(sockets, [anna, anna, bo], strict=True)):
        sio.on("probe", lambda data, number=number: received[number].append(data))
        await sio.connect(url_of(client), auth={"token": token}, transports=["websocket"], wait_timeout=10)
    try:
        sender = sockets[0].get_sid("/")
        await ctx.sio.emit("probe", {"n": 1}, to=[unit_room(ward), user_room(anna_id)], skip_sid=sender)
        await sockets[2].call("no:such:event", {}, timeout=5)  # a round trip: the probe is delivered by now
        await sockets[1].call("no:such:event", {}, timeout=5)
        assert received == [[], [{"n": 1}], [{"n": 1}]]
    finally:
        for sio in sockets:
            await sio.disconnect()
