"""Opening hours in the admin UI, in a real browser (issue 14): a new route needs hours, the admin sets weekly
hours with a holiday rule, previews the next 14 days, saves, adds a unit closure, and reachability follows."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.directory.hours import is_holiday
from tests.web.conftest import Demo, api, login
from tests.web.support import PHONE, assert_accessible, assert_no_horizontal_scroll, screenshot
from tests.web.test_pages import new_page

pytestmark = [pytest.mark.slow, pytest.mark.browser]
STOCKHOLM = ZoneInfo("Europe/Stockholm")
LABEL = "Jour utskrivning"


async def test_admin_sets_hours_holiday_rule_and_closure_and_reachability_follows(demo: Demo, browser):
    context, page, errors = await new_page(browser)
    await login(page, demo, demo.admin, f"/#/admin/units/{demo.municipal}")
    routes = page.get_by_role("region", name="Kontaktvägar")
    await routes.get_by_role("button", name="Lägg till kontaktväg").click()
    route = page.get_by_role("form", name="Kontaktvägar 3")
    await route.get_by_label("Benämning").fill(LABEL)
    await route.get_by_label("Kontakt", exact=True).fill("08-718 80 77")

    # Without hours nothing is saved: a route is never "always open" by omission.
    await route.get_by_role("button", name="Spara").click()
    await route.get_by_text("Ange öppettider eller välj dygnet runt").wait_for()
    unit = await api(demo.live, "GET", f"/api/v1/units/{demo.municipal}", demo.admin_token)
    assert LABEL not in [r["label"] for r in unit["routes"]]

    # Every day round the clock, but closed on public holidays and eves; on those 08:00–16:00 instead.
    await route.get_by_role("button", name="Lägg till tider", exact=True).click()
    first = route.get_by_role("group", name="Tider 1")
    await first.get_by_label("Från dag").select_option(label="måndag")
    await first.get_by_label("Till dag").select_option(label="söndag")
    await first.get_by_label("Hela dygnet").check()
    await first.get_by_label("Helgdagar och aftnar").select_option(label="Stängt på helgdagar och aftnar")
    await route.get_by_role("button", name="Lägg till tider för helgdagar och aftnar").click()
    holiday = route.get_by_role("group", name="Tider 2")
    await holiday.get_by_label("Från dag").select_option(label="måndag")
    await holiday.get_by_label("Till dag").select_option(label="söndag")
    assert await holiday.get_by_label("Helgdagar och aftnar").input_value() == "holidays_only"

    # The preview before saving: open now (unless today is a holiday), and day by day for two weeks.
    await route.get_by_role("button", name="Förhandsgranska 14 dagar").click()
    preview = route.get_by_test_id("hours-preview")
    await preview.wait_for()
    today = datetime.now(STOCKHOLM).date()
    now_text = "Öppet nu" if not is_holiday(today) or 8 <= datetime.now(STOCKHOLM).hour < 16 else "Stängt nu"
    await preview.get_by_text(now_text).wait_for()
    for offset in range(14):
        day = today + timedelta(days=offset)
        row = preview.locator(f"tr[data-date='{day.isoformat()}']")
        assert ("08:00–16:00" if is_holiday(day) else "00:00–24:00") in await row.inner_text(), day
    await assert_accessible(page, "the route editor with hours and a preview")
    await screenshot(page, "admin-hours-preview")

    await route.get_by_role("button", name="Spara").click()
    await route.get_by_text("Sparat.").wait_for()
    await route.get_by_label("Helgdagar och aftnar").first.wait_for()

    # What was saved is what reachability uses: Juldagen evening closed, Juldagen morning and a Tuesday evening open.
    async def open_at(at: str) -> bool:
        reach = await api(demo.live, "GET", f"/api/v1/units/{demo.municipal}/reachability?at={at}", demo.admin_token)
        return LABEL in [r["label"] for r in reach["routes"]]

    assert not await open_at("2026-12-25T20:00:00%2B01:00")
    assert await open_at("2026-12-25T10:00:00%2B01:00")
    assert await open_at("2026-12-22T20:00:00%2B01:00")

    # A closure of the whole unit from an hour ago to two hours ahead: the preview and the directory follow.
    now = datetime.now(STOCKHOLM).replace(second=0, microsecond=0)
    closures = page.get_by_role("form", name="Lägg till stängning eller meddelande")
    await closures.get_by_label("Gäller").select_option(label="Hela enheten")
    await closures.get_by_label("Från").fill((now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    await closures.get_by_label("Till").fill((now + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    await closures.get_by_label("Orsak").fill("Inventering")
    await closures.get_by_role("button", name="Lägg till stängning eller meddelande").click()
    await closures.get_by_text("Sparat.").wait_for()
    await page.get_by_test_id("closures").get_by_text("Inventering").wait_for()
    route = page.get_by_role("form", name="Kontaktvägar 3")
    await route.get_by_role("button", name="Förhandsgranska 14 dagar").click()
    await route.get_by_test_id("hours-preview").get_by_text("Stängt nu").wait_for()
    assert "Inventering" in await route.locator(f"tr[data-date='{today.isoformat()}']").inner_text()
    await assert_accessible(page, "the unit editor with a closure")

    await page.set_viewport_size(PHONE)
    await assert_accessible(page, "the hours editor (phone)")
    await assert_no_horizontal_scroll(page, "the hours editor (phone)")

    await page.goto(demo.url(f"/#/directory/units/{demo.municipal}"))
    reachability = page.get_by_test_id("reachability")
    await reachability.get_by_role("heading", name="Inte nåbar nu").wait_for()
    await page.set_viewport_size({"width": 1280, "height": 800})
    await assert_accessible(page, "the unit page during the closure")
    assert errors.real() == []
    await context.close()
