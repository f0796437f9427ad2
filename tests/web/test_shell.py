"""The web client's shell without a session: the login entry page, language switch, CSP, viewports."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM, CHROMIUM_ARGS, require_service
from tests.web.support import VIEWPORTS, ConsoleErrors, assert_accessible, assert_no_horizontal_scroll

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
async def test_logged_out_page_offers_login_and_is_accessible(client, browser, viewport):
    context = await browser.new_context(viewport=VIEWPORTS[viewport], locale="sv-SE")
    page = await context.new_page()
    errors = ConsoleErrors().attach(page)
    await page.goto(str(client.make_url("/#/inbox")))
    login = page.get_by_test_id("login-link")
    await login.wait_for()
    assert await login.inner_text() == "Logga in"
    # The login link brings the user back to where they were going.
    assert (await login.get_attribute("href")).startswith("/auth/login?return_to=%2F%23%2Finbox")
    await page.get_by_test_id("health").filter(has_text="Servern är i drift").wait_for()
    await assert_accessible(page, f"the logged-out page ({viewport})")
    await assert_no_horizontal_scroll(page, f"the logged-out page ({viewport})")

    await page.get_by_role("button", name="English").click()
    await page.get_by_test_id("login-link").filter(has_text="Log in").wait_for()
    assert await page.evaluate("document.documentElement.lang") == "en"
    await page.reload()
    await page.get_by_test_id("login-link").filter(has_text="Log in").wait_for()  # the choice is remembered
    assert errors.real() == []  # no CSP violations or script errors
    await context.close()


async def test_favicon_and_an_installable_web_app_manifest(client, tmp_path):
    """Issue 16 item 13: /favicon.ico, the manifest with its icons, and Chromium's own verdict that the
    page can be installed (no installability errors over DevTools). A profile on disk: Chromium never
    offers to install from an incognito context, which is what Playwright's new_context() gives."""
    from playwright.async_api import async_playwright

    require_service(Path(CHROMIUM).exists(), f"Debian chromium at {CHROMIUM}")
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            tmp_path / "profile", executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport=VIEWPORTS["phone"], locale="sv-SE",
        )  # fmt: skip
        try:
            await installable(client, context)
        finally:
            await context.close()


async def installable(client, context) -> None:
    page = await context.new_page()
    failed: list[str] = []
    page.on("response", lambda response: failed.append(response.url) if response.status >= 400 else None)
    await page.goto(str(client.make_url("/#/inbox")))
    await page.get_by_test_id("login-link").wait_for()

    favicon = await page.request.get(str(client.make_url("/favicon.ico")))
    assert favicon.status == 200 and favicon.headers["content-type"] == "image/x-icon"
    assert (await favicon.body())[:4] == b"\x00\x00\x01\x00"  # an ICO directory
    assert favicon.headers["cache-control"] == "public, max-age=86400"

    cdp = await context.new_cdp_session(page)
    manifest = await cdp.send("Page.getAppManifest")
    assert manifest["url"].endswith("/manifest.webmanifest") and manifest["errors"] == []
    parsed = json.loads(manifest["data"])
    assert parsed["short_name"] == "Brygga" and parsed["lang"] == "sv" and parsed["display"] == "standalone"
    for icon in parsed["icons"]:
        response = await page.request.get(str(client.make_url(icon["src"])))
        assert response.status == 200 and response.headers["content-type"] == icon["type"], icon
        if icon["type"] == "image/png":
            width, height = struct.unpack(">II", (await response.body())[16:24])  # the PNG's IHDR
            assert f"{width}x{height}" == icon["sizes"], icon
    assert {icon["purpose"] for icon in parsed["icons"]} == {"any", "maskable"}
    installable = await cdp.send("Page.getInstallabilityErrors")
    assert installable["installabilityErrors"] == []
    assert failed == []
