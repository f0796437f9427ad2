"""Unit acknowledgement deadlines count only open hours, escalate along contact routes, survive restarts."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.core.calendar import RouteRef
from server.core.context import CTX
from server.messaging.events import MESSAGING
from tests.messaging.conftest import unit_conversation

FRIDAY_1550 = datetime(2026, 11, 27, 15, 50, tzinfo=UTC)  # a Friday


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class OfficeHours:
    """A UnitCalendar: inbox staffed Mon-Fri 08-16 UTC; a weekend route, then the on-call route."""

    def __init__(self) -> None:
        self.routes = [
            RouteRef(uuid.uuid4(), "weekend_discharge", "phone", "Helgsamordnare", "08-123 45 67"),
            RouteRef(uuid.uuid4(), "on_call", "phone", "Jourhavande sjuksköterska", "08-765 43 21"),
        ]

    async def open_intervals(self, unit_id, start, end):
        intervals = []
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        while day < end:
            if day.weekday() < 5:
                opens, closes = day.replace(hour=8), day.replace(hour=16)
                opens, closes = max(opens, start), min(closes, end)
                if closes > opens:
                    intervals.append((opens, closes))
            day += timedelta(days=1)
        return intervals

    async def escalation_routes(self, unit_id, at):
        return list(self.routes)


async def settle(listener, event, predicate, service, timeout=3.0):
    service.wake.set()
    return await listener.wait_for(event, predicate, timeout=timeout)


async def test_urgent_message_escalates_after_30_open_minutes_skipping_the_weekend(client, ctx, world, connect):
    clock = FakeClock(FRIDAY_1550)
    ctx.clock = clock
    ctx.calendar = OfficeHours()
    service = ctx.need(MESSAGING)
    conversation = await unit_conversation(client, world)
    anna = await connect(world.anna)
    bertil = await connect(world.bertil)
    sent = await anna.call(
        "message:send",
        {
            "conversation_id": conversation["id"],
            "client_id": str(uuid.uuid4()),
            "body": "Utskrivningsklar, behöver insats i helgen",
            "priority": "urgent",
        },
    )
    assert sent["ok"] is True and sent["message"]["state"] == "open"
    assert await service.next_due() == datetime(2026, 11, 30, 8, 20, tzinfo=UTC)  # 10 min Friday + 20 min Monday

    for moment in (datetime(2026, 11, 28, 12, 0, tzinfo=UTC), datetime(2026, 11, 30, 8, 19, tzinfo=UTC)):
        clock.now = moment
        service.wake.set()
        await asyncio.sleep(0.3)
        assert anna.events["escalation"] == []

    clock.now = datetime(2026, 11, 30, 8, 21, tzinfo=UTC)
    escalation = await settle(anna, "escalation", lambda e: e["message_id"] == sent["message"]["id"], service)
    assert escalation["unit_id"] == str(world.home_care) and escalation["level"] == 1
    assert escalation["route"]["purpose"] == "weekend_discharge" and escalation["route"]["value"] == "08-123 45 67"
    await bertil.wait_for("escalation", lambda e: e["message_id"] == sent["message"]["id"])
    updated = await anna.wait_for("message:updated", lambda m: m["state"] == "escalated")
    assert updated["recipients"][0]["escalation_route"]["label"] == "Helgsamordnare"

    # flagged in both inboxes
    recipient_inbox = await (
        await client.get(f"/api/v1/units/{world.home_care}/inbox", headers=world.bertil.headers)
    ).json()
    assert recipient_inbox["escalated"] == 1 and recipient_inbox["unacknowledged"] == 1
    sender_inbox = await (await client.get(f"/api/v1/units/{world.ward}/inbox", headers=world.anna.headers)).json()
    assert sender_inbox["escalated_sent"] == 1

    # still nobody: the next tier (on-call) after another 30 minutes
    clock.now += timedelta(minutes=31)
    second = await settle(anna, "escalation", lambda e: e["level"] == 2, service)
    assert second["route"]["purpose"] == "on_call"

    # acknowledging stops the clock and clears the flag
    acked = await bertil.call("message:acknowledge", {"message_id": sent["message"]["id"]})
    assert acked["ok"] is True and acked["message"]["state"] == "acknowledged"
    assert await service.next_due() is None
    recipient_inbox = await (
        await client.get(f"/api/v1/units/{world.home_care}/inbox", headers=world.bertil.headers)
    ).json()
    assert recipient_inbox["escalated"] == 0 and recipient_inbox["unacknowledged"] == 0


async def test_acknowledged_in_time_never_escalates(client, ctx, world, connect):
    clock = FakeClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    ctx.clock = clock
    ctx.calendar = OfficeHours()
    service = ctx.need(MESSAGING)
    conversation = await unit_conversation(client, world)
    anna = await connect(world.anna)
    bertil = await connect(world.bertil)
    sent = await anna.call(
        "message:send",
        {
            "conversation_id": conversation["id"],
            "client_id": str(uuid.uuid4()),
            "body": "Kvittera gärna",
            "ack_required": True,
        },
    )
    assert await service.next_due() == datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # normal: 4 open hours
    clock.now = datetime(2026, 11, 24, 12, 59, tzinfo=UTC)
    assert (await bertil.call("message:acknowledge", {"message_id": sent["message"]["id"]}))["ok"] is True
    clock.now = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    service.wake.set()
    await asyncio.sleep(0.3)
    assert anna.events["escalation"] == []


async def test_unit_deadline_is_configurable_by_unit_admin(client, ctx, world):
    put = await client.put(
        f"/api/v1/units/{world.home_care}/messaging-settings",
        json={"urgent_minutes": 10, "normal_minutes": 60},
        headers=world.admin.headers,
    )
    assert put.status == 200
    refused = await client.put(
        f"/api/v1/units/{world.home_care}/messaging-settings",
        json={"urgent_minutes": 10, "normal_minutes": 60},
        headers=world.bertil.headers,
    )
    assert refused.status == 403
    ctx.clock = FakeClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    conversation = await unit_conversation(client, world)
    response = await client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        headers=world.anna.headers,
        json={"client_id": str(uuid.uuid4()), "body": "Bråttom", "priority": "urgent"},
    )
    assert response.status == 201
    assert await ctx.need(MESSAGING).next_due() == datetime(2026, 11, 24, 9, 10, tzinfo=UTC)


async def test_escalation_timer_survives_a_restart(migrated, actors, client, ctx, world):
    """Send, stop the server, move time past the deadline, start a new server on the same database."""
    clock = FakeClock(FRIDAY_1550)
    ctx.clock = clock
    ctx.calendar = OfficeHours()
    conversation = await unit_conversation(client, world)
    response = await client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        headers=world.anna.headers,
        json={"client_id": str(uuid.uuid4()), "body": "Akut", "priority": "urgent"},
    )
    message_id = (await response.json())["id"]
    await client.close()  # the first server is gone; only the database remembers the timer

    app = create_app(migrated)
    later = app[CTX]
    later.clock = FakeClock(datetime(2026, 11, 30, 8, 25, tzinfo=UTC))
    later.calendar = OfficeHours()
    async with TestClient(TestServer(app)) as restarted:
        for _ in range(50):
            listed = await restarted.get(
                f"/api/v1/conversations/{conversation['id']}/messages", headers=world.anna.headers
            )
            message = (await listed.json())["items"][0]
            if message["state"] == "escalated":
                break
            await asyncio.sleep(0.1)
        assert message["id"] == message_id and message["state"] == "escalated"
        assert message["recipients"][0]["escalation_route"]["purpose"] == "weekend_discharge"
        synced = await restarted.get("/api/v1/conversations/sync?since=0", headers=world.anna.headers)
        assert any(m["state"] == "escalated" for m in (await synced.json())["messages"])
