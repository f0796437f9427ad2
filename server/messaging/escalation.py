"""Escalation on the core deadline engine (server/core/deadlines.py): one `messaging.escalation` timer
per unit receipt that must be acknowledged (reference: the receipt id; due after the unit's deadline
in open time of its calendar), cancelled when the unit acknowledges or returns the message. Firing one
marks the receipt, queues the next level, adds a feed event and an audit row, and after the commit
sends `escalation` and `message:updated`."""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.service import record
from server.core.calendar import RouteRef, UnitCalendar
from server.core.deadlines import AfterCommit, DeadlineEngine, DeadlineKind, Timer
from server.core.models import Deadline
from server.core.realtime import unit_room, user_room
from server.messaging import store
from server.messaging.access import rooms_of
from server.messaging.models import FeedEvent, Message, Receipt
from server.messaging.notifier import Notifier
from server.messaging.rows import NewReceipt
from server.messaging.rules import ConversationAccess
from server.messaging.schemas import EscalationEvent, EscalationRouteOut, MessageOut

log = logging.getLogger("brygga.messaging")

ESCALATION = DeadlineKind("messaging.escalation")


class EscalationHost(Protocol):
    """What escalation needs from the messaging service."""

    calendar: Callable[[], UnitCalendar]
    notifier: Notifier

    def write_transaction(self) -> AbstractAsyncContextManager[AsyncSession]: ...

    async def render(self, session: AsyncSession, messages: list[Message]) -> list[MessageOut]: ...

    async def access(self, conversation_id: uuid.UUID, *, fresh: bool = False) -> ConversationAccess: ...

    async def deadline_minutes(self, unit_id: uuid.UUID, priority: str) -> int: ...

    def inbox_changed(self, unit_id: uuid.UUID) -> None: ...


def route_out(route: RouteRef | None) -> dict[str, Any] | None:
    if route is None:
        return None
    return {
        "route_id": str(route.route_id) if route.route_id else None,
        "purpose": route.purpose,
        "channel": route.channel,
        "label": route.label,
        "value": route.value,
    }


class Escalator:
    def __init__(self, host: EscalationHost, deadlines: DeadlineEngine) -> None:
        self.host = host
        self.deadlines = deadlines

    def register(self) -> None:
        """Fire escalation timers here, in a writer transaction that holds the feed lock (as sends do)."""
        self.deadlines.register(ESCALATION, self.fire, transaction=self.transaction)

    async def due_at(self, unit_id: uuid.UUID, start: datetime, minutes: int) -> datetime:
        """`minutes` of the unit's open time after `start` (per the directory calendar)."""
        return await self.deadlines.due_after_open(unit_id, start, timedelta(minutes=minutes))

    @staticmethod
    def first_timers(receipts: Iterable[NewReceipt], due: dict[uuid.UUID, datetime]) -> list[Timer]:
        """Level 1 for each unit receipt whose unit has a due time (`Sender` schedules them with the send)."""
        return [Timer(ESCALATION, r.id, due[r.unit_id], unit_id=r.unit_id) for r in receipts if r.unit_id in due]

    async def cancel(self, session: AsyncSession, receipt_ids: Iterable[uuid.UUID]) -> None:
        await self.deadlines.cancel(session, [ESCALATION], receipt_ids)

    async def next_due(self) -> datetime | None:
        return await self.deadlines.next_due([ESCALATION])

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.host.write_transaction() as session:
            await store.lock_feed(session)
            yield session

    async def fire(self, session: AsyncSession, deadline: Deadline, now: datetime) -> AfterCommit | None:
        host = self.host
        receipt = await session.get(Receipt, uuid.UUID(deadline.reference))
        message = await session.get(Message, receipt.message_id) if receipt is not None else None
        if (
            receipt is None
            or message is None
            or receipt.unit_id is None
            or receipt.acknowledged_at
            or receipt.returned_at
        ):
            deadline.state = "cancelled"
            return None
        unit_id, level = receipt.unit_id, deadline.level
        routes = await host.calendar().escalation_routes(unit_id, now)
        index = level - 1
        route = routes[index] if index < len(routes) else (routes[-1] if routes else None)
        receipt.escalated_at = receipt.escalated_at or now
        receipt.escalation_level = level
        receipt.escalation_route = route_out(route)
        if level < len(routes):
            minutes = await host.deadline_minutes(unit_id, message.priority)
            await self.deadlines.schedule(
                session,
                [Timer(ESCALATION, receipt.id, now + timedelta(minutes=minutes), unit_id=unit_id, level=level + 1)],
            )
        session.add(
            FeedEvent(conversation_id=message.conversation_id, message_id=message.id, kind="escalation", at=now)
        )
        await record(
            session,
            actor=None,
            action="message.escalate",
            object_type="message",
            object_id=message.id,
            unit_id=unit_id,
            details={"level": level, "route_purpose": route.purpose if route else None},
        )
        out = (await host.render(session, [message]))[0]
        access = await host.access(message.conversation_id)
        payload = EscalationEvent(
            message_id=message.id,
            conversation_id=message.conversation_id,
            unit_id=unit_id,
            level=level,
            route=EscalationRouteOut.model_validate(route_out(route)) if route else None,
            at=now,
        ).model_dump(mode="json")
        sender_rooms = [user_room(message.sender_user_id)] if message.sender_user_id else []
        if message.sender_unit_id:
            sender_rooms.append(unit_room(message.sender_unit_id))
        sender_unit_id = message.sender_unit_id

        async def announce() -> None:
            await host.notifier.emit("escalation", payload, [*sender_rooms, unit_room(unit_id)])
            await host.notifier.emit("message:updated", out.model_dump(mode="json"), rooms_of(access))
            host.inbox_changed(unit_id)
            if sender_unit_id:
                host.inbox_changed(sender_unit_id)
            log.info("message escalated", extra={"message_id": str(out.id), "level": level})

        return announce
