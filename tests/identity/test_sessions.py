"""Server-side sessions through the built-in provider: login, cookie flags, CSRF, timeouts, logout."""

from __future__ import annotations

from datetime import timedelta

import pytest
from yarl import URL

from tests.identity.helpers import (
    PASSWORD,
    csrf,
    local_user,
    login_via_forms,
    login_with_provider_session,
    start_live,
)


async def test_login_sets_a_safe_session_cookie_and_session_api_gives_csrf(live):
    _, secret = await local_user(live.ctx, "anna")
    client = live.client
    anonymous = await (await client.get("/api/v1/session")).json()
    assert anonymous["authenticated"] is False and anonymous["login_url"] == "/auth/login"

    done = await login_via_forms(client, "anna", secret=secret)
    assert done.status == 302 and done.headers["Location"] == "/"
    cookie = done.headers["Set-Cookie"]
    assert cookie.startswith("brygga_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # http here; https turns it on (test_cookie_is_secure_on_https)
    assert len(cookie.split(";")[0].split("=", 1)[1]) >= 43  # 256-bit token

    info = await (await client.get("/api/v1/session")).json()
    assert info["authenticated"] is True
    assert info["user"]["display_name"] == "Anna"
    assert info["acr"] == "urn:brygga:loa:2fa" and info["amr"] == ["pwd", "otp"]
    token = info["csrf_token"]

    refused = await client.post("/api/v1/tokens", json={"name": "x"})
    assert refused.status == 403 and (await refused.json())["code"] == "csrf_failed"
    foreign = await client.post(
        "/api/v1/tokens", json={"name": "x"}, headers={"X-CSRF-Token": token, "Origin": "https://evil.example"}
    )
    assert foreign.status == 403
    created = await client.post("/api/v1/tokens", json={"name": "x"}, headers={"X-CSRF-Token": token})
    assert created.status == 201

    out = await client.post("/api/v1/session/logout", headers={"X-CSRF-Token": token})
    assert out.status == 200
    assert (await out.json())["logout_url"].startswith(live.base + "/idp/logout?")
    assert (await client.get("/api/v1/me")).status == 401


async def test_session_id_rotates_and_idle_and_absolute_timeouts_apply(live):
    client = live.client
    _, secret = await local_user(live.ctx, "bo")
    first = (await login_via_forms(client, "bo", secret=secret)).cookies["brygga_session"].value
    await client.post("/api/v1/session/logout", headers=await csrf(client))
    second = await login_with_provider_session(client)
    assert second.status == 302
    assert second.cookies["brygga_session"].value != first
    assert (await client.get("/api/v1/me")).status == 200

    real_clock = live.ctx.clock
    live.ctx.clock = lambda: real_clock() + timedelta(minutes=live.settings.session_idle_minutes + 1)
    try:
        assert (await client.get("/api/v1/me")).status == 401  # idle timeout
    finally:
        live.ctx.clock = real_clock
    assert (await client.get("/api/v1/me")).status == 401  # and the session is gone for good

    assert (await login_with_provider_session(client)).status == 302
    status, minutes = 200, 0
    for minutes in range(25, 13 * 60, 25):  # stay active, but run past the absolute timeout
        moved = real_clock() + timedelta(minutes=minutes)
        live.ctx.clock = lambda moved=moved: moved
        status = (await client.get("/api/v1/me")).status
        if status == 401:
            break
    live.ctx.clock = real_clock
    assert status == 401 and 12 * 60 - 25 <= minutes <= 12 * 60 + 25


async def test_logout_everywhere_ends_every_session(live):
    _, secret = await local_user(live.ctx, "dan")
    laptop, phone = live.browser(), live.browser()
    try:
        assert (await login_via_forms(laptop, "dan", secret=secret)).status == 302
        # Another device, another TOTP step would be needed; reuse the provider session cookie instead.
        phone.session.cookie_jar.update_cookies(
            {"brygga_idp": laptop.session.cookie_jar.filter_cookies(URL(live.base + "/idp/"))["brygga_idp"].value}
        )
        assert (await login_with_provider_session(phone)).status == 302
        assert (await phone.get("/api/v1/me")).status == 200
        result = await laptop.post("/api/v1/session/logout-everywhere", headers=await csrf(laptop))
        assert result.status == 200 and (await result.json())["ended_sessions"] == 2
        assert (await phone.get("/api/v1/me")).status == 401
        assert (await laptop.get("/api/v1/me")).status == 401
    finally:
        await laptop.close()
        await phone.close()


async def test_wrong_password_does_not_log_in(live):
    await local_user(live.ctx, "cecilia")
    answer = await login_via_forms(live.client, "cecilia", password=PASSWORD + "x", code="000000")
    assert answer.status == 401
    assert "Fel användarnamn eller lösenord" in await answer.text()


async def test_cookie_is_secure_on_https(tmp_path):
    live = await start_live(tmp_path / "data")
    await live.client.close()
    from server.identity.web_auth import session_cookie_options

    live.ctx.settings.public_base_url = "https://brygga.example"
    assert session_cookie_options(live.ctx)["secure"] is True


@pytest.mark.postgres
async def test_login_code_redemption_and_logout_on_postgresql(tmp_path, pg_database):
    live = await start_live(tmp_path / "data", database_url=pg_database)
    try:
        _, secret = await local_user(live.ctx, "pia")
        assert (await login_via_forms(live.client, "pia", secret=secret)).status == 302
        assert (await live.client.get("/api/v1/me")).status == 200
        out = await live.client.post("/api/v1/session/logout-everywhere", headers=await csrf(live.client))
        assert out.status == 200 and (await out.json())["ended_sessions"] == 1
        assert (await live.client.get("/api/v1/me")).status == 401
    finally:
        await live.client.close()


async def test_socket_of_a_timed_out_session_is_dropped(live):
    import asyncio

    import socketio

    from server.identity.socket import drop_expired_session_sockets

    _, secret = await local_user(live.ctx, "rut")
    done = await login_via_forms(live.client, "rut", secret=secret)
    cookie = done.cookies["brygga_session"].value
    sio = socketio.AsyncClient(reconnection=False)
    dropped = asyncio.Event()
    sio.on("disconnect", lambda *args: dropped.set())
    await sio.connect(
        live.base, headers={"Cookie": f"brygga_session={cookie}"}, transports=["websocket"], wait_timeout=10
    )
    assert await drop_expired_session_sockets(live.ctx) == 0
    real_clock = live.ctx.clock
    live.ctx.clock = lambda: real_clock() + timedelta(minutes=live.settings.session_idle_minutes + 1)
    try:
        assert await drop_expired_session_sockets(live.ctx) == 1
        await asyncio.wait_for(dropped.wait(), 2)
    finally:
        live.ctx.clock = real_clock
