"""Messaging rules behind one facade: conversations, sending (batched, idempotent, ack after commit),
sync, receipts, unit acknowledgement, claim, misdirected return, edits, escalation timers and attachments.

Each part lives in its own module (see docs/development.md); `MessagingService` wires them together
and keeps the public methods that routes, events and other domains call. No aiohttp or socket.io
types here: events reach clients through the `Notifier` the plugin passes in (it emits to the rooms
`unit:<id>` / `user:<id>`), and time comes from the injected clock.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.core.calendar import AlwaysOpen, UnitCalendar
from server.core.db import Database
from server.core.deadlines import DeadlineEngine
from server.core.envelope import Envelope
from server.core.principal import Principal
from server.messaging import keys
from server.messaging.access import Access, rooms_of
from server.messaging.attachments import Attachments
from server.messaging.config import MessagingConfig
from server.messaging.conversations import Conversations
from server.messaging.conversations import check_metadata as check_metadata
from server.messaging.deps import Deps
from server.messaging.escalation import Escalator
from server.messaging.inbox import Inbox
from server.messaging.models import Message
from server.messaging.notifier import Notifier, NullNotifier
from server.messaging.receipts import Receipts
from server.messaging.rendering import Renderer
from server.messaging.rows import NewMessage as NewMessage
from server.messaging.rows import NewReceipt as NewReceipt
from server.messaging.rules import ConversationAccess
from server.messaging.schemas import (
    AttachmentOut,
    AwaitingList,
    ConversationCreate,
    ConversationOut,
    ConversationSearch,
    ConversationSearchQuery,
    InboxHours,
    InboxOut,
    MessageOut,
    MessageSend,
    SyncOut,
    UnitSettingsOut,
)
from server.messaging.sending import Sender
from server.messaging.settings import UnitSettings
from server.messaging.sync import Sync

log = logging.getLogger("brygga.messaging")


class MessagingService:
    def __init__(
        self,
        db: Database,
        envelope: Envelope,
        config: MessagingConfig,
        *,
        clock: Callable[[], datetime],
        deadlines: DeadlineEngine,
        calendar: Callable[[], UnitCalendar] = AlwaysOpen,
        notifier: Notifier | None = None,
    ) -> None:
        self.db = db
        self.envelope = envelope
        self.config = config
        self.clock = clock
        self.calendar = calendar
        self.notifier: Notifier = notifier or NullNotifier()
        self.deps = Deps(db, envelope, config, clock, calendar, self.notifier)
        self.guard = Access(db)
        self.renderer = Renderer(envelope, config)
        self.inboxes = Inbox(self.deps, self.guard, self.renderer)
        self.settings = UnitSettings(self.deps)
        self.escalation = Escalator(self, deadlines)
        self.sender = Sender(self.deps, self.guard, self.renderer, self.inboxes, self.escalation, self.settings)
        self.conversations = Conversations(self.deps, self.guard, self.renderer, self.sender)
        self.receipts = Receipts(self.deps, self.guard, self.renderer, self.inboxes, self.escalation)
        self.syncer = Sync(self.deps, self.guard, self.renderer, self.receipts)
        self.attachments = Attachments(self.deps, self.guard)
        self._worker: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._worker = self.sender.batcher.start(name="messaging-send")

    async def stop(self) -> None:
        tasks = (self._worker, self.inboxes.task)
        for task in tasks:
            if task is not None:
                task.cancel()
        for task in tasks:
            if task is not None:
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                except Exception:  # pragma: no cover - shutdown must not raise
                    log.exception("messaging task failed at shutdown")

    def write_transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        return self.deps.write_transaction()

    # ------------------------------------------------------------------------------ access (access.py)

    async def access(self, conversation_id: uuid.UUID, *, fresh: bool = False) -> ConversationAccess:
        return await self.guard.access(conversation_id, fresh=fresh)

    async def may(self, principal: Principal, action: str, conversation_id: uuid.UUID) -> bool:
        return await self.guard.may(principal, action, conversation_id)

    async def require(self, principal: Principal, action: str, conversation_id: uuid.UUID) -> ConversationAccess:
        return await self.guard.require(principal, action, conversation_id)

    # ------------------------------------------------------------------------------ conversations (conversations.py)

    async def create_conversation(self, principal: Principal, request: ConversationCreate) -> ConversationOut:
        return await self.conversations.create_conversation(principal, request)

    async def open_case_thread(
        self,
        session: AsyncSession,
        principal: Principal,
        *,
        subject: str,
        case_ref: str,
        from_unit_id: uuid.UUID,
        unit_ids: Iterable[uuid.UUID],
    ) -> uuid.UUID:
        return await self.conversations.open_case_thread(
            session, principal, subject=subject, case_ref=case_ref, from_unit_id=from_unit_id, unit_ids=unit_ids
        )

    async def add_thread_units(
        self, session: AsyncSession, conversation_id: uuid.UUID, unit_ids: Iterable[uuid.UUID]
    ) -> None:
        await self.conversations.add_thread_units(session, conversation_id, unit_ids)

    async def add_units(
        self, principal: Principal, conversation_id: uuid.UUID, unit_ids: list[uuid.UUID]
    ) -> ConversationOut:
        return await self.conversations.add_units(principal, conversation_id, unit_ids)

    async def acknowledgements(
        self, session: AsyncSession, message_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, dict[uuid.UUID, datetime | None]]:
        return await self.conversations.acknowledgements(session, message_ids)

    async def list_conversations(
        self, principal: Principal, unit_id: uuid.UUID | None, preview: bool = False
    ) -> list[ConversationOut]:
        return await self.conversations.list_conversations(principal, unit_id, preview)

    async def search_conversations(self, principal: Principal, query: ConversationSearchQuery) -> ConversationSearch:
        return await self.conversations.search_conversations(principal, query)

    async def get_conversation(self, principal: Principal, conversation_id: uuid.UUID) -> ConversationOut:
        return await self.conversations.get_conversation(principal, conversation_id)

    async def conversation_of(self, message_id: uuid.UUID) -> uuid.UUID | None:
        return await self.conversations.conversation_of(message_id)

    async def list_messages(
        self, principal: Principal, conversation_id: uuid.UUID, before_seq: int | None, limit: int
    ) -> list[MessageOut]:
        return await self.conversations.list_messages(principal, conversation_id, before_seq, limit)

    async def render(
        self,
        session: AsyncSession,
        messages: list[Message],
        viewer: Principal | None = None,
        event_seqs: dict[uuid.UUID, int] | None = None,
    ) -> list[MessageOut]:
        return await self.renderer.render(session, messages, viewer, event_seqs)

    # ------------------------------------------------------------------------------ sending (sending.py)

    async def send(
        self, principal: Principal, request: MessageSend, origin: str | None = None
    ) -> tuple[MessageOut, bool]:
        return await self.sender.send(principal, request, origin)

    async def post_system_notice(
        self,
        session: AsyncSession,
        conversation_id: uuid.UUID,
        kind: str,
        data: dict[str, Any],
        *,
        sender: Principal | None = None,
        sender_unit_id: uuid.UUID | None = None,
        ack_unit_ids: Iterable[uuid.UUID] = (),
    ) -> uuid.UUID:
        return await self.sender.post_system_notice(
            session,
            conversation_id,
            kind,
            data,
            sender=sender,
            sender_unit_id=sender_unit_id,
            ack_unit_ids=ack_unit_ids,
        )

    async def sync(self, principal: Principal, since: int, limit: int | None = None) -> SyncOut:
        return await self.syncer.sync(principal, since, limit)

    async def typing(self, principal: Principal, conversation_id: uuid.UUID, typing: bool) -> None:
        access = await self.guard.require(principal, "conversation.post", conversation_id)
        await self.notifier.emit(
            "typing",
            {
                "conversation_id": str(conversation_id),
                "user": {"id": str(principal.user_id), "name": principal.display_name},
                "typing": typing,
            },
            rooms_of(access),
        )

    # ------------------------------------------------------------------------------ receipts (receipts.py)

    async def mark_read(self, principal: Principal, conversation_id: uuid.UUID, up_to: int) -> int:
        return await self.receipts.mark_read(principal, conversation_id, up_to)

    async def acknowledge(self, principal: Principal, message_id: uuid.UUID) -> MessageOut:
        return await self.receipts.acknowledge(principal, message_id)

    async def claim(self, principal: Principal, message_id: uuid.UUID, release: bool = False) -> MessageOut:
        return await self.receipts.claim(principal, message_id, release)

    async def return_misdirected(self, principal: Principal, message_id: uuid.UUID, reason: str) -> MessageOut:
        return await self.receipts.return_misdirected(principal, message_id, reason)

    async def edit(self, principal: Principal, message_id: uuid.UUID, body: str | None) -> MessageOut:
        return await self.receipts.edit(principal, message_id, body)

    async def revisions(self, principal: Principal, message_id: uuid.UUID) -> list[tuple[int, str, datetime, str]]:
        return await self.receipts.revisions(principal, message_id)

    # ------------------------------------------------------------------------------ inbox (inbox.py)

    async def inbox_hours(self, unit_id: uuid.UUID) -> InboxHours:
        return await self.inboxes.inbox_hours(unit_id)

    async def inbox(self, principal: Principal, unit_id: uuid.UUID) -> InboxOut:
        return await self.inboxes.inbox(principal, unit_id)

    async def awaiting_acknowledgement(self, principal: Principal, unit_id: uuid.UUID) -> AwaitingList:
        return await self.inboxes.awaiting_acknowledgement(principal, unit_id)

    def inbox_changed(self, unit_id: uuid.UUID) -> None:
        self.inboxes.changed(unit_id)

    # ------------------------------------------------------------------------------ unit settings (settings.py)

    async def deadline_minutes(self, unit_id: uuid.UUID, priority: str) -> int:
        return await self.settings.deadline_minutes(unit_id, priority)

    async def get_unit_settings(self, principal: Principal, unit_id: uuid.UUID) -> UnitSettingsOut:
        return await self.settings.get_unit_settings(principal, unit_id)

    async def set_unit_settings(
        self, principal: Principal, unit_id: uuid.UUID, urgent: int, normal: int
    ) -> UnitSettingsOut:
        return await self.settings.set_unit_settings(principal, unit_id, urgent, normal)

    # ------------------------------------------------------------------------------ escalation (escalation.py)

    @property
    def wake(self) -> asyncio.Event:
        """Set to make the deadline engine, which fires escalation timers, look for due timers now."""
        return self.escalation.deadlines.wake

    async def next_due(self) -> datetime | None:
        """When the next escalation timer falls due."""
        return await self.escalation.next_due()

    # ------------------------------------------------------------------------------ attachments (attachments.py)

    async def upload(
        self,
        principal: Principal,
        conversation_id: uuid.UUID,
        content_type: str,
        filename: str,
        chunks: AsyncIterator[bytes],
        max_bytes: int,
    ) -> AttachmentOut:
        return await self.attachments.upload(principal, conversation_id, content_type, filename, chunks, max_bytes)

    async def open_attachment(
        self, principal: Principal, conversation_id: uuid.UUID, attachment_id: uuid.UUID, ip: str | None = None
    ) -> tuple[AttachmentOut, AsyncIterator[bytes]]:
        return await self.attachments.open_attachment(principal, conversation_id, attachment_id, ip)

    # ------------------------------------------------------------------------------ key rotation (keys.py)

    async def rewrap_batch(self, envelope: Envelope, batch_size: int) -> int:
        return await keys.rewrap_batch(self.db, envelope, batch_size)
