"""Cross-site websocket hijacking: a page on a foreign origin cannot open a socket.io connection, neither by
long-polling nor by websocket, even when the browser would attach valid credentials."""

from __future__ import annotations

import aiohttp
import pytest
import socketio

from tests.conftest import bearer

EVIL = "https://evil.example"


def base(client) -> str:
    return str(client.make_url("/")).rstrip("/")


async def test_foreign_origin_is_refused_on_polling_and_websocket(client, actors):
    _, token = await actors.user("olof")
    url = base(client)
    own_origin = "http://127.0.0.1"  # settings.public_base_url in tests

    # Long-polling handshake, with the victim's credentials attached.
    polling = await client.get("/socket.io/?EIO=4&transport=polling", headers={"Origin": EVIL, **bearer(token)})
    assert polling.status == 400
    assert "sid" not in await polling.text()
    same_site = await client.get("/socket.io/?EIO=4&transport=polling", headers={"Origin": own_origin})
    assert same_site.status == 200 and '"sid"' in await same_site.text()  # control: the check is the Origin

    # Raw websocket upgrade (what a browser sends for `new WebSocket(...)` from another site).
    ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(ws_url, headers={"Origin": EVIL})
        assert refused.value.status == 400
        async with http.ws_connect(ws_url, headers={"Origin": own_origin}) as ws:
            opening = await ws.receive_str(timeout=5)
            assert opening.startswith("0{")  # engine.io open packet: the control connection works

    # A full socket.io client with a valid token but a foreign Origin, on both transports.
    for transport in ("polling", "websocket"):
        async with aiohttp.ClientSession() as http:  # ours, so it is closed after the refused connect
            sio = socketio.AsyncClient(reconnection=False, http_session=http)
            with pytest.raises(socketio.exceptions.ConnectionError):
                await sio.connect(
                    url, auth={"token": token}, headers={"Origin": EVIL}, transports=[transport], wait_timeout=10
                )


async def test_forwarded_host_from_a_client_is_not_a_bypass_behind_the_proxy(client):
    """engineio also trusts X-Forwarded-Host; nginx overwrites it (deploy/nginx), and a forged one that
    does not match the Origin still fails."""
    response = await client.get(
        "/socket.io/?EIO=4&transport=polling", headers={"Origin": EVIL, "X-Forwarded-Host": "other.example"}
    )
    assert response.status == 400
