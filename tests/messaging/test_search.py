"""Search (issue 16 item 4): conversations by case reference (exact, through the keyed blind index), subject
(opened in the service, only among conversations the caller may read), unit and date; the meetings of a case."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from server.core.models import AuditEvent
from server.messaging import conversations as messaging_conversations
from tests.conftest import bearer

SEARCH = "/api/v1/conversations/search"
REF = "SÖS-2026-0042"


async def start(client, token, subject, from_unit, to_unit, case_ref=None) -> str:
    body = {"subject": subject, "from_unit_id": str(from_unit), "unit_ids": [str(to_unit)], "case_ref": case_ref}
    response = await client.post("/api/v1/conversations", json=body, headers=bearer(token))
    assert response.status == 201, await response.text()
    return str((await response.json())["id"])


async def search(client, token, **params) -> dict:
    response = await client.get(SEARCH, params={k: str(v) for k, v in params.items()}, headers=bearer(token))
    assert response.status == 200, await response.text()
    return await response.json()


def ids(result: dict) -> set[str]:
    return {item["id"] for item in result["items"]}


async def test_search_by_case_reference_subject_unit_and_date(client, ctx, actors, monkeypatch):
    ward = await actors.unit("Avdelning 52")
    home = await actors.unit("Hemtjänst Söder", org_kind="municipality")
    other = await actors.unit("Vårdcentral Norr")
    far = await actors.unit("Hemtjänst Norr", org_kind="municipality")
    _, nurse = await actors.user("nurse", units={ward: "member"})
    _, officer = await actors.user("officer", units={home: "member"})
    _, outsider = await actors.user("outsider", units={other: "member"})
    case_thread = await start(client, nurse, "Utskrivning fredag", ward, home, REF)
    medicines = await start(client, nurse, "Läkemedelslista", ward, home)
    # Someone else's conversation about the same case reference stays invisible to the ward.
    foreign = await start(client, outsider, "Utskrivning fredag", other, far, REF)

    # Case reference: exact, whatever the case and spaces; only conversations the caller takes part in.
    assert ids(await search(client, nurse, case_ref="sös-2026-0042 ")) == {case_thread}
    assert ids(await search(client, officer, case_ref=REF)) == {case_thread}
    assert ids(await search(client, outsider, case_ref=REF)) == {foreign}
    assert ids(await search(client, nurse, case_ref="SÖS-2026-004")) == set()  # no prefix matches
    found = (await search(client, nurse, case_ref=REF))["items"][0]
    assert (found["subject"], found["case_ref"]) == ("Utskrivning fredag", REF)
    # Subject: part of it, any case; the search opened the subjects of the ward's two conversations only.
    by_subject = await search(client, nurse, q="LÄKEMEDEL")
    assert ids(by_subject) == {medicines} and by_subject["scanned"] == 2 and by_subject["complete"]
    assert ids(await search(client, outsider, q="läkemedel")) == set()
    # Unit and date.
    assert ids(await search(client, nurse, unit_id=home)) == {case_thread, medicines}
    assert ids(await search(client, nurse, unit_id=far)) == set()
    today = datetime.now(UTC).date()
    assert ids(await search(client, nurse, since=today, until=today)) == {case_thread, medicines}
    assert ids(await search(client, nurse, since=today + timedelta(days=1))) == set()
    assert ids(await search(client, nurse, until=today - timedelta(days=1))) == set()

    # A bounded subject search says so: only the newest are opened.
    monkeypatch.setattr(messaging_conversations, "SUBJECT_SCAN", 1)
    bounded = await search(client, nurse, q="fredag")
    assert bounded["scanned"] == 1 and not bounded["complete"]
    assert ids(bounded) <= {case_thread}

    # Each search is in the access log, with the case reference (never the subject text).
    async with ctx.db.transaction() as session:
        rows = (await session.execute(select(AuditEvent).where(AuditEvent.action == "conversation.search"))).scalars()
        logged = [(row.case_ref, row.details) for row in rows]
    assert (REF, {"filters": ["case_ref"], "hits": 1}) in logged
    assert all("LÄKEMEDEL" not in str(details) for _, details in logged)


async def test_a_case_reference_shows_the_meetings_of_its_conversations(client, actors):
    ward = await actors.unit("Avdelning 52")
    home = await actors.unit("Hemtjänst Söder", org_kind="municipality")
    other = await actors.unit("Vårdcentral Norr")
    _, nurse = await actors.user("nurse", units={ward: "member"})
    _, outsider = await actors.user("outsider", units={other: "member"})
    thread = await start(client, nurse, "Utskrivning fredag", ward, home, REF)
    booked = []
    for hours in (48, 2):
        body = {"title": f"SIP om {hours} h", "starts_at": (datetime.now(UTC) + timedelta(hours=hours)).isoformat(),
                "invited_unit_ids": [str(home)], "conversation_id": thread}  # fmt: skip
        response = await client.post("/api/v1/meetings", json=body, headers=bearer(nurse))
        assert response.status == 201, await response.text()
        booked.append((await response.json())["id"])
    hits = await search(client, nurse, case_ref=REF)
    assert ids(hits) == {thread}
    listed = await client.get("/api/v1/meetings", params={"conversation_id": thread}, headers=bearer(nurse))
    assert [m["id"] for m in (await listed.json())["items"]] == booked[::-1]  # earliest first
    hidden = await client.get("/api/v1/meetings", params={"conversation_id": thread}, headers=bearer(outsider))
    assert (await hidden.json())["items"] == []
