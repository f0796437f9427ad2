"""Issue 16 item 3, "adding a unit later": the nurse (desktop) brings a primary care unit into her
conversation with the municipality; its doctor (phone) finds it in her inbox with the history and replies."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.web.conftest import Demo, api, login, staff
from tests.web.support import screenshot
from tests.web.test_workday import as_user, both_viewports_clean, open_page

pytestmark = [pytest.mark.slow, pytest.mark.browser]


async def test_a_participant_adds_a_unit_whose_member_sees_the_history_and_replies(demo: Demo, browser):
    organisation = await api(
        demo.live, "POST", "/api/v1/organisations", demo.admin_token, {"name": "Region Stockholm VC", "kind": "region"}
    )
    sickla = await api(
        demo.live, "POST", "/api/v1/units", demo.admin_token,
        {"organisation_id": organisation["id"], "name": "Vårdcentral Sickla", "unit_type": "primary_care",
         "municipality_code": "0182"},
    )  # fmt: skip
    doctor = await staff(demo.live, "vera", "Vera Ek", units={uuid.UUID(sickla["id"]): "member"})
    nurse_context, nurse, nurse_errors = await open_page(browser, "desktop")
    doctor_context, phone, doctor_errors = await open_page(browser, "phone")
    await login(nurse, demo, demo.nurse)
    conversation = await as_user(
        nurse, demo, "POST", "/api/v1/conversations",
        {"subject": "Hemgång fredag", "from_unit_id": str(demo.ward), "unit_ids": [str(demo.municipal)]},
    )  # fmt: skip
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    await as_user(nurse, demo, "POST", path, {"client_id": str(uuid.uuid4()), "body": "Patienten skrivs ut på fredag."})
    await nurse.goto(demo.url(f"/#/conversations/{conversation['id']}"))
    await nurse.get_by_role("heading", name="Hemgång fredag").wait_for()

    await nurse.get_by_role("button", name="Lägg till enhet", exact=True).click()
    await nurse.get_by_label("Sök enhet att lägga till").fill("Sickla")
    await nurse.get_by_role("button", name="Lägg till: Vårdcentral Sickla").click()
    await nurse.get_by_test_id("more-units").get_by_text("Vårdcentral Sickla").wait_for()
    await both_viewports_clean(nurse, "adding a unit to a conversation")
    await screenshot(nurse, "add-unit")
    await nurse.get_by_role("button", name="Lägg till i konversationen").click()
    await nurse.get_by_role("status").filter(has_text="Enheten är tillagd.").wait_for()
    await nurse.locator(".participants").filter(has_text="Vårdcentral Sickla").wait_for()
    notice = nurse.get_by_test_id("message").filter(has_text="lade till Vårdcentral Sickla")
    await notice.wait_for()
    assert "Nora Lind" in await notice.inner_text()

    # The doctor of the added unit, on a phone: the conversation is in her inbox, with its history.
    await login(phone, demo, doctor)
    await phone.get_by_role("link").filter(has_text="Hemgång fredag").first.click()
    await phone.get_by_role("heading", name="Hemgång fredag").wait_for()
    await phone.get_by_test_id("message").filter(has_text="Patienten skrivs ut på fredag.").wait_for()
    await phone.get_by_test_id("message").filter(has_text="lade till Vårdcentral Sickla").wait_for()
    assert re.search("Vårdcentral Sickla", await phone.locator(".participants").inner_text())
    await phone.get_by_label("Meddelande", exact=True).fill("Vi tar läkemedelsgenomgången.")
    await phone.get_by_role("button", name="Skicka").click()
    await nurse.get_by_test_id("message").filter(has_text="Vi tar läkemedelsgenomgången.").wait_for()
    assert nurse_errors.real() == [] and doctor_errors.real() == []
    await nurse_context.close()
    await doctor_context.close()
