"""Discharge cases over the API: milestones acknowledged in the case thread, clocks, SIP booking, unit lists."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select

from server.core.calendar import RouteRef
from server.discharge.clocks import KINDS
from server.discharge.models import DischargeCase

CASES = "/api/v1/discharge/cases"


def clock_of(case: dict, name: str) -> dict:
    return next(c for c in case["clocks"] if c["clock"] == name)


async def test_case_from_admission_to_discharge(site):
    case = await site.call("sara", "POST", CASES, site.opening(), expect=201)
    assert [m["kind"] for m in case["milestones"]] == ["admission_notice"]
    assert clock_of(case, "admission_notice")["state"] == "met"
    notice = case["milestones"][0]
    assert {a["unit_id"] for a in notice["acks"]} == {str(site.primary), str(site.home)}
    # The notice is a structured message in the case thread with human Swedish text.
    messages = await site.call("hanna", "GET", f"/api/v1/conversations/{case['conversation_id']}/messages")
    system = messages["items"][-1]["system"]
    assert system["kind"] == "discharge.admission_notice"
    assert system["data"]["text"].startswith("Ärende SÖS-2026-0001: Inskrivningsmeddelande")
    # Home care and primary care acknowledge it like any ack_required message.
    for who in ("hanna", "leo"):
        mine = await site.call(who, "GET", f"{CASES}/{case['id']}")
        assert mine["waiting_for_my_ack"] == [notice["message_id"]]
        ack = f"/api/v1/conversations/{case['conversation_id']}/messages/{notice['message_id']}/acknowledge"
        await site.call(who, "POST", ack)
    case = await site.call("sara", "GET", f"{CASES}/{case['id']}")
    assert all(a["acknowledged_at"] for a in case["milestones"][0]["acks"])

    site.clock.advance(days=2)
    ready_at = site.clock.now
    case = await site.call("sara", "POST", f"{CASES}/{case['id']}/milestones", {"kind": "ready_for_discharge"}, 201)
    sip = clock_of(case, "sip_call")
    assert (sip["state"], datetime.fromisoformat(sip["due_at"])) == ("running", ready_at + timedelta(days=3))
    payment = clock_of(case, "payment")  # three calendar days after the notice, from midnight Stockholm time
    assert payment["state"] == "pending" and payment["due_at"].startswith("2026-03-06T23:00:00")

    start = (site.clock.now + timedelta(days=1)).isoformat()
    booked = await site.call("leo", "POST", f"{CASES}/{case['id']}/sip-meeting", {"starts_at": start}, 201)
    meeting = await site.call("hanna", "GET", f"/api/v1/meetings/{booked['meeting_id']}")
    assert {u["unit_id"] for u in meeting["invited_units"]} == {str(site.ward), str(site.home)}
    assert meeting["organiser_unit_id"] == str(site.primary)
    assert clock_of(booked["case"], "sip_call")["state"] == "met"

    site.clock.advance(days=5)
    case = await site.call("sara", "POST", f"{CASES}/{case['id']}/milestones", {"kind": "discharged"}, 201)
    assert case["status"] == "discharged"
    async with site.ctx.db.transaction() as session:
        row = (await session.execute(select(DischargeCase))).scalar_one()
    assert (row.discharge_month, row.ready_days, row.payment_days) == ("2026-03", 5, 2)
    await site.call("sara", "POST", f"{CASES}/{case['id']}/milestones", {"kind": "ready_for_discharge"}, 409)


async def test_refusals_and_visibility(site):
    refused = await site.client.post(CASES, json=site.opening("19121212-1212"), headers=site.h("sara"))
    assert refused.status == 422 and (await refused.json())["code"] == "personal_number_not_allowed"
    assert (await site.client.post(CASES, json=site.opening(), headers=site.h("hanna"))).status == 403
    case = await site.call("sara", "POST", CASES, site.opening(), expect=201)
    assert (await site.client.get(f"{CASES}/{case['id']}", headers=site.h("olle"))).status == 404
    again = await site.client.post(CASES, json=site.opening(), headers=site.h("sara"))
    assert again.status == 409
    # Only the ward sends ward notices; the personal number field keeps only a keyed hash.
    body = {"kind": "ready_for_discharge"}
    refused = await site.client.post(f"{CASES}/{case['id']}/milestones", json=body, headers=site.h("hanna"))
    assert refused.status == 403
    linked = await site.call("sara", "POST", CASES, site.opening("SÖS-2", personal_number="19121212-1212"), 201)
    async with site.ctx.db.transaction() as session:
        row = await session.get(DischargeCase, uuid.UUID(linked["id"]))
    assert row.patient_key and "1212" not in row.patient_key and len(row.patient_key) == 64


async def test_unit_lists_and_missed_sip_escalates(site):
    class Routes:
        async def open_intervals(self, unit_id, start, end):
            return [(start, end)]

        async def escalation_routes(self, unit_id, at):
            return [RouteRef(None, "discharge_planning", "phone", "Vårdcentralens planeringstelefon", "08-123 45"),
                    RouteRef(None, "on_call", "phone", "Jourhavande samordnare", "08-999 99")]  # fmt: skip

    site.ctx.calendar = Routes()
    case = await site.call("sara", "POST", CASES, site.opening(), expect=201)
    await site.call("sara", "POST", f"{CASES}/{case['id']}/milestones", {"kind": "ready_for_discharge"}, 201)

    async def view(who: str, unit, name: str) -> list[str]:
        found = await site.call(who, "GET", f"{CASES}?unit_id={unit}&view={name}")
        return [item["case_ref"] for item in found["items"]]

    assert await view("leo", site.primary, "mine") == ["SÖS-2026-0001"]
    assert await view("leo", site.primary, "due_today") == ["SÖS-2026-0001"]  # notices to acknowledge
    assert await view("leo", site.primary, "overdue") == []
    assert await view("sara", site.ward, "waiting") == ["SÖS-2026-0001"]
    assert (await site.client.get(f"{CASES}?unit_id={site.ward}", headers=site.h("leo"))).status == 403

    site.clock.advance(days=3, minutes=1)  # the SIP was not called within 3 days
    assert await view("leo", site.primary, "overdue") == ["SÖS-2026-0001"]
    # The clocks run on the core deadline engine: it fires what is due at the (fake) time.
    engine = site.ctx.deadlines
    await engine.fire_due()
    next_due = await engine.next_due([KINDS["sip_call"]])
    assert next_due == site.clock.now + timedelta(minutes=60)
    site.clock.now = next_due
    await engine.fire_due()
    assert await engine.next_due([KINDS["sip_call"]]) is None  # last route reached
    case = await site.call("sara", "GET", f"{CASES}/{case['id']}")
    assert [(e["level"], e["route_label"]) for e in case["escalations"] if e["clock"] == "sip_call"] == [
        (1, "Vårdcentralens planeringstelefon"), (2, "Jourhavande samordnare")
    ]  # fmt: skip
    # The payment responsibility started meanwhile (from midnight, three days after the notice): told once.
    assert [(e["clock"], e["unit_id"]) for e in case["escalations"] if e["clock"] != "sip_call"] == [
        ("payment", str(site.home))
    ]
    messages = await site.call("leo", "GET", f"/api/v1/conversations/{case['conversation_id']}/messages")
    texts = [m["system"]["data"]["text"] for m in messages["items"] if m["system"]]
    assert "Kallelse till SIP saknas" in texts[-1] and "Jourhavande samordnare (08-999 99)" in texts[-1]


async def test_clocks_start_and_stop_with_milestones(site):
    """A milestone that stops a clock cancels its timer: nothing escalates after the SIP is called in time."""
    case = await site.call("sara", "POST", CASES, site.opening(send_admission_notice=False), expect=201)
    engine = site.ctx.deadlines
    assert await engine.next_due([KINDS["admission_notice"]]) == site.clock.now + timedelta(hours=24)
    await site.call("sara", "POST", f"{CASES}/{case['id']}/milestones", {"kind": "admission_notice"}, 201)
    assert await engine.next_due([KINDS["admission_notice"]]) is None
    await site.call("sara", "POST", f"{CASES}/{case['id']}/milestones", {"kind": "ready_for_discharge"}, 201)
    assert await engine.next_due([KINDS["sip_call"]]) == site.clock.now + timedelta(days=3)
    await site.call("sara", "POST", f"{CASES}/{case['id']}/milestones", {"kind": "interrupted"}, 201)
    assert await engine.next_due([KINDS["sip_call"], KINDS["payment"]]) is None
    site.clock.advance(hours=1)
    await site.call("sara", "POST", f"{CASES}/{case['id']}/milestones", {"kind": "ready_for_discharge"}, 201)
    assert await engine.next_due([KINDS["sip_call"]]) == site.clock.now + timedelta(days=3)  # restarted
    await site.call("leo", "POST", f"{CASES}/{case['id']}/milestones", {"kind": "sip_called"}, 201)
    assert await engine.next_due([KINDS["sip_call"]]) is None
    site.clock.advance(days=4)
    await engine.fire_due()  # only the payment clock (the patient is still in hospital) is left to fire
    case = await site.call("sara", "GET", f"{CASES}/{case['id']}")
    assert [e["clock"] for e in case["escalations"]] == ["payment"]
    await site.call("sara", "POST", f"{CASES}/{case['id']}/milestones", {"kind": "discharged"}, 201)
    assert await engine.next_due(KINDS.values()) is None


async def test_new_region_rules_move_the_escalation_of_a_running_clock(site, actors):
    """Rules changed while a SIP clock runs: the case shows the new due time, and the escalation follows
    it: not at the old due time (the clock is still running then), but once the new one has passed."""
    _, tokens_admin = await actors.user("dora", roles=["directory_admin"])
    site.tokens["dora"] = tokens_admin
    case = await site.call("sara", "POST", CASES, site.opening(), expect=201)
    await site.call("sara", "POST", f"{CASES}/{case['id']}/milestones", {"kind": "ready_for_discharge"}, 201)
    old_due = datetime.fromisoformat(
        clock_of(await site.call("sara", "GET", f"{CASES}/{case['id']}"), "sip_call")["due_at"]
    )

    region = (await site.call("sara", "GET", f"/api/v1/units/{site.ward}"))["organisation"]["id"]
    rules = await site.call("sara", "GET", f"/api/v1/discharge/rules/{region}")
    looser = {k: rules[k] for k in ("admission_notice_hours", "payment_days", "payment_day_kind", "escalation_minutes")}
    await site.call("sara", "PUT", f"/api/v1/discharge/rules/{region}", {**looser, "sip_call_days": 5}, expect=403)
    await site.call("dora", "PUT", f"/api/v1/discharge/rules/{region}", {**looser, "sip_call_days": 5})

    shown = clock_of(await site.call("sara", "GET", f"{CASES}/{case['id']}"), "sip_call")
    new_due = datetime.fromisoformat(shown["due_at"])
    assert new_due == old_due + timedelta(days=2)
    engine = site.ctx.deadlines
    assert await engine.next_due([KINDS["sip_call"]]) == new_due

    site.clock.now = old_due + timedelta(minutes=1)  # the old rules' due time: the clock still runs
    await engine.fire_due()
    case = await site.call("sara", "GET", f"{CASES}/{case['id']}")
    assert clock_of(case, "sip_call")["state"] == "running"
    assert [e for e in case["escalations"] if e["clock"] == "sip_call"] == []

    site.clock.now = new_due + timedelta(minutes=1)
    await engine.fire_due()
    case = await site.call("sara", "GET", f"{CASES}/{case['id']}")
    assert clock_of(case, "sip_call")["state"] == "missed"
    assert [e["level"] for e in case["escalations"] if e["clock"] == "sip_call"] == [1]
