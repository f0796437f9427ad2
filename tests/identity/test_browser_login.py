"""Password + TOTP login in real Chromium, with clear messages for wrong TOTP, throttled and disabled accounts."""

from __future__ import annotations

import pyotp
import pytest

from server.core.models import User
from server.identity import service
from tests.identity.helpers import PASSWORD, local_user, start_live

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
async def live(tmp_path):
    instance = await start_live(tmp_path / "data", idp_max_failures=3)
    try:
        yield instance
    finally:
        await instance.client.close()


async def fill_login(page, login: str, password: str, code: str) -> None:
    await page.fill("#login", login)
    await page.fill("#password", password)
    await page.fill("#code", code)
    await page.click("button[type=submit]")


async def error_text(page) -> str:
    return await page.locator("[data-testid=login-error]").inner_text()


async def session_of(page, live) -> dict:
    response = await page.request.get(live.base + "/api/v1/session")
    return await response.json()


async def test_password_and_totp_login_and_clear_messages(live, browser):
    _, secret = await local_user(live.ctx, "sara")
    _, other_secret = await local_user(live.ctx, "lars")
    disabled_id, disabled_secret = await local_user(live.ctx, "dora")
    async with live.ctx.db.transaction() as session:
        await service.set_disabled(session, await session.get(User, disabled_id), True)

    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    await page.goto(live.base + "/auth/login")
    assert await page.locator("h1").inner_text() == "Logga in"
    await page.click("text=English")
    assert await page.locator("h1").inner_text() == "Log in"
    await page.click("text=Svenska")

    # Wrong one-time code: a clear message, still on the login page.
    await fill_login(page, "sara", PASSWORD, "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    assert "Fel engångskod" in await error_text(page)
    assert (await session_of(page, live))["authenticated"] is False

    # Disabled account: said plainly (only after the right password).
    await fill_login(page, "dora", PASSWORD, pyotp.TOTP(disabled_secret).now())
    assert "Kontot är avstängt" in await error_text(page)

    # After three failures this browser's address must wait, with a clear message (the account itself
    # is not locked: tests/security/test_login_attacks.py logs in from another address meanwhile).
    for _ in range(3):
        await fill_login(page, "lars", "fel-losenord-123", "123456")
    await fill_login(page, "lars", PASSWORD, pyotp.TOTP(other_secret).now())
    assert "För många misslyckade inloggningar" in await error_text(page)

    # The right password and code log in and land on the web client.
    await fill_login(page, "sara", PASSWORD, pyotp.TOTP(secret).now())
    await page.wait_for_url(live.base + "/")
    info = await session_of(page, live)
    assert info["authenticated"] is True and info["user"]["display_name"] == "Sara"
    cookies = {cookie["name"]: cookie for cookie in await context.cookies()}
    assert cookies["brygga_session"]["httpOnly"] is True and cookies["brygga_session"]["sameSite"] == "Lax"
    assert not [text for text in errors if "Content Security Policy" in text]
    await context.close()


async def test_first_login_enrols_an_authenticator_with_a_qr_code(live, browser):
    await local_user(live.ctx, "nina", enrolled=False)
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(live.base + "/auth/login")
    await fill_login(page, "nina", PASSWORD, "")
    assert await page.locator("h1").inner_text() == "Koppla en autentiseringsapp"
    assert await page.locator("figure.qr svg").count() == 1
    secret = (await page.locator("[data-testid=totp-secret]").inner_text()).replace(" ", "")
    await page.fill("#code", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    await page.click("button[type=submit]")
    assert "Koden stämde inte" in await error_text(page)
    await page.fill("#code", pyotp.TOTP(secret).now())
    await page.click("button[type=submit]")
    await page.wait_for_url(live.base + "/")
    assert (await session_of(page, live))["authenticated"] is True
    await context.close()
