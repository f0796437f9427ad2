"""Slow clients (issue 15, item 11): a real `brygga serve` closes a connection whose request head does not
arrive in time, and answers 408 to a body that stalls, so idle half-open requests cannot pile up."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from tests.security.serve import serve_env, serving


@pytest.fixture
def slow_limits_server(tmp_path):
    env = serve_env(tmp_path / "data", BRYGGA_HEADER_TIMEOUT_SECONDS="1", BRYGGA_BODY_TIMEOUT_SECONDS="1")
    subprocess.run([sys.executable, "-m", "server", "migrate"], env=env, check=True, capture_output=True, timeout=60)
    with serving(env):
        yield int(env["BRYGGA_PORT"])


async def test_slow_request_heads_and_stalled_bodies_are_cut_off(slow_limits_server):
    port = slow_limits_server
    # Half a request head, then nothing: the server hangs up (it waited 75 s before).
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    await writer.drain()
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), timeout=10) == b""
    assert time.monotonic() - started < 5
    writer.close()

    # A complete head promising a body that stalls: 408 problem instead of waiting forever.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /api/v1/guest-links/redeem HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b'Content-Length: 200\r\n\r\n{"link": "'
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), timeout=10)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"code":"request_timeout"' in answer.replace(b" ", b"")
    writer.close()
