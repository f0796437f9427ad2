""" "Väntar på kvittens": the sender unit's messages that still wait for acknowledgement, sorted by the server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update

from server.messaging.models import Receipt
from tests.messaging.conftest import unit_conversation


async def send(client, person, conversation_id: str, body: str, **extra) -> dict:
    response = await client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"client_id": str(uuid.uuid4()), "body": body, **extra},
        headers=person.headers,
    )
    assert response.status == 201, await response.text()
    return await response.json()


async def awaiting(client, person, unit_id) -> tuple[int, dict]:
    response = await client.get(f"/api/v1/units/{unit_id}/awaiting-acknowledgement", headers=person.headers)
    return response.status, await response.json()


async def test_sender_unit_sees_what_waits_for_acknowledgement_most_pressing_first(client, ctx, world):
    conversation = await unit_conversation(client, world)
    cid = conversation["id"]
    normal = await send(client, world.anna, cid, "Läkemedelslista bifogas", ack_required=True)
    urgent = await send(client, world.anna, cid, "Utskrivningsklar i dag", priority="urgent")
    escalated = await send(client, world.anna, cid, "Behöver hemtjänst i kväll", priority="urgent")
    await send(client, world.anna, cid, "Bara för kännedom")  # needs no acknowledgement: never listed

    # The escalation engine (tested in test_escalation.py) leaves its level and route on the receipt.
    route = {
        "route_id": None,
        "purpose": "weekend_discharge",
        "channel": "phone",
        "label": "Helg",
        "value": "08-123 45 67",
    }
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Receipt)
            .where(Receipt.message_id == uuid.UUID(escalated["id"]))
            .values(escalated_at=datetime.now(UTC), escalation_level=2, escalation_route=route)
        )

    status, listing = await awaiting(client, world.anna, world.ward)
    assert status == 200
    assert [item["message_id"] for item in listing["items"]] == [escalated["id"], urgent["id"], normal["id"]]
    top = listing["items"][0]
    assert top["subject"] == "Utskrivning 24/11" and top["priority"] == "urgent" and top["escalation_level"] == 2
    assert top["sender"]["id"] == str(world.anna.user_id) and top["sent_at"]
    (recipient,) = top["waiting_for"]
    assert recipient["unit_id"] == str(world.home_care) and recipient["unit_name"]
    assert recipient["escalation_route"]["value"] == "08-123 45 67" and recipient["read_at"] is None

    # Acknowledged → gone from the list; the recipient unit sees nothing of the ward's list.
    acked = await client.post(
        f"/api/v1/conversations/{cid}/messages/{urgent['id']}/acknowledge", headers=world.bertil.headers
    )
    assert acked.status == 200, await acked.text()
    _, listing = await awaiting(client, world.anna, world.ward)
    assert [item["message_id"] for item in listing["items"]] == [escalated["id"], normal["id"]]
    status, problem = await awaiting(client, world.bertil, world.ward)
    assert status == 403 and problem["code"] == "forbidden"


async def test_inbox_hours_say_when_a_closed_unit_opens_and_what_to_use_now(client, world):
    hours = await client.get(f"/api/v1/units/{world.home_care}/inbox-hours", headers=world.anna.headers)
    assert (await hours.json())["open_now"] is True  # no timed secure-message route: always staffed

    stockholm = ZoneInfo("Europe/Stockholm")
    tomorrow = (datetime.now(stockholm) + timedelta(days=1)).date()
    day = tomorrow.isoweekday()
    for route in (
        {"channel": "secure_message", "label": "Inkorg", "value": "Brygga", "purpose": "general",
         "hours": [{"from_day": day, "to_day": day, "from_time": "08:00", "to_time": "16:00"}]},
        {"channel": "phone", "label": "Jour", "value": "08-123 45 67", "purpose": "on_call", "rank": 90,
         "hours": [{"from_day": 1, "to_day": 7, "all_day": True}]},
    ):  # fmt: skip
        created = await client.post(f"/api/v1/units/{world.home_care}/routes", json=route, headers=world.admin.headers)
        assert created.status == 201, await created.text()

    hours = await (await client.get(f"/api/v1/units/{world.home_care}/inbox-hours", headers=world.anna.headers)).json()
    assert hours["open_now"] is False
    opens = datetime.combine(tomorrow, time(8, 0), tzinfo=stockholm)
    assert datetime.fromisoformat(hours["next_opening"]) == opens
    assert [(r["label"], r["value"]) for r in hours["use_now"]] == [("Jour", "08-123 45 67")]

    missing = await client.get(f"/api/v1/units/{uuid.uuid4()}/inbox-hours", headers=world.anna.headers)
    assert missing.status == 404 and (await missing.json())["code"] == "not_found"
