"""The web client's shell without a session: the login entry page, language switch, CSP, viewports."""

from __future__ import annotations

import pytest

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
