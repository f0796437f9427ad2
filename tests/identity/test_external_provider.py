"""Brygga as relying party of an independent provider (npm oidc-provider): login with code+PKCE,
HSA-id mapping, acr policy, back-channel logout that ends the session and drops sockets within 2 s."""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from pathlib import Path

import aiohttp
import pytest
import socketio
from yarl import URL

from server.identity import store
from tests.conftest import free_port, require_service
from tests.identity.helpers import start_live

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
LOA3 = "http://id.sambi.se/loa/loa3"
LOA2 = "http://id.sambi.se/loa/loa2"
CLIENT_SECRET = "external-provider-client-secret"

pytestmark = pytest.mark.slow


class ExternalProvider:
    def __init__(self, port: int, process: asyncio.subprocess.Process) -> None:
        self.issuer = f"http://127.0.0.1:{port}"
        self.process = process

    async def next_login(self, session: aiohttp.ClientSession, account: str, acr: str) -> None:
        async with session.get(f"{self.issuer}/__next", params={"account": account, "acr": acr}) as response:
            assert response.status == 200


async def start_provider(rp_base: str, port: int) -> ExternalProvider:
    require_service(shutil.which("node") is not None and (NODE_DIR / "node_modules").is_dir(), "node + tests/node")
    process = await asyncio.create_subprocess_exec(
        "node", "oidc_provider_server.mjs", str(port), rp_base, CLIENT_SECRET,
        cwd=NODE_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    seen = b""
    while b"listening" not in seen:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert line, f"oidc-provider did not start: {seen.decode()}"
        seen += line
    return ExternalProvider(port, process)


@pytest.fixture
async def setup(tmp_path):
    op_port = free_port()
    live = await start_live(
        tmp_path / "data",
        oidc_issuer=f"http://127.0.0.1:{op_port}",
        oidc_client_id="brygga",
        oidc_client_secret=CLIENT_SECRET,
        oidc_required_acr=[LOA3],
    )
    provider = await start_provider(live.base, op_port)
    browser = live.browser()
    try:
        yield live, provider, browser
    finally:
        await browser.close()
        provider.process.terminate()
        await provider.process.wait()
        await live.client.close()


async def test_external_provider_logs_a_user_in_with_code_and_pkce(setup):
    live, provider, browser = setup
    await provider.next_login(browser.session, "extern-eva", LOA3)
    async with browser.get("/auth/login") as response:  # follows: Brygga → provider → Brygga
        assert response.status == 200
        assert str(response.url) == live.base + "/"
        history = [str(step.url) for step in response.history]
    authorize = next(url for url in history if url.startswith(provider.issuer + "/auth?"))
    assert "code_challenge_method=S256" in authorize and "nonce=" in authorize and "state=" in authorize
    info = await (await browser.get("/api/v1/session")).json()
    assert info["authenticated"] is True and info["acr"] == LOA3
    assert info["user"]["display_name"] == "Eva Extern"
    async with live.ctx.db.transaction() as session:
        user = await store.get_user_by_subject(session, provider.issuer, "extern-eva")
        assert user is not None and user.hsa_id == "SE2321000016-EVA1"


async def test_acr_policy_refuses_a_weaker_login(setup):
    _live, provider, browser = setup
    await provider.next_login(browser.session, "extern-backup-card", LOA2)
    async with browser.get("/auth/login") as response:
        assert response.status == 400
        assert "inte tillräckligt stark" in await response.text() or "not strong enough" in await response.text()
    assert (await (await browser.get("/api/v1/session")).json())["authenticated"] is False


async def test_backchannel_logout_ends_session_and_drops_socket_within_2s(setup):
    live, provider, browser = setup
    await provider.next_login(browser.session, "extern-eva", LOA3)
    async with browser.get("/auth/login") as response:
        assert response.status == 200
    cookie = browser.session.cookie_jar.filter_cookies(URL(live.base))["brygga_session"].value

    sio = socketio.AsyncClient(reconnection=False)
    dropped = asyncio.Event()
    sio.on("disconnect", lambda *args: dropped.set())
    await sio.connect(
        live.base, headers={"Cookie": f"brygga_session={cookie}"}, transports=["websocket"], wait_timeout=10
    )
    try:
        # The user logs out at the provider (RP-initiated there); it tells Brygga over the back channel.
        async with browser.session.get(f"{provider.issuer}/session/end", params={"client_id": "brygga"}) as page:
            xsrf = re.search(r'name="xsrf" value="([^"]+)"', await page.text()).group(1)
        started = time.monotonic()
        async with browser.session.post(
            f"{provider.issuer}/session/end/confirm", data={"xsrf": xsrf, "logout": "yes"}, allow_redirects=False
        ) as confirmed:
            assert confirmed.status in (302, 303)
        await asyncio.wait_for(dropped.wait(), 2.0)
        elapsed = time.monotonic() - started
        print(f"back-channel logout -> socket dropped: {elapsed * 1000:.0f} ms")
        assert elapsed < 2.0
        assert (await browser.get("/api/v1/me")).status == 401
    finally:
        if sio.connected:
            await sio.disconnect()

    async with browser.session.get(f"{provider.issuer}/__last-logout-token") as response:
        token = (await response.json())["logout_token"]
    assert token
    replay = await browser.post("/auth/backchannel-logout", data={"logout_token": token})
    assert replay.status == 400
    assert "already used" in (await replay.json())["error_description"]
