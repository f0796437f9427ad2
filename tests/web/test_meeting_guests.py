"""Issue 16 meeting journeys in a real browser: the host's guest links (item 7), two people (host on a
desktop, the guest on a phone), axe-core on every new view at both viewports."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.web.conftest import Demo, login
from tests.web.support import VIEWPORTS, ConsoleErrors, assert_accessible, screenshot
from tests.web.test_workday import as_user, both_viewports_clean, open_page

pytestmark = [pytest.mark.slow, pytest.mark.browser]
STOCKHOLM = ZoneInfo("Europe/Stockholm")


async def book(page, demo: Demo, title: str) -> dict:
    starts = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
    return await as_user(
        page, demo, "POST", "/api/v1/meetings",
        {"title": title, "starts_at": starts.isoformat(), "duration_minutes": 45,
         "organiser_unit_id": str(demo.ward), "invited_unit_ids": [str(demo.municipal)]},
    )  # fmt: skip


async def test_host_invites_an_interpreter_sees_the_link_once_and_revokes(demo: Demo, media_browser):
    """Item 7: link + code shown once with copy and ready SMS/letter texts; unused → used by the guest
    (phone) → revoked, which removes the waiting guest; a second link revoked before use."""
    host_context, host, host_errors = await open_page(media_browser, "desktop")
    await host_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=demo.base)
    await login(host, demo, demo.nurse)
    await book(host, demo, "SIP med tolk")

    await host.goto(demo.url("/#/meetings"))
    await host.get_by_test_id("meeting-list").get_by_role("link", name="SIP med tolk", exact=True).click()
    await host.get_by_role("heading", name="SIP med tolk", level=1).wait_for()
    when = await host.get_by_test_id("meeting-when").inner_text()
    assert " kl. " in when and "–" in when  # weekday, date, start–end in the heading area

    guests = host.get_by_test_id("guest-links")
    await guests.get_by_text("Inga gästlänkar än.").wait_for()
    await guests.get_by_label("Vem bjuder du in?").select_option(label="Tolk")
    await guests.get_by_label("Namn eller anteckning (valfritt)").fill("Ahmed")
    await guests.get_by_role("button", name="Skapa gästlänk").click()
    created = host.get_by_test_id("guest-created")
    await created.get_by_text("Länken och engångskoden visas bara nu.").wait_for()
    link = await created.get_by_label("Länk", exact=True).input_value()
    code = await created.get_by_label("Engångskod", exact=True).input_value()
    assert link.startswith(demo.url("/meeting#guest=")) and re.fullmatch(r"\d{6}", code)
    sms_link = await created.get_by_label("Sms 1: länken", exact=True).input_value()
    sms_code = await created.get_by_label("Sms 2: koden", exact=True).input_value()
    letter = await created.get_by_label("Brev", exact=True).input_value()
    assert link in sms_link and code not in sms_link and "SIP med tolk" in sms_link
    assert code in sms_code and link not in sms_code
    assert link in letter and code not in letter and "väntrummet" in letter
    await created.get_by_role("button", name="Kopiera: Länk").click()
    await created.get_by_text("Kopierat.").wait_for()
    assert await host.evaluate("navigator.clipboard.readText()") == link
    item = guests.get_by_test_id("guest-link").filter(has_text="Tolk – Ahmed")
    await item.get_by_text("Oanvänd").wait_for()
    assert "Giltig till " in await item.inner_text()
    await both_viewports_clean(host, "the meeting page with a new guest link")
    await screenshot(host, "guest-link")

    # Shown once: after "Klar" (or a reload) only the state remains, never the code.
    await created.get_by_role("button", name="Klar – dölj länken och koden").click()
    await host.reload()
    await item.wait_for()
    assert code not in await host.locator("main").inner_text()

    # The interpreter (phone) opens the link, gives name and code, and waits in the waiting room.
    guest_context, guest, guest_errors = await open_page(media_browser, "phone")
    await guest_context.grant_permissions(["camera", "microphone"], origin=demo.base)
    await guest.goto(link)
    await guest.get_by_label("Ditt namn").fill("Ahmed Tolk")
    wrong = "000000" if code != "000000" else "111111"
    await guest.get_by_label("Engångskod").fill(wrong)
    await guest.get_by_role("button", name="Gå till väntrummet").click()
    # Item 11 on the meeting page: the guest reads Swedish, not the server's English sentence.
    await guest.get_by_role("alert").get_by_text("Koden stämmer inte.", exact=False).wait_for()
    await guest.get_by_label("Engångskod").fill(code)
    await guest.get_by_role("button", name="Gå till väntrummet").click()
    await guest.get_by_test_id("waiting").wait_for(timeout=15_000)

    await host.reload()
    await item.get_by_text("Använd", exact=True).wait_for()
    assert "Ahmed Tolk anslöt kl. " in await item.inner_text()

    # A second link for a relative, revoked before use.
    await guests.get_by_role("button", name="Skapa gästlänk").click()
    await host.get_by_test_id("guest-created").wait_for()
    relative = guests.get_by_test_id("guest-link").filter(has_text="Anhörig")
    await relative.get_by_role("button", name="Återkalla: Anhörig").click()
    await relative.get_by_text("Återkallad").wait_for()
    assert await host.get_by_test_id("guest-created").count() == 0  # its code is gone with it

    # Revoking the used link removes the waiting interpreter.
    await item.get_by_role("button", name="Återkalla: Tolk – Ahmed").click()
    await item.get_by_text("Återkallad").wait_for()
    await guest.get_by_test_id("removed").wait_for(timeout=10_000)
    await both_viewports_clean(host, "the meeting page with used and revoked guest links")
    await host.set_viewport_size(VIEWPORTS["phone"])
    await screenshot(host, "guest-links-phone")
    assert host_errors.real() == [] and guest_errors.real() == []
    await host_context.close()
    await guest_context.close()


DENY_MEDIA = """
navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
"""


async def test_camera_check_says_what_to_do_when_the_browser_refuses_the_camera(demo: Demo, media_browser):
    """Item 10: a refused camera permission is said in words, with what to do, before anyone joins."""
    context, page, errors = await open_page(media_browser, "phone")
    await context.add_init_script(DENY_MEDIA)  # as if the person had clicked "Block" (DevTools injection)
    await login(page, demo, demo.nurse)
    meeting = await book(page, demo, "Vårdplanering")
    await page.goto(demo.url(meeting["join_path"]))
    check = page.locator('[data-testid="camera-check"][data-state="denied"]')
    await check.wait_for(timeout=10_000)
    assert "Tillåt dem via ikonen vid adressfältet" in await check.inner_text()
    assert await page.get_by_role("button", name="Anslut till mötet").is_disabled()
    await assert_accessible(page, "the meeting page with the camera refused (phone)")
    assert errors.real() == []
    await context.close()


COUNT_CHIMES = """
window.__tones = 0;
const createOscillator = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () { window.__tones += 1; return createOscillator.call(this); };
"""


async def test_host_lobby_alerts_beside_the_grid_and_tiles_name_unit_and_method(demo: Demo, media_browser):
    """Item 9 (and the heading and focus of items 8 and 10): a guest waits; the host sees and hears it
    beside the video grid, with a count, and admits; the guest sees the host's name, unit and
    "Lösenord + engångskod", never a URN or a pixel width."""
    host_context, host, host_errors = await open_page(media_browser, "desktop")
    await host_context.grant_permissions(["camera", "microphone"], origin=demo.base)
    await host_context.add_init_script(COUNT_CHIMES)  # DevTools injection: not subject to the page's CSP
    await login(host, demo, demo.nurse)
    meeting = await book(host, demo, "SIP med anhörig")
    invite = await as_user(host, demo, "POST", f"/api/v1/meetings/{meeting['id']}/guest-links", {"label": "Anhörig"})

    await host.goto(demo.url(meeting["join_path"]))
    await host.get_by_role("heading", name="Videomöte: SIP med anhörig").wait_for()
    assert " kl. " in await host.get_by_test_id("meeting-when").inner_text()
    level = host.get_by_test_id("mic-level")  # item 10: the microphone check before joining
    for _ in range(60):  # Chromium's fake microphone beeps about once a second
        if int(await level.get_attribute("data-level") or 0) > 0:
            break
        await host.wait_for_timeout(100)
    assert int(await level.get_attribute("data-level") or 0) > 0
    camera = host.get_by_test_id("camera-check")  # item 10: the camera check before joining
    await host.locator('[data-testid="camera-check"][data-state="ok"]').wait_for(timeout=10_000)
    assert await camera.inner_text() == "Kameran fungerar" and await camera.get_attribute("role") == "status"
    assert await host.get_by_label("Förhandsvisning").evaluate("video => video.videoWidth") > 0
    await both_viewports_clean(host, "the meeting page before joining (camera and microphone check)")
    assert (
        await host.get_by_role("button", name="Anslut till mötet").evaluate(
            "button => getComputedStyle(button).backgroundColor"
        )
        == "rgb(11, 79, 108)"
    )  # the design system's primary button, as in the rest of Brygga
    await screenshot(host, "meeting-setup")
    await host.get_by_role("button", name="Anslut till mötet").click()
    call = host.get_by_test_id("call")
    await call.wait_for()
    assert await host.evaluate("document.activeElement.dataset.testid") == "call"  # focus lands on the call
    lobby = host.get_by_test_id("lobby")
    await lobby.get_by_role("heading", name="Väntrum (0)").wait_for()

    guest_context, guest, guest_errors = await open_page(media_browser, "phone")
    await guest_context.grant_permissions(["camera", "microphone"], origin=demo.base)
    await guest.goto(invite["url"])
    await guest.get_by_label("Ditt namn").fill("Eva Anhörig")
    await guest.get_by_label("Engångskod").fill(invite["code"])
    await guest.get_by_role("button", name="Gå till väntrummet").click()
    await guest.get_by_test_id("waiting").wait_for(timeout=15_000)
    await guest.get_by_role("heading", name="Videomöte: SIP med anhörig").wait_for()

    await host.get_by_test_id("lobby-alert").get_by_text("1 person väntar i väntrummet").wait_for(timeout=10_000)
    await lobby.get_by_role("heading", name="Väntrum (1)").wait_for()
    entry = lobby.get_by_test_id("lobby-entry").filter(has_text="Eva Anhörig")
    assert "Gäst: länk och engångskod" in await entry.inner_text()
    assert await host.evaluate("window.__tones") == 2  # the chime: two tones
    grid, side = await host.locator(".grid").bounding_box(), await lobby.bounding_box()
    assert side["x"] >= grid["x"] + grid["width"] and side["y"] < grid["y"] + grid["height"]  # beside the grid
    await both_viewports_clean(host, "the host's call with someone waiting")
    await screenshot(host, "lobby-host")

    await entry.get_by_role("button", name="Släpp in: Eva Anhörig").click()
    await guest.get_by_test_id("call").wait_for(timeout=15_000)
    await lobby.get_by_role("heading", name="Väntrum (0)").wait_for()
    assert await host.get_by_test_id("lobby-alert").count() == 0
    tile = guest.get_by_test_id("tile").filter(has_text="Nora Lind")
    await tile.wait_for()
    assert await tile.get_by_test_id("unit").inner_text() == "Avdelning 64, Södersjukhuset"
    assert await tile.get_by_test_id("organisation").inner_text() == "Region Stockholm"
    assert await tile.get_by_test_id("identity").inner_text() == "Lösenord + engångskod"
    # Item 10: the guest raises a hand; the host sees it on the guest's tile, and it goes down again.
    await guest.get_by_role("button", name="Räck upp handen").click()
    guest_tile = host.get_by_test_id("tile").filter(has_text="Eva Anhörig")
    await guest_tile.get_by_test_id("hand").get_by_text("✋ Vill säga något").wait_for(timeout=10_000)
    await guest.get_by_role("button", name="Ta ner handen").click()
    await guest_tile.get_by_test_id("hand").wait_for(state="detached", timeout=10_000)
    for page in (host, guest):
        text = await page.locator("main").inner_text()
        assert "urn:" not in text and not re.search(r"\d+px", text)
    await assert_accessible(guest, "the guest's call (phone)")
    await screenshot(guest, "call-guest-phone")
    assert host_errors.real() == [] and guest_errors.real() == []
    await host_context.close()
    await guest_context.close()


async def test_booking_in_swedish_time_from_an_american_browser_closes_after_one_booking(demo: Demo, browser):
    """Item 8: day and time are chosen in Swedish (Stockholm time) even in a browser set to English (US) in
    New York; a double click books once; the form gives way to the confirmation with an .ics invitation."""
    context = await browser.new_context(
        viewport=VIEWPORTS["desktop"], locale="en-US", timezone_id="America/New_York", accept_downloads=True
    )
    page = await context.new_page()
    errors = ConsoleErrors().attach(page)
    await login(page, demo, demo.nurse, f"/#/directory/units/{demo.municipal}")
    await page.get_by_role("heading", name="Biståndsenheten Nacka").wait_for()
    await page.get_by_role("button", name="Boka möte").click()
    form = page.locator("form").filter(has=page.get_by_label("Mötets titel"))
    await form.get_by_label("Mötets titel").fill("Vårdplanering")
    day = (datetime.now(STOCKHOLM) + timedelta(days=2)).date()
    label = await form.get_by_label("Dag").locator(f"option[value='{day.isoformat()}']").inner_text()
    assert re.fullmatch(r"(måndag|tisdag|onsdag|torsdag|fredag|lördag|söndag) \d{1,2} \w+\.?", label), label
    await form.get_by_label("Dag").select_option(day.isoformat())
    await form.get_by_label("Tid", exact=True).select_option("14:15")
    await both_viewports_clean(page, "the booking form")
    await form.get_by_role("button", name="Boka möte").dblclick()
    booked = page.get_by_test_id("meeting-booked")
    await booked.get_by_role("heading", name="Mötet är bokat.").wait_for()
    assert await form.count() == 0  # the form is gone: nothing left to click twice
    meetings = await as_user(page, demo, "GET", f"/api/v1/meetings?unit_id={demo.ward}")
    assert [m["title"] for m in meetings["items"]] == ["Vårdplanering"]
    start = datetime.fromisoformat(meetings["items"][0]["starts_at"]).astimezone(STOCKHOLM)
    assert (start.date(), start.strftime("%H:%M")) == (day, "14:15")
    assert " kl. 14:15" in await booked.inner_text()

    async with page.expect_download() as download_info:
        await booked.get_by_role("link", name="Lägg till i kalendern (.ics)").click()
    download = await download_info.value
    assert download.suggested_filename == "Vårdplanering.ics"
    ics = Path(await download.path()).read_bytes().decode("utf-8")  # CRLF kept, as RFC 5545 wants
    assert ics.startswith("BEGIN:VCALENDAR\r\n") and "SUMMARY:Vårdplanering\r\n" in ics
    assert f"DTSTART:{start.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}\r\n" in ics
    assert f"/meeting#meeting={meetings['items'][0]['id']}" in ics.replace("\r\n ", "")
    await both_viewports_clean(page, "the booking confirmation")
    assert errors.real() == []
    await context.close()
