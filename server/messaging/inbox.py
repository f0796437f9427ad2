"""A unit's inbox: its counts and conversations, what it sent that waits for acknowledgement, whether
it is staffed now, and the coalesced `inbox` push of fresh counts to the unit room."""

from __future__ import annotations

import asyncio
import logging
import uuid

from server.core import policy
from server.core.errors import Forbidden, NotFound
from server.core.principal import Principal
from server.core.realtime import unit_room
from server.messaging import store
from server.messaging.access import Access
from server.messaging.awaiting import awaiting_out
from server.messaging.deps import Deps
from server.messaging.inbox_hours import inbox_hours
from server.messaging.rendering import Renderer
from server.messaging.schemas import AwaitingList, InboxConversation, InboxHours, InboxOut

log = logging.getLogger("brygga.messaging")

INBOX_CHUNK = 20  # units counted and pushed per step of the once-a-second inbox pass
INBOX_PAUSE_SECONDS = 0.01  # at least this between steps
INBOX_SPREAD_SECONDS = 0.6  # and the steps of one pass spread over this much of its second


class Inbox:
    def __init__(self, deps: Deps, access: Access, renderer: Renderer) -> None:
        self.deps = deps
        self.access = access
        self.renderer = renderer
        self._dirty: set[uuid.UUID] = set()
        self.task: asyncio.Task[None] | None = None

    async def inbox_hours(self, unit_id: uuid.UUID) -> InboxHours:
        """For any signed-in writer (directory facts, no conversation data): is the inbox staffed now."""
        async with self.deps.db.transaction() as session:
            if not await store.active_units(session, [unit_id]):
                raise NotFound("unit")
        return await inbox_hours(self.deps.calendar(), unit_id, self.deps.clock())

    async def _require_inbox(self, principal: Principal, unit_id: uuid.UUID) -> None:
        if not policy.allowed(principal, "unit.act_for", unit_id):
            await self.access.audit_denied(principal, "inbox.read", "unit", unit_id)
            raise Forbidden("You can only open the inbox of a unit you belong to.")

    async def inbox(self, principal: Principal, unit_id: uuid.UUID) -> InboxOut:
        await self._require_inbox(principal, unit_id)
        async with self.deps.db.transaction() as session:
            counts = await store.inbox_counts(session, unit_id)
            rows = await store.inbox_conversations(session, unit_id)
        return InboxOut(
            unit_id=unit_id,
            **counts,
            conversations=[
                InboxConversation(
                    conversation_id=c.id,
                    subject=c.subject,
                    case_ref=c.case_ref,
                    last_seq=c.last_seq,
                    unread=int(unread),
                    unacknowledged=int(unacked),
                    escalated=int(escalated),
                )
                for c, unread, unacked, escalated in rows
            ],
        )

    async def awaiting_acknowledgement(self, principal: Principal, unit_id: uuid.UUID) -> AwaitingList:
        """What the unit sent that still waits for acknowledgement ("Väntar på kvittens"), server-sorted."""
        await self._require_inbox(principal, unit_id)
        async with self.deps.db.transaction() as session:
            rows = await store.awaiting_acknowledgement(session, unit_id)
            receipts = [receipt for _, _, open_receipts in rows for receipt in open_receipts]
            users = [message.sender_user_id for message, _, _ in rows] + [r.claimed_by_user_id for r in receipts]
            names = await self.renderer.names(session, users)
            units = await store.unit_names(session, {r.unit_id for r in receipts if r.unit_id is not None})
        return awaiting_out(unit_id, rows, names, units)

    def changed(self, unit_id: uuid.UUID) -> None:
        """Push fresh counts to the unit room soon (coalesced: at most one query per unit per second)."""
        self._dirty.add(unit_id)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._dirty:
            await asyncio.sleep(1.0)  # coalesce: one round of counts per second at most
            dirty, self._dirty = list(self._dirty), set()
            # Small chunks spread over part of the second: one burst of counting and pushing would hold up
            # the sends that arrive meanwhile (seen as a send→deliver latency spike once a second).
            chunks = [dirty[start : start + INBOX_CHUNK] for start in range(0, len(dirty), INBOX_CHUNK)]
            pause = max(INBOX_PAUSE_SECONDS, INBOX_SPREAD_SECONDS / len(chunks))
            for number, chunk in enumerate(chunks):
                if number:
                    await asyncio.sleep(pause)
                try:
                    async with self.deps.db.transaction() as session:
                        counts = await store.inbox_counts_many(session, chunk)
                    for unit_id, values in counts.items():
                        await self.deps.notifier.emit(
                            "inbox", {"unit_id": str(unit_id), **values}, [unit_room(unit_id)]
                        )
                except Exception:
                    log.exception("inbox count failed")
