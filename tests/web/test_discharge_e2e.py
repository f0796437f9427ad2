"""Issue 17, acceptance 1: a discharge in real browsers, with the server's clock moved by the test.

The ward nurse opens a case with an admission notice; home care and primary care acknowledge it in the
case view; the nurse sends "utskrivningsklar"; nobody calls the SIP for three days (the fake clock moves),
so the SIP clock is missed and the server's deadline engine escalates it along primary care's contact
routes (both levels); primary care sees the case as overdue, books the SIP meeting from the case (every
unit invited: home care sees it in its meetings) and the nurse sends the discharge notice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyotp
import pytest

from server.core.deadlines import DeadlineEngine
from server.discharge.clocks import KINDS
from tests.discharge.conftest import Clock
from tests.identity.helpers import PASSWORD, Live, start_live
from tests.web.conftest import Staff, _admin_token, api, login, staff
from tests.web.support import DESKTOP, ConsoleErrors, assert_accessible, screenshot

pytestmark = [pytest.mark.slow, pytest.mark.browser]
SIP_CALL = KINDS["sip_call"]


@dataclass
class Site:
    live: Live
    clock: Clock
    nurse: Staff
    home: Staff
    doctor: Staff

    def url(self, path: str = "/") -> str:
        return self.live.base + path


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    live = await start_live(tmp_path / "data")
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    live.ctx.clock = clock
    try:
        _, token = await _admin_token(live)
        region = await api(live, "POST", "/api/v1/organisations", token, {"name": "Region Stockholm", "kind": "region"})
        nacka = await api(live, "POST", "/api/v1/organisations", token,
                          {"name": "Nacka kommun", "kind": "municipality", "municipality_code": "0182"})  # fmt: skip

        async def unit(org: dict[str, Any], name: str, unit_type: str, routes: list[dict[str, Any]]) -> uuid.UUID:
            body = {"organisation_id": org["id"], "name": name, "unit_type": unit_type, "routes": routes}
            return uuid.UUID((await api(live, "POST", "/api/v1/units", token, body))["id"])

        ward = await unit(region, "Avdelning 52, Södersjukhuset", "ward", [])
        primary = await unit(region, "Nacka vårdcentral", "primary_care", [
            {"channel": "phone", "label": "Vårdcentralens planeringstelefon", "value": "08-123 400 00",
             "purpose": "discharge_planning", "rank": 10, "hours": "always"},
            {"channel": "phone", "label": "Jourhavande samordnare", "value": "08-123 499 99", "purpose": "on_call",
             "rank": 20, "hours": "always"},
        ])  # fmt: skip
        home = await unit(nacka, "Hemtjänst Nacka centrum", "home_care", [])
        yield Site(
            live,
            clock,
            await staff(live, "sara", "Sara Sjöberg", units={ward: "member"}),
            await staff(live, "hanna", "Hanna Holm", units={home: "member"}),
            await staff(live, "leo", "Leo Lind", units={primary: "member"}),
        )
    finally:
        await live.client.close()


async def acknowledge_admission(browser: Any, site: Site, who: Staff) -> Any:
    context = await browser.new_context(viewport=DESKTOP, locale="sv-SE", timezone_id="Europe/Stockholm")
    page = await context.new_page()
    await login(page, site, who, "/#/cases")  # type: ignore[arg-type]
    await page.get_by_test_id("view-due_today").click()
    await page.get_by_test_id("case-list").get_by_role("link", name="SÖS-2026-0412").click()
    await page.get_by_test_id("ack-admission_notice").click()
    await page.get_by_test_id("milestones").get_by_text(f"{who_unit(who)}: kvitterat").wait_for()
    return page


async def login_at_server_time(page: Any, site: Site, who: Staff, path: str) -> None:
    """Days later on the server's clock the sessions have expired: log in again, with the one-time code
    of the server's (fake) time."""
    await page.goto(site.url(path))
    await page.reload()  # a hash-only change does not load the page again
    await page.get_by_test_id("login-link").click()
    await page.locator("#login").fill(who.login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("#code").fill(pyotp.TOTP(who.totp_secret).at(site.clock()))
    await page.locator("form button[type=submit]").click()
    await page.locator(".user-name", has_text=who.name).wait_for(timeout=15_000)


async def let_time_pass(engine: DeadlineEngine, clock: Clock, until: datetime) -> None:
    """Move the server's clock and wait until its deadline engine has fired everything due by then."""
    clock.now = until
    engine.wake.set()
    for _ in range(200):
        upcoming = await engine.next_due()
        if upcoming is None or upcoming > until:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the engine did not fire what was due at {until}")


def who_unit(who: Staff) -> str:
    return {"hanna": "Hemtjänst Nacka centrum", "leo": "Nacka vårdcentral"}[who.login]


async def test_a_discharge_with_a_missed_sip_deadline(site: Site, browser):
    context = await browser.new_context(viewport=DESKTOP, locale="sv-SE", timezone_id="Europe/Stockholm")
    nurse = await context.new_page()
    errors = ConsoleErrors().attach(nurse)

    # 1. The ward nurse opens a case; the admission notice goes with it.
    await login(nurse, site, site.nurse, "/#/cases")  # type: ignore[arg-type]
    await nurse.get_by_role("heading", name="Utskrivningsärenden").wait_for()
    await nurse.get_by_text("Nytt ärende (med inskrivningsmeddelande)").click()
    form = nurse.get_by_test_id("new-case")
    await form.get_by_label("Ärendereferens (pseudonym, aldrig personnummer)").fill("SÖS-2026-0412")
    await form.locator("select[name=municipality_code]").select_option("0182")
    for picker, query, name in (("pick-home-care", "Hemtjänst Nacka", "Hemtjänst Nacka centrum"),
                                ("pick-primary-care", "Nacka vårdc", "Nacka vårdcentral")):  # fmt: skip
        await form.get_by_test_id(picker).get_by_role("searchbox").fill(query)
        await form.get_by_test_id(picker).get_by_label(name).check()
    await form.get_by_role("button", name="Öppna ärende").click()
    await nurse.get_by_role("heading", name="SÖS-2026-0412").wait_for()
    milestones = nurse.get_by_test_id("milestones")
    await milestones.get_by_text("Inskrivningsmeddelande").wait_for()
    assert await nurse.locator("[data-clock=admission_notice]").get_attribute("data-state") == "met"
    await assert_accessible(nurse, "a discharge case")

    # 2. Home care and primary care acknowledge the admission notice in their case view.
    home = await acknowledge_admission(browser, site, site.home)
    doctor = await acknowledge_admission(browser, site, site.doctor)
    await nurse.reload()
    await milestones.get_by_text("Hemtjänst Nacka centrum: kvitterat").wait_for()
    await milestones.get_by_text("Nacka vårdcentral: kvitterat").wait_for()

    # 3. Ready for discharge: the SIP clock starts, on both sides.
    await nurse.get_by_test_id("send-ready_for_discharge").click()
    await nurse.locator("[data-clock=sip_call][data-state=running]").wait_for()
    await doctor.reload()
    await doctor.locator("[data-clock=sip_call][data-state=running]").wait_for()

    # 4. Nobody calls the SIP for three days: the clock is missed and escalates along primary care's routes.
    # The server's deadline engine fires the clock's timers when its (fake) time has come.
    engine = site.live.ctx.deadlines
    case_id = uuid.UUID(doctor.url.rsplit("/", 1)[1])
    await let_time_pass(engine, site.clock, site.clock() + timedelta(days=3, minutes=1))
    next_step = await engine.next_due([SIP_CALL])
    assert next_step is not None  # level 2 after 60 open minutes of primary care
    await let_time_pass(engine, site.clock, next_step)
    assert await engine.next_due([SIP_CALL]) is None  # both routes tried
    await login_at_server_time(doctor, site, site.doctor, "/#/cases?view=overdue")  # three days later
    await doctor.get_by_test_id("case-list").get_by_text("SÖS-2026-0412").wait_for()
    await doctor.get_by_test_id("case-list").get_by_role("link", name="SÖS-2026-0412").click()
    escalations = doctor.get_by_test_id("escalations")
    await escalations.get_by_text("Vårdcentralens planeringstelefon").wait_for()
    await escalations.get_by_text("Jourhavande samordnare").wait_for()
    assert await doctor.locator("[data-clock=sip_call]").get_attribute("data-state") == "missed"
    await screenshot(doctor, "discharge-case-overdue")

    # 5. Primary care books the SIP meeting from the case: every unit of the case is invited.
    sip_at = (site.clock() + timedelta(days=1)).astimezone(ZoneInfo("Europe/Stockholm"))
    await doctor.get_by_test_id("book-sip").get_by_role("textbox").fill(sip_at.strftime("%Y-%m-%dT%H:%M"))
    await doctor.get_by_test_id("book-sip").get_by_role("button").click()
    await doctor.get_by_text("SIP-mötet är bokat.").wait_for()
    await doctor.get_by_test_id("milestones").get_by_text("Kallelse till SIP").wait_for()
    await login_at_server_time(home, site, site.home, "/#/meetings")
    await home.get_by_test_id("meeting-list").get_by_text("SIP SÖS-2026-0412").wait_for()

    # 6. The ward sends the discharge notice.
    site.clock.advance(days=1)
    await login_at_server_time(nurse, site, site.nurse, f"/#/cases/{case_id}")
    await nurse.get_by_test_id("send-discharged").click()
    await nurse.get_by_test_id("case-status").get_by_text("Utskriven").wait_for()
    assert errors.real() == []
    await context.close()
