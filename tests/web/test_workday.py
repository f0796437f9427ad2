"""Issue 16 journeys in a real browser: two people, desktop and phone, axe-core on every new view."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from server.messaging.models import Receipt
from tests.web.conftest import Demo, api, login
from tests.web.support import (
    PHONE,
    ROOT,
    VIEWPORTS,
    ConsoleErrors,
    assert_accessible,
    assert_no_horizontal_scroll,
    screenshot,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]


async def open_page(browser: Any, viewport: str) -> tuple[Any, Any, ConsoleErrors]:
    context = await browser.new_context(viewport=VIEWPORTS[viewport], locale="sv-SE", timezone_id="Europe/Stockholm")
    page = await context.new_page()
    return context, page, ConsoleErrors().attach(page)


async def as_user(page: Any, demo: Demo, method: str, path: str, body: Any = None) -> Any:
    """A call with the page's own session cookie and CSRF token (what the client itself would send)."""
    info = await (await page.request.get(demo.url("/api/v1/session"))).json()
    response = await page.request.fetch(
        demo.url(path), method=method, data=body, headers={info["csrf_header"]: info["csrf_token"]}
    )
    assert response.status < 300, await response.text()
    return await response.json()


async def both_viewports_clean(page: Any, where: str) -> None:
    for name, size in VIEWPORTS.items():
        await page.set_viewport_size(size)
        await assert_accessible(page, f"{where} ({name})")
        await assert_no_horizontal_scroll(page, f"{where} ({name})")
    await page.set_viewport_size(VIEWPORTS["desktop"])


async def test_waiting_for_acknowledgement_remind_call_and_acknowledged_live(demo: Demo, browser):
    """Item 1: the nurse sees her urgent message still unacknowledged, since when, its escalation level and
    route, reminds; the officer (phone) acknowledges and the nurse's list empties live."""
    nurse_context, nurse, nurse_errors = await open_page(browser, "desktop")
    officer_context, officer, officer_errors = await open_page(browser, "phone")
    await login(nurse, demo, demo.nurse)
    conversation = await as_user(
        nurse, demo, "POST", "/api/v1/conversations",
        {"subject": "Utskrivning fredag", "case_ref": "LUS-77", "from_unit_id": str(demo.ward),
         "unit_ids": [str(demo.municipal)]},
    )  # fmt: skip
    cid = conversation["id"]
    for body, priority, ack in (("Behöver hemtjänst i kväll", "urgent", False), ("Läkemedelslista", "normal", True)):
        await as_user(
            nurse, demo, "POST", f"/api/v1/conversations/{cid}/messages",
            {"client_id": str(uuid.uuid4()), "body": body, "priority": priority, "ack_required": ack},
        )  # fmt: skip
    urgent_id = (await as_user(nurse, demo, "GET", f"/api/v1/conversations/{cid}/messages"))["items"][0]["id"]

    # The escalation engine (tests/messaging/test_escalation.py) leaves level and route on the receipt.
    route = {"route_id": None, "purpose": "weekend_discharge", "channel": "phone",
             "label": "Helgjour utskrivning", "value": "08-718 80 99"}  # fmt: skip
    async with demo.live.ctx.db.transaction() as session:
        await session.execute(
            update(Receipt)
            .where(Receipt.message_id == uuid.UUID(urgent_id))
            .values(escalated_at=datetime.now(UTC), escalation_level=1, escalation_route=route)
        )

    await nurse.goto(demo.url("/#/inbox"))
    waiting = nurse.get_by_test_id("awaiting")
    await waiting.get_by_role("heading", name="Väntar på kvittens (2 meddelanden)").wait_for()
    items = waiting.get_by_test_id("awaiting-item")
    first = items.nth(0)
    assert "Brådskande" in await first.inner_text()  # urgent first: the server's order
    await first.get_by_text("Biståndsenheten Nacka: Skickat – ej öppnat än").wait_for()
    await first.get_by_text("Eskalerat, nivå 1 till Helgjour utskrivning").wait_for()
    call = first.get_by_role("link", name="Ring 08-718 80 99")
    assert await call.get_attribute("href") == "tel:087188099"
    assert "Skickat " in await first.inner_text() and " kl. " in await first.inner_text()
    second = items.nth(1)
    assert "Läkemedelslista" not in await second.inner_text()  # no message text in the list, only metadata
    await second.get_by_role("link", name="Kontaktvägar till Biståndsenheten Nacka").wait_for()
    await both_viewports_clean(nurse, "the inbox with Väntar på kvittens")
    await screenshot(nurse, "awaiting-acknowledgement")

    await first.get_by_role("button", name="Påminn").click()
    await first.get_by_text("Påminnelse skickad").wait_for()

    # The officer (phone) sees the reminder and acknowledges the urgent message.
    await login(officer, demo, demo.officer)
    menu = officer.get_by_role("navigation").get_by_role("link", name="Inkorg 3 olästa")
    await menu.wait_for()  # item 5: the count inside the link's accessible name, and in the tab title
    assert await officer.title() == "(3) Brygga"
    await officer.goto(demo.url(f"/#/conversations/{cid}"))
    await officer.get_by_test_id("message").filter(has_text="Påminnelse: vi väntar fortfarande").wait_for()
    urgent = officer.get_by_test_id("message").filter(has_text="Behöver hemtjänst i kväll")
    await urgent.get_by_role("button", name="Kvittera").click()

    # Live: the urgent one leaves the nurse's list; the other still waits.
    await waiting.get_by_role("heading", name="Väntar på kvittens (1 meddelande)").wait_for(timeout=10_000)
    assert await items.count() == 1
    assert nurse_errors.real() == [] and officer_errors.real() == []
    await nurse_context.close()
    await officer_context.close()


async def test_closed_receiver_is_shown_in_the_header_and_composer_before_sending(demo: Demo, browser):
    """Item 2: the unit's inbox is staffed only tomorrow; the nurse sees so, its next opening and the phone
    route to use now, before she sends anything."""
    stockholm = ZoneInfo("Europe/Stockholm")
    day = (datetime.now(stockholm) + timedelta(days=1)).isoweekday()
    for route in (
        {"channel": "secure_message", "label": "Inkorg", "value": "Brygga", "purpose": "general",
         "hours": [{"from_day": day, "to_day": day, "from_time": "08:00", "to_time": "16:00"}]},
        {"channel": "phone", "label": "Jour", "value": "08-718 80 55", "purpose": "on_call", "rank": 5,
         "hours": [{"from_day": 1, "to_day": 7, "all_day": True}]},
    ):  # fmt: skip
        await api(demo.live, "POST", f"/api/v1/units/{demo.municipal}/routes", demo.admin_token, route)
    context, nurse, errors = await open_page(browser, "desktop")
    await login(nurse, demo, demo.nurse)
    conversation = await as_user(
        nurse, demo, "POST", "/api/v1/conversations",
        {"subject": "Helgutskrivning", "from_unit_id": str(demo.ward), "unit_ids": [str(demo.municipal)]},
    )  # fmt: skip
    await nurse.goto(demo.url(f"/#/conversations/{conversation['id']}"))
    header = nurse.get_by_test_id("closed-header")
    await header.get_by_text("Biståndsenheten Nacka läser inte meddelanden just nu.").wait_for()
    assert "Nästa öppning: " in await header.inner_text() and " kl. 08:00" in await header.inner_text()
    assert await header.get_by_role("link", name="08-718 80 55").get_attribute("href") == "tel:087188055"
    composer = nurse.get_by_test_id("closed-composer")
    await composer.get_by_text("Brådskande? Ring kontaktvägen").wait_for()
    await both_viewports_clean(nurse, "the conversation with a closed receiver")
    await screenshot(nurse, "closed-receiver")
    assert errors.real() == []
    await context.close()


async def test_offline_page_retries_on_reconnect_and_the_last_inbox_stays(demo: Demo, browser):
    """Item 12: while offline the inbox shows what it last had (marked as such), a page that fails has
    "Försök igen", and both load again by themselves once the connection is back."""
    context, nurse, errors = await open_page(browser, "desktop")
    await login(nurse, demo, demo.nurse)
    await as_user(
        nurse, demo, "POST", "/api/v1/conversations",
        {"subject": "Inför hemgång", "from_unit_id": str(demo.ward), "unit_ids": [str(demo.municipal)]},
    )  # fmt: skip
    await nurse.reload()
    item = nurse.get_by_test_id("conversation-item").filter(has_text="Inför hemgång")
    await item.wait_for()
    menu = nurse.get_by_role("navigation", name="Huvudmeny")

    await context.set_offline(True)
    await nurse.get_by_test_id("offline-banner").wait_for(timeout=15_000)
    await menu.get_by_role("link", name="Möten").click()
    failed = nurse.get_by_test_id("load-error")
    await failed.get_by_text("Sidan laddas igen av sig själv när anslutningen är tillbaka.").wait_for()
    await failed.get_by_role("button", name="Försök igen").click()  # still offline: the same note again
    await failed.wait_for()
    await both_viewports_clean(nurse, "a page that failed while offline")

    await menu.get_by_role("link", name="Inkorg").click()
    stale = nurse.get_by_test_id("offline-inbox")
    await stale.get_by_text("Ingen anslutning: inkorgen visas som den var kl. ").wait_for()
    await item.wait_for()  # the last inbox stays visible
    await both_viewports_clean(nurse, "the inbox while offline")
    await screenshot(nurse, "offline-inbox")

    # Back online: the inbox refreshes by itself (the note goes), and so does the failed page.
    await context.set_offline(False)
    await stale.wait_for(state="detached", timeout=30_000)
    await item.wait_for()
    await context.set_offline(True)
    await nurse.get_by_test_id("offline-banner").wait_for(timeout=15_000)
    await menu.get_by_role("link", name="Möten").click()
    await failed.wait_for()
    await context.set_offline(False)
    await nurse.get_by_text("Inga kommande möten.").wait_for(timeout=30_000)
    assert await failed.count() == 0
    assert errors.real() == []
    await context.close()


PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 300 200]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)
PNG = (ROOT / "client_web" / "public" / "icons" / "icon-192.png").read_bytes()


async def test_attachments_checked_before_upload_removable_and_previewed(demo: Demo, browser):
    """Item 6: the server's limits refuse a too big and an unsupported file before any upload; a chosen file
    is removed and the text still goes with the rest; the officer (phone) previews the PDF and the image."""
    demo.live.ctx.settings.max_upload_bytes = 200_000
    nurse_context, nurse, nurse_errors = await open_page(browser, "desktop")
    officer_context, officer, officer_errors = await open_page(browser, "phone")
    await login(nurse, demo, demo.nurse)
    conversation = await as_user(
        nurse, demo, "POST", "/api/v1/conversations",
        {"subject": "Bilagor inför hemgång", "from_unit_id": str(demo.ward), "unit_ids": [str(demo.municipal)]},
    )  # fmt: skip
    uploads: list[str] = []
    nurse.on("request", lambda request: uploads.append(request.url) if request.method == "POST" else None)
    await nurse.goto(demo.url(f"/#/conversations/{conversation['id']}"))
    picker = nurse.get_by_label("Bifoga fil")
    await nurse.get_by_text("högst 195 kB per fil").wait_for()
    await picker.set_input_files(
        [
            {"name": "stor.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 " + b"0" * 300_000},
            {"name": "program.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ\x90\x00"},
        ]
    )
    rejected = nurse.get_by_test_id("file-rejected")
    await rejected.get_by_text("stor.pdf är för stor (293 kB). Största storlek är 195 kB.").wait_for()
    await rejected.get_by_text("program.exe kan inte skickas: filtypen är inte tillåten.", exact=False).wait_for()
    assert not [url for url in uploads if "/attachments" in url]  # nothing was uploaded

    await picker.set_input_files(
        [
            {"name": "plan.pdf", "mimeType": "application/pdf", "buffer": PDF},
            {"name": "sår.png", "mimeType": "image/png", "buffer": PNG},
            {"name": "fel-bild.png", "mimeType": "image/png", "buffer": PNG},
        ]
    )
    chosen = nurse.get_by_test_id("chosen-files")
    await chosen.get_by_text("fel-bild.png").wait_for()
    assert await rejected.count() == 0
    await both_viewports_clean(nurse, "the composer with chosen and refused files")
    await chosen.get_by_role("button", name="Ta bort bilaga: fel-bild.png").click()
    assert await chosen.locator("li").count() == 2
    await nurse.get_by_label("Meddelande", exact=True).fill("Vårdplan och foto på såret.")
    await nurse.get_by_role("button", name="Skicka").click()
    sent = nurse.get_by_test_id("message").filter(has_text="Vårdplan och foto")
    await sent.get_by_role("link", name="plan.pdf").wait_for(timeout=15_000)
    assert await sent.get_by_role("link", name="fel-bild.png").count() == 0
    assert await chosen.count() == 0

    await login(officer, demo, demo.officer, f"/#/conversations/{conversation['id']}")
    message = officer.get_by_test_id("message").filter(has_text="Vårdplan och foto")
    await message.get_by_role("button", name="Förhandsvisa: sår.png").click()
    image = message.get_by_test_id("image-preview")
    await image.wait_for()
    for _ in range(50):
        if await image.evaluate("img => img.complete && img.naturalWidth"):
            break
        await officer.wait_for_timeout(100)
    assert await image.evaluate("img => img.naturalWidth") == 192
    await message.get_by_role("button", name="Förhandsvisa: plan.pdf").click()
    frame = message.get_by_test_id("pdf-preview")
    await frame.wait_for()
    assert await image.count() == 0  # one preview at a time
    src = await frame.get_attribute("src")
    assert src.endswith("?inline=true") and await frame.get_attribute("sandbox") is None  # sandboxed by the server
    preview = await officer.request.get(demo.url(src))
    assert preview.headers["content-disposition"].startswith("inline;")
    assert "sandbox" in preview.headers["content-security-policy"]
    for _ in range(50):  # Chromium's PDF viewer takes the frame (a blocked frame would be chrome-error://)
        urls = [f.url for f in officer.frames]
        if any(url.endswith("?inline=true") for url in urls):
            break
        await officer.wait_for_timeout(100)
    assert not any(url.startswith("chrome-error:") for url in urls), urls
    await both_viewports_clean(officer, "a conversation with a PDF preview")
    await screenshot(officer, "attachment-preview")
    assert nurse_errors.real() == [] and officer_errors.real() == []
    await nurse_context.close()
    await officer_context.close()


async def test_inbox_preview_pinned_composer_phone_format_and_no_internal_addresses(demo: Demo, browser):
    """Item 5: the officer's inbox (phone) shows who wrote last and how it starts; the composer stays at the
    bottom of a phone screen; phone numbers in Swedish national format; no `brygga:unit:` address shown."""
    for route in (
        {"channel": "phone", "label": "Mobil jour", "value": "+46701234567", "purpose": "on_call",
         "hours": [{"from_day": 1, "to_day": 7, "all_day": True}]},
        {"channel": "secure_message", "label": "Inkorg", "value": "brygga:unit:SE2321000016-7788", "purpose": "general",
         "hours": [{"from_day": 1, "to_day": 7, "all_day": True}]},
    ):  # fmt: skip
        await api(demo.live, "POST", f"/api/v1/units/{demo.municipal}/routes", demo.admin_token, route)
    nurse_context, nurse, nurse_errors = await open_page(browser, "desktop")
    officer_context, officer, officer_errors = await open_page(browser, "phone")
    await login(nurse, demo, demo.nurse, f"/#/directory/units/{demo.municipal}")
    await nurse.get_by_role("heading", name="Biståndsenheten Nacka").wait_for()
    mobile = nurse.locator("main").get_by_role("link", name="070-123 45 67").first
    assert await mobile.get_attribute("href") == "tel:+46701234567"
    assert "brygga:unit" not in await nurse.locator("main").inner_text()
    await nurse.locator("main").get_by_text("Enhetens inkorg i Brygga").first.wait_for()

    conversation = await as_user(
        nurse, demo, "POST", "/api/v1/conversations",
        {"subject": "Hemgång tisdag", "from_unit_id": str(demo.ward), "unit_ids": [str(demo.municipal)]},
    )  # fmt: skip
    for n in range(14):
        body = "Patienten behöver rullator och hjälp med dusch" if n == 13 else f"Rad {n}"
        await as_user(
            nurse, demo, "POST", f"/api/v1/conversations/{conversation['id']}/messages",
            {"client_id": str(uuid.uuid4()), "body": body},
        )  # fmt: skip
    await login(officer, demo, demo.officer)
    item = officer.get_by_test_id("conversation-item").filter(has_text="Hemgång tisdag")
    await item.get_by_text("Nora Lind: Patienten behöver rullator och hjälp med dusch").wait_for()
    await both_viewports_clean(officer, "the inbox with last-message previews")
    await officer.set_viewport_size(VIEWPORTS["phone"])
    await screenshot(officer, "inbox-preview-phone")

    await item.get_by_role("link").click()
    await officer.get_by_test_id("message").filter(has_text="Rad 0").wait_for()
    await officer.evaluate("window.scrollTo(0, 0)")
    composer = officer.get_by_role("form", name="Skriv ett meddelande")
    box = await composer.bounding_box()
    assert abs(box["y"] + box["height"] - PHONE["height"]) <= 2, box  # pinned to the bottom edge
    assert await officer.get_by_text("Rad 0").is_visible()  # while the oldest message is on screen
    await assert_accessible(officer, "the conversation with a pinned composer (phone)")
    await screenshot(officer, "composer-pinned-phone")
    await officer.set_viewport_size(VIEWPORTS["desktop"])
    assert await composer.evaluate("form => getComputedStyle(form).position") == "static"
    assert nurse_errors.real() == [] and officer_errors.real() == []
    await nurse_context.close()
    await officer_context.close()


async def test_reply_quotes_the_message_it_answers(demo: Demo, browser):
    """Item 3 (replies): the officer (phone) answers one specific message of two; both see the quote."""
    nurse_context, nurse, nurse_errors = await open_page(browser, "desktop")
    officer_context, officer, officer_errors = await open_page(browser, "phone")
    await login(nurse, demo, demo.nurse)
    conversation = await as_user(
        nurse, demo, "POST", "/api/v1/conversations",
        {"subject": "Frågor inför hemgång", "from_unit_id": str(demo.ward), "unit_ids": [str(demo.municipal)]},
    )  # fmt: skip
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    for body in ("Behövs trygghetslarm?", "Kan hemtjänsten börja på fredag?"):
        await as_user(nurse, demo, "POST", path, {"client_id": str(uuid.uuid4()), "body": body})
    await nurse.goto(demo.url(f"/#/conversations/{conversation['id']}"))
    await login(officer, demo, demo.officer, f"/#/conversations/{conversation['id']}")
    first = officer.get_by_test_id("message").filter(has_text="Behövs trygghetslarm?")
    await first.get_by_role("button", name="Svara").click()
    replying = officer.get_by_test_id("replying")
    await replying.get_by_text("Svar till Nora Lind: «Behövs trygghetslarm?»").wait_for()
    assert await officer.evaluate("document.activeElement.id") == "composer-body"
    await officer.get_by_label("Meddelande", exact=True).fill("Ja, vi ordnar larmet.")
    await officer.get_by_role("button", name="Skicka").click()
    await replying.wait_for(state="detached")

    for page in (officer, nurse):
        answer = page.get_by_test_id("message").filter(has_text="Ja, vi ordnar larmet.")
        await answer.get_by_test_id("quote").get_by_text("Svar till Nora Lind: «Behövs trygghetslarm?»").wait_for()
    await both_viewports_clean(nurse, "a conversation with a reply")
    assert nurse_errors.real() == [] and officer_errors.real() == []
    await nurse_context.close()
    await officer_context.close()


async def test_conversation_and_meeting_with_several_units(demo: Demo, browser):
    """Items 3 and 8: the nurse starts one conversation with the municipality and a primary care unit she
    adds by search, and invites home care to a meeting booked from it."""
    organisation = await api(
        demo.live, "POST", "/api/v1/organisations", demo.admin_token, {"name": "Region Stockholm VC", "kind": "region"}
    )
    for name, kind in (("Vårdcentral Nacka", "primary_care"), ("Hemtjänst Nacka", "home_care")):
        await api(
            demo.live, "POST", "/api/v1/units", demo.admin_token,
            {"organisation_id": organisation["id"], "name": name, "unit_type": kind, "municipality_code": "0182"},
        )  # fmt: skip
    context, nurse, errors = await open_page(browser, "phone")
    await login(nurse, demo, demo.nurse, f"/#/directory/units/{demo.municipal}")
    await nurse.get_by_role("heading", name="Biståndsenheten Nacka").wait_for()
    await nurse.get_by_role("button", name="Starta konversation").first.click()
    await nurse.get_by_label("Ämne").fill("SIP tre huvudmän")
    await nurse.get_by_label("Sök enhet att lägga till").fill("Vårdcentral")
    await nurse.get_by_role("button", name="Lägg till: Vårdcentral Nacka").click()
    await nurse.get_by_test_id("more-units").get_by_text("Vårdcentral Nacka").wait_for()
    await both_viewports_clean(nurse, "starting a conversation with several units")
    await nurse.locator("form").get_by_role("button", name="Starta konversation").click()
    await nurse.get_by_role("heading", name="SIP tre huvudmän").wait_for()
    participants = await nurse.locator(".participants").inner_text()
    assert "Biståndsenheten Nacka" in participants and "Vårdcentral Nacka" in participants

    await nurse.get_by_role("button", name="Boka möte").click()
    await nurse.get_by_label("Mötets titel").fill("SIP-möte")
    await nurse.get_by_label("Sök enhet att lägga till").fill("Hemtjänst")
    await nurse.get_by_role("button", name="Lägg till: Hemtjänst Nacka").click()
    await nurse.locator("form").get_by_role("button", name="Boka möte").click()
    await nurse.get_by_test_id("meeting-booked").wait_for()
    meetings = await as_user(nurse, demo, "GET", f"/api/v1/meetings?unit_id={demo.ward}")
    invited = {unit["unit_name"] for unit in meetings["items"][0]["invited_units"]}
    assert {"Biståndsenheten Nacka", "Vårdcentral Nacka", "Hemtjänst Nacka"} <= invited
    assert errors.real() == []
    await context.close()
