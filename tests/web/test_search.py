"""Issue 16 item 4 in a real browser: search conversations by case reference (exact, any case), subject,
unit and date; a case reference also lists the case's meetings. Desktop and phone, axe-core clean."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.web.conftest import Demo, login
from tests.web.test_workday import as_user, both_viewports_clean, open_page

pytestmark = [pytest.mark.slow, pytest.mark.browser]


async def test_search_by_case_reference_shows_conversations_and_meetings(demo: Demo, browser):
    context, page, errors = await open_page(browser, "desktop")
    await login(page, demo, demo.nurse)
    units = {"from_unit_id": str(demo.ward), "unit_ids": [str(demo.municipal)]}
    thread = await as_user(page, demo, "POST", "/api/v1/conversations",
                           {"subject": "Utskrivning fredag", "case_ref": "SÖS-2026-0042", **units})  # fmt: skip
    await as_user(page, demo, "POST", "/api/v1/conversations", {"subject": "Läkemedelslista inför hemgång", **units})
    await as_user(page, demo, "POST", "/api/v1/conversations",
                  {"subject": "Annat ärende", "case_ref": "SÖS-2026-0099", **units})  # fmt: skip
    starts = (datetime.now(UTC) + timedelta(days=1)).replace(second=0, microsecond=0)
    meeting = {"title": "SIP-möte SÖS-2026-0042", "starts_at": starts.isoformat(), "organiser_unit_id": str(demo.ward),
               "invited_unit_ids": [str(demo.municipal)], "conversation_id": thread["id"]}  # fmt: skip
    await as_user(page, demo, "POST", "/api/v1/meetings", meeting)

    await page.goto(demo.url("/#/inbox"))
    await page.get_by_role("navigation", name="Huvudmeny").get_by_role("link", name="Sök").click()
    await page.get_by_role("heading", name="Sök konversationer", level=1).wait_for()
    await page.get_by_label("Ärendereferens").fill("sös-2026-0042")
    await page.get_by_role("button", name="Sök", exact=True).click()
    results = page.get_by_test_id("search-results")
    await results.get_by_role("status").get_by_text("1 träff", exact=True).wait_for()
    hits = results.get_by_test_id("search-hit")
    assert await hits.count() == 1
    assert "Utskrivning fredag" in await hits.first.inner_text()
    meetings = page.get_by_test_id("case-meetings")
    await meetings.get_by_role("link", name="SIP-möte SÖS-2026-0042").wait_for()
    assert "#/search?case_ref=s%C3%B6s-2026-0042" in page.url  # shareable
    await both_viewports_clean(page, "search by case reference")

    # Subject, any case; the case's meetings are listed only for a case reference.
    await page.get_by_label("Ärendereferens").fill("")
    await page.get_by_label("Ämne innehåller").fill("LÄKEMEDEL")
    await page.get_by_role("button", name="Sök", exact=True).click()
    await results.get_by_role("link", name="Läkemedelslista inför hemgång").wait_for()
    assert await hits.count() == 1 and await meetings.count() == 0

    # Unit and dates: the ward's three conversations of today; none from tomorrow on.
    await page.get_by_label("Ämne innehåller").fill("")
    await page.get_by_label("Enhet").select_option(str(demo.ward))
    await page.get_by_role("button", name="Sök", exact=True).click()
    await results.get_by_role("status").get_by_text("3 träffar", exact=True).wait_for()
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    await page.get_by_label("Från och med").fill(tomorrow)
    await page.get_by_role("button", name="Sök", exact=True).click()
    await results.get_by_role("status").get_by_text("0 träffar", exact=True).wait_for()

    # The hit opens the conversation; on a phone the same search works.
    await page.goto(demo.url("/#/search?case_ref=S%C3%96S-2026-0042"))
    await page.get_by_test_id("search-hit").get_by_role("link", name="Utskrivning fredag").click()
    await page.wait_for_url(f"**/#/conversations/{thread['id']}")
    phone_context, phone, phone_errors = await open_page(browser, "phone")
    await login(phone, demo, demo.officer)
    await phone.goto(demo.url("/#/search?case_ref=S%C3%96S-2026-0042"))
    await phone.get_by_test_id("search-hit").get_by_role("link", name="Utskrivning fredag").wait_for()
    await phone.get_by_test_id("case-meetings").get_by_role("link", name="SIP-möte SÖS-2026-0042").wait_for()
    assert errors.real() == [] and phone_errors.real() == []
    await context.close()
    await phone_context.close()
