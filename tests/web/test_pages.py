"""The other main pages in a real browser: admin editing with conflicts, import, meetings, offline and
session expiry, the provider's login page; axe-core and both viewports on each."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from tests.conftest import bearer
from tests.web.conftest import Demo, api, finish_login, login
from tests.web.support import (
    DESKTOP,
    PHONE,
    VIEWPORTS,
    ConsoleErrors,
    assert_accessible,
    assert_no_horizontal_scroll,
    screenshot,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def org_number(prefix: str) -> str:
    """A Luhn-valid (invented) Swedish organisation number from nine digits."""
    total = 0
    for index, digit in enumerate(prefix):
        product = int(digit) * (2 if index % 2 == 0 else 1)
        total += product - 9 if product > 9 else product
    return prefix + str((10 - total % 10) % 10)


async def new_page(browser: Any, viewport: str = "desktop") -> tuple[Any, Any, ConsoleErrors]:
    context = await browser.new_context(viewport=VIEWPORTS[viewport], locale="sv-SE", timezone_id="Europe/Stockholm")
    page = await context.new_page()
    return context, page, ConsoleErrors().attach(page)


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
async def test_provider_login_page_is_accessible(demo: Demo, browser, viewport):
    context, page, errors = await new_page(browser, viewport)
    await page.goto(demo.url("/"))
    await page.get_by_test_id("login-link").click()
    await page.locator("#password").wait_for()
    await assert_accessible(page, f"the login page ({viewport})")
    await assert_no_horizontal_scroll(page, f"the login page ({viewport})")
    assert errors.real() == []
    await context.close()


async def test_admin_edits_a_unit_with_validation_and_conflict(demo: Demo, browser):
    context, page, errors = await new_page(browser)
    await login(page, demo, demo.admin)
    await page.get_by_role("link", name="Administration").click()
    await page.get_by_role("heading", name="Administration av katalogen").wait_for()
    await page.get_by_label("Sök enhet").fill("bistånd")
    await page.get_by_role("link", name="Redigera: Biståndsenheten Nacka").click()
    unit_form = page.get_by_role("form", name="Enhetsuppgifter")
    name = unit_form.get_by_label("Namn", exact=True)
    await name.wait_for()
    assert await name.input_value() == "Biståndsenheten Nacka"
    await assert_accessible(page, "the unit editor")

    # Client-side validation: the error is announced, tied to its field and nothing is sent.
    await page.get_by_label("HSA-id").fill("XYZ")
    await unit_form.get_by_role("button", name="Spara").click()
    await page.get_by_role("alert").filter(has_text="Formuläret innehåller fel").wait_for()
    assert await page.get_by_label("HSA-id").get_attribute("aria-invalid") == "true"
    await assert_accessible(page, "the unit editor with errors")
    await page.get_by_label("HSA-id").fill("")

    # Someone else saves a change in between: our save gets 412, our edit is kept, theirs is shown.
    await name.fill("Biståndsenheten Nacka – utskrivning")
    path = f"/api/v1/units/{demo.municipal}"
    async with aiohttp.ClientSession() as http:
        async with http.get(demo.url(path), headers=bearer(demo.admin_token)) as response:
            etag = response.headers["ETag"]
        headers = {**bearer(demo.admin_token), "If-Match": etag}
        async with http.patch(demo.url(path), json={"name": "Biståndsenheten i Nacka"}, headers=headers) as response:
            assert response.status == 200
    await unit_form.get_by_role("button", name="Spara").click()
    conflict = page.get_by_test_id("conflict")
    await conflict.wait_for()
    assert "Biståndsenheten i Nacka" in await conflict.inner_text()
    assert await name.input_value() == "Biståndsenheten Nacka – utskrivning"
    await assert_accessible(page, "the unit editor after a conflict")
    await screenshot(page, "admin-conflict")
    # Having seen their change, the admin saves again (now against the latest version).
    await unit_form.get_by_role("button", name="Spara").click()
    await page.get_by_role("status").filter(has_text="Sparat.").wait_for()
    unit = await api(demo.live, "GET", path, demo.admin_token)
    assert unit["name"] == "Biståndsenheten Nacka – utskrivning"

    # A contact route is edited in place (its own ETag).
    route = page.get_by_role("form", name="Kontaktvägar 1")
    await route.get_by_label("Kontakt", exact=True).fill("08-718 80 01")
    await route.get_by_role("button", name="Spara").click()
    await route.get_by_text("Sparat.").wait_for()
    unit = await api(demo.live, "GET", path, demo.admin_token)
    assert "08-718 80 01" in [route["value"] for route in unit["routes"]]

    await page.set_viewport_size(PHONE)
    await assert_accessible(page, "the unit editor (phone)")
    await assert_no_horizontal_scroll(page, "the unit editor (phone)")
    await page.goto(demo.url("/#/admin"))
    await page.get_by_role("heading", name="Administration av katalogen").wait_for()
    await assert_accessible(page, "the admin list (phone)")
    await assert_no_horizontal_scroll(page, "the admin list (phone)")
    assert errors.real() == []
    await context.close()


async def test_import_reports_every_rejected_row_and_commits_a_clean_file(demo: Demo, browser):
    context, page, errors = await new_page(browser)
    await login(page, demo, demo.admin, "/#/admin/import")
    await page.get_by_role("heading", name="Importera kataloguppgifter").wait_for()
    await assert_accessible(page, "the import page")
    org = org_number("212000014")
    header = (
        "organisation_number,organisation_name,organisation_kind,unit_hsa_id,unit_name,unit_type,"
        "municipality_code,route_channel,route_label,route_value,route_hours"
    )
    owner = f"{org},Värmdö kommun,municipality"
    good = f"{owner},SE{org}-HT1,Hemtjänst Gustavsberg,home_care,0120,phone,Hemtjänst,08-570 470 00,1#5#08:00#16:00"
    bad_type = f"{owner},SE{org}-HT2,Hemtjänst Hemmesta,spaceship,0120,phone,Hemtjänst,08-570 470 01,"
    bad_hsa = f"{owner},NOT-AN-HSA,Korttidsboende Värmdö,short_term_care,0120,phone,Bokning,08-570 470 02,"
    broken = "\n".join([header, good, bad_type, bad_hsa])
    await page.get_by_label("Provkör utan att spara").uncheck()
    await page.get_by_label("Fil (CSV eller JSON)").set_input_files(
        files=[{"name": "katalog.csv", "mimeType": "text/csv", "buffer": broken.encode()}]
    )
    await page.get_by_role("button", name="Starta import").click()
    table = page.get_by_test_id("import-errors")
    await table.wait_for()
    rows = await table.locator("tbody tr").all_inner_texts()
    assert len(rows) == 2
    assert rows[0].startswith("3") and rows[1].startswith("4")
    await page.get_by_role("heading", name=re.compile("Avvisade rader – inget sparades")).wait_for()
    await assert_accessible(page, "the import error report")
    found = await api(demo.live, "GET", "/api/v1/units?q=Gustavsberg", demo.admin_token)
    assert found["items"] == []  # all or nothing

    await page.get_by_label("Fil (CSV eller JSON)").set_input_files(
        files=[{"name": "katalog.csv", "mimeType": "text/csv", "buffer": f"{header}\n{good}\n".encode()}]
    )
    await page.get_by_role("button", name="Starta import").click()
    await page.get_by_role("status").filter(has_text="Importen är klar.").wait_for()
    found = await api(demo.live, "GET", "/api/v1/units?q=Gustavsberg", demo.admin_token)
    assert [unit["name"] for unit in found["items"]] == ["Hemtjänst Gustavsberg"]
    assert errors.real() == []
    await context.close()


async def nurse_on_unit_page(demo: Demo, browser: Any) -> tuple[Any, Any, ConsoleErrors]:
    context, page, errors = await new_page(browser)
    await login(page, demo, demo.nurse, f"/#/directory/units/{demo.municipal}")
    await page.get_by_role("heading", name="Biståndsenheten Nacka").wait_for()
    return context, page, errors


async def test_offline_outbox_catch_up_and_session_expiry(demo: Demo, browser):
    context, page, errors = await nurse_on_unit_page(demo, browser)
    await page.get_by_role("button", name="Starta konversation").first.click()
    await page.get_by_label("Ämne").fill("Hjälpmedel inför hemgång")
    await page.locator("form").get_by_role("button", name="Starta konversation").click()
    await page.get_by_role("heading", name="Hjälpmedel inför hemgång").wait_for()

    # Offline: the banner says so, the message waits in the outbox, and goes out when we are back.
    await context.set_offline(True)
    await page.get_by_test_id("offline-banner").wait_for(timeout=15_000)
    await assert_accessible(page, "the conversation while offline")
    await page.get_by_label("Meddelande", exact=True).fill("Rullator behövs vid hemkomst.")
    await page.get_by_role("button", name="Skicka").click()
    await page.get_by_test_id("outbox-message").filter(has_text="Väntar på att skickas").wait_for()
    await context.set_offline(False)
    await page.get_by_test_id("offline-banner").wait_for(state="detached", timeout=30_000)
    sent = page.get_by_test_id("message").filter(has_text="Rullator behövs")
    await sent.wait_for(timeout=15_000)
    assert await sent.count() == 1
    assert await page.get_by_test_id("outbox-message").count() == 0

    # The session ends on the server (e.g. logged out elsewhere): a clear banner and a way back in.
    info = await (await page.request.get(demo.url("/api/v1/session"))).json()
    csrf = {info["csrf_header"]: info["csrf_token"]}
    ended = await page.request.post(demo.url("/api/v1/session/logout"), headers=csrf)
    assert ended.status == 200
    banner = page.get_by_test_id("session-expired")
    await banner.wait_for(timeout=10_000)
    assert "Din session har gått ut" in await banner.inner_text()
    await assert_accessible(page, "the session-expired banner")
    await banner.get_by_role("link", name="Logga in igen").click()
    await finish_login(page, demo.nurse)
    # Back where she was, with her message and no banner.
    await page.get_by_role("heading", name="Hjälpmedel inför hemgång").wait_for()
    await page.get_by_test_id("message").filter(has_text="Rullator behövs").wait_for()
    assert await page.get_by_test_id("session-expired").count() == 0
    assert errors.real() == []
    await context.close()


async def test_meetings_list_links_to_the_meeting_page(demo: Demo, media_browser):
    context, page, errors = await nurse_on_unit_page(demo, media_browser)
    await context.grant_permissions(["camera", "microphone"], origin=demo.base)
    await page.get_by_role("button", name="Boka möte").click()
    await page.get_by_label("Mötets titel").fill("SIP inför utskrivning")
    await page.get_by_label("Tid", exact=True).select_option("10:00")  # the day defaults to tomorrow
    await page.locator("form").get_by_role("button", name="Boka möte").click()
    await page.get_by_test_id("meeting-booked").get_by_role("heading", name="Mötet är bokat.").wait_for()
    await page.get_by_role("navigation", name="Huvudmeny").get_by_role("link", name="Möten").click()
    item = page.get_by_test_id("meeting-list").locator("li").filter(has_text="SIP inför utskrivning")
    await item.wait_for()
    join = item.get_by_role("link", name="Anslut: SIP inför utskrivning")
    assert (await join.get_attribute("href")).startswith("/meeting#meeting=")
    await assert_accessible(page, "the meetings list")
    await screenshot(page, "meetings")
    for viewport in ("phone", "desktop"):
        await page.set_viewport_size(VIEWPORTS[viewport])
        await assert_no_horizontal_scroll(page, f"the meetings list ({viewport})")
    await join.click()
    await page.wait_for_url(re.compile(r".*/meeting#meeting=.*"))
    await page.get_by_role("heading", name="Videomöte").wait_for()
    await page.locator("video").first.wait_for()
    for _ in range(50):  # the camera preview plays (wait_for_function would need 'unsafe-eval')
        if await page.evaluate("[...document.querySelectorAll('video')].some(v => v.readyState >= 2)"):
            break
        await asyncio.sleep(0.2)
    await assert_accessible(page, "the meeting page (video part)")
    await screenshot(page, "meeting")
    await page.set_viewport_size(PHONE)
    await assert_accessible(page, "the meeting page (video part, phone)")
    await page.set_viewport_size(DESKTOP)
    assert errors.real() == []
    await context.close()


async def test_keyboard_only_and_english(demo: Demo, browser):
    """Skip link, focus moved to each new page's heading, Ctrl+Enter sends; English texts and Stockholm time."""
    context, page, errors = await nurse_on_unit_page(demo, browser)
    await page.get_by_role("button", name="Starta konversation").first.click()
    await page.get_by_label("Ämne").fill("Läkemedelslista")
    await page.get_by_label("Ämne").press("Enter")  # submits the form
    heading = page.get_by_role("heading", name="Läkemedelslista")
    await heading.wait_for()
    assert await page.evaluate("document.activeElement.tagName") == "H1"  # focus follows the navigation

    await page.reload()  # a fresh visit starts at the top: the first Tab reaches the skip link
    await heading.wait_for()
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Hoppa till innehållet"
    await page.keyboard.press("Enter")
    assert await page.evaluate("document.activeElement.id") == "main"

    await page.get_by_label("Meddelande", exact=True).focus()
    await page.keyboard.type("Listan skickas i eftermiddag.")
    await page.keyboard.press("Control+Enter")
    message = page.get_by_test_id("message").filter(has_text="Listan skickas i eftermiddag.")
    await message.wait_for()
    assert await page.evaluate("document.activeElement.id") == "composer-body"  # ready for the next one

    # Within the edit window the sender can correct and retract; both stay visible as such.
    edited = page.locator(f'[data-message-id="{await message.get_attribute("data-message-id")}"]')
    await edited.get_by_role("button", name="Redigera").click()
    await edited.get_by_role("textbox").fill("Listan skickas i morgon bitti.")
    await edited.get_by_role("button", name="Spara").click()
    await edited.filter(has_text="Listan skickas i morgon bitti.").get_by_text("(redigerat)").wait_for()
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await edited.get_by_role("button", name="Återkalla").click()
    await edited.filter(has_text="Meddelandet har återkallats").wait_for()
    assert await page.get_by_text("Listan skickas i morgon bitti.").count() == 0
    await page.get_by_label("Meddelande", exact=True).fill("Ny lista kommer.")
    await page.keyboard.press("Control+Enter")
    message = page.get_by_test_id("message").filter(has_text="Ny lista kommer.")
    await message.wait_for()

    await page.get_by_role("button", name="English").click()
    await page.get_by_role("navigation", name="Main menu").get_by_role("link", name="Directory").wait_for()
    await page.get_by_label("Message", exact=True).wait_for()
    stamp = await message.locator("time").first.get_attribute("datetime")
    shown = await message.locator("time").first.inner_text()
    local = datetime.fromisoformat(stamp).astimezone(ZoneInfo("Europe/Stockholm"))
    assert local.strftime("%H:%M") in shown and str(local.day) in shown
    await assert_accessible(page, "the conversation in English")
    assert errors.real() == []
    await context.close()


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
async def test_main_pages_at_both_viewports(demo: Demo, browser, viewport):
    """Inbox, conversation, directory, unit page and meetings: axe-clean and no sideways scrolling."""
    context, page, errors = await new_page(browser, viewport)
    await login(page, demo, demo.nurse)
    info = await (await page.request.get(demo.url("/api/v1/session"))).json()
    csrf = {info["csrf_header"]: info["csrf_token"]}
    created = await page.request.post(
        demo.url("/api/v1/conversations"),
        headers=csrf,
        data={"subject": "Trygghetslarm", "from_unit_id": str(demo.ward), "unit_ids": [str(demo.municipal)]},
    )
    assert created.status == 201, await created.text()
    conversation = await created.json()
    pages = {
        "inbox": ("/#/inbox", "Inkorg"),
        "conversation": (f"/#/conversations/{conversation['id']}", "Trygghetslarm"),
        "directory": ("/#/directory?q=nacka", "Kontaktkatalog"),
        "unit page": (f"/#/directory/units/{demo.municipal}", "Biståndsenheten Nacka"),
        "meetings": ("/#/meetings", "Möten"),
    }
    for name, (path, heading) in pages.items():
        await page.goto(demo.url(path))
        await page.get_by_role("heading", name=heading, exact=True).wait_for()
        await page.get_by_role("status").filter(has_text="Laddar").wait_for(state="detached")
        await assert_accessible(page, f"the {name} ({viewport})")
        await assert_no_horizontal_scroll(page, f"the {name} ({viewport})")
    assert errors.real() == []
    await context.close()
