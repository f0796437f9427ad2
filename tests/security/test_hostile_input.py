"""Hostile input at the edge (issue 15, item 9): deeply nested JSON, huge integers, malformed socket.io and
engine.io packets and clients that hang up mid-body get a 4xx problem (or a refused packet) and at most
one log line without a traceback, never a 500."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
import pytest
from aiohttp import web

from server.app import create_app
from tests.conftest import bearer

NESTED = "[" * 200_000 + "]" * 200_000
HUGE_INT = '{"link": ' + "9" * 5000 + "}"


@pytest.fixture
def server_log(caplog):
    caplog.set_level(logging.INFO)
    return caplog


def assert_no_tracebacks(caplog) -> None:
    traced = [record for record in caplog.records if record.exc_info or record.levelno >= logging.ERROR]
    assert not traced, [(record.name, record.getMessage()) for record in traced]
    assert not [record for record in caplog.records if getattr(record, "status", None) == 500]


@pytest.mark.parametrize("body", [NESTED, HUGE_INT, '{"a": ' * 50_000 + "1" + "}" * 50_000])
async def test_nested_json_and_huge_integers_are_a_problem_not_a_500(client, actors, server_log, body):
    _, token = await actors.user("olof")
    for path, headers in (("/api/v1/guest-links/redeem", {}), ("/api/v1/tokens", bearer(token))):
        response = await client.post(path, data=body, headers={"Content-Type": "application/json", **headers})
        assert response.status == 400, (path, response.status)
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert (await response.json())["code"] == "malformed_json"
    assert_no_tracebacks(server_log)


MALFORMED_PACKETS = [
    "42[",  # truncated JSON
    '42["message:send"' + ",[" * 100_000,  # deeply nested
    "42[" + "9" * 5000 + "]",  # integer over 4,300 digits
    "4" + "x" * 10,  # unknown socket.io packet type
    "45-",  # binary event without a count
    "451-[" + '"a",' * 3 + "]",  # binary event whose attachments never come
    "40{",  # connect with malformed auth
    "4",  # empty socket.io packet
    "9",  # unknown engine.io packet type
    "",  # empty engine.io packet
]


async def test_malformed_socket_packets_are_refused_without_tracebacks(client, actors, server_log):
    _, token = await actors.user("olof")
    url = str(client.make_url("/socket.io/?EIO=4&transport=websocket")).replace("http://", "ws://")
    async with aiohttp.ClientSession() as http:
        for packet in MALFORMED_PACKETS:
            async with http.ws_connect(url, headers={"Origin": "http://127.0.0.1"}) as ws:
                assert (await ws.receive_str(timeout=5)).startswith("0{")
                await ws.send_str(f'40{{"token":"{token}"}}')
                assert (await ws.receive_str(timeout=5)).startswith("40")
                await ws.send_str(packet)
                await ws.send_str("2")  # a ping: answered only if the server is still talking to us
                with contextlib.suppress(TimeoutError):
                    await ws.receive(timeout=2)
        # The server still serves a well-behaved client.
        async with http.ws_connect(url, headers={"Origin": "http://127.0.0.1"}) as ws:
            assert (await ws.receive_str(timeout=5)).startswith("0{")
            await ws.send_str(f'40{{"token":"{token}"}}')
            assert (await ws.receive_str(timeout=5)).startswith("40")
    await asyncio.sleep(0.2)
    assert_no_tracebacks(server_log)


async def hang_up_mid_body(host: str, port: int, token: str) -> None:
    _reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        b"POST /api/v1/tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {token}\r\nContent-Length: 1000\r\n\r\n".encode()
        + b'{"name": "half'
    )
    await writer.drain()
    await asyncio.sleep(0.3)
    writer.close()
    await asyncio.sleep(0.5)


async def test_a_client_hanging_up_mid_body_is_not_a_server_error(client, actors, server_log):
    _, token = await actors.user("olof")
    await hang_up_mid_body(client.host, client.port, token)
    assert_no_tracebacks(server_log)


async def test_a_client_hanging_up_mid_body_on_the_production_runner_is_not_a_server_error(
    client, actors, server_log, migrated
):
    """`brygga serve` runs `web.run_app`, which lets a handler go on after its client hung up (aiohttp's
    TestServer cancels it instead): the read of the body then fails, and that is no server error either."""
    _, token = await actors.user("olof")
    runner = web.AppRunner(create_app(migrated))  # handler_cancellation=False, as in web.run_app
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        host, port = runner.addresses[0][:2]
        await hang_up_mid_body(host, port, token)
    finally:
        await runner.cleanup()
    assert_no_tracebacks(server_log)
    assert [r.status for r in server_log.records if getattr(r, "route", None) == "/api/v1/tokens"] == [499]
