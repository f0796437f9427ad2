"""The built web client in a real browser: it loads under the strict CSP and shows the server's health."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]


async def test_home_page_shows_product_and_health(client, browser):
    page = await browser.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(str(client.make_url("/")))
    await page.get_by_role("heading", name="Brygga").wait_for()
    health = page.get_by_test_id("health")
    await health.filter(has_text="Servern är i drift").wait_for(timeout=10_000)
    version = (await (await client.get("/healthz")).json())["version"]
    assert await page.get_by_test_id("version").inner_text() == version
    await page.get_by_role("button", name="English").click()
    await health.filter(has_text="The server is up").wait_for()
    assert await page.evaluate("document.documentElement.lang") == "en"
    assert errors == []  # no CSP violations or script errors
