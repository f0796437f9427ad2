"""Messaging rules: conversations, sending (batched, idempotent, ack after commit), sync, receipts,
unit acknowledgement, claim, misdirected return, edits, escalation timers and attachments.

No aiohttp or socket.io types here: events reach clients through the `Notifier` the plugin passes
in (it emits to the rooms `unit:<id>` / `user:<id>`), and time comes from the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.service import record
from server.core.calendar import AlwaysOpen, RouteRef, UnitCalendar
from server.core.db import Database
from server.core.envelope import CHUNK_SIZE, ChunkCipher, Envelope, Sealed, associated_data
from server.core.errors import Conflict, Forbidden, NotFound, Problem
from server.core.realtime import unit_room, user_room
from server.identity import policy
from server.identity.principal import Principal
from server.messaging import store
from server.messaging.config import MessagingConfig
from server.messaging.models import (
    Attachment,
    AttachmentChunk,
    Conversation,
    Escalation,
    FeedEvent,
    Message,
    MessageRevision,
    Participant,
    Receipt,
    UnitMessagingSettings,
)
from server.messaging.pii import looks_like_personal_number
from server.messaging.rules import ConversationAccess, RecipientRef
from server.messaging.schemas import (
    AttachmentOut,
    ConversationCreate,
    ConversationOut,
    EscalationEvent,
    EscalationRouteOut,
    InboxConversation,
    InboxOut,
    MessageOut,
    MessageSend,
    ParticipantOut,
    ReceiptEvent,
    RecipientState,
    SyncOut,
    SystemNotice,
    UnitSettingsOut,
    UserRef,
)

log = logging.getLogger("brygga.messaging")

SYSTEM_CLIENT_NAMESPACE = uuid.UUID("6d1c3c1e-8f0a-4a55-9d51-6272796767a1")
INBOX_CHUNK = 20  # units counted and pushed per step of the once-a-second inbox pass
INBOX_PAUSE_SECONDS = 0.01  # at least this between steps
INBOX_SPREAD_SECONDS = 0.6  # and the steps of one pass spread over this much of its second


class Notifier(Protocol):
    async def emit(self, event: str, data: dict[str, Any], rooms: list[str], skip: str | None = None) -> None:
        """Send to everybody in `rooms` except the connection `skip` (which already has the data)."""


class NullNotifier:
    async def emit(self, event: str, data: dict[str, Any], rooms: list[str], skip: str | None = None) -> None:
        return None


def access_of(conversation_id: uuid.UUID, participants: list[Participant]) -> ConversationAccess:
    return ConversationAccess(
        conversation_id,
        frozenset(p.unit_id for p in participants if p.unit_id is not None),
        frozenset(p.user_id for p in participants if p.user_id is not None),
    )


def rooms_of(access: ConversationAccess) -> list[str]:
    return [unit_room(unit_id) for unit_id in sorted(access.unit_ids)] + [
        user_room(user_id) for user_id in sorted(access.user_ids)
    ]


def body_aad(message: AnyMessage) -> bytes:
    return associated_data("messages", message.id, message.conversation_id, message.version)


def revision_aad(revision: MessageRevision, conversation_id: uuid.UUID) -> bytes:
    return associated_data("message_revisions", revision.id, conversation_id, revision.version)


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


def check_metadata(subject: str, case_ref: str | None) -> None:
    for name, value in (("subject", subject), ("case_ref", case_ref or "")):
        if looks_like_personal_number(value):
            raise Problem(
                "personal_number_not_allowed",
                f"The {name} looks like it contains a personal identity number. Use a pseudonymous case "
                "reference instead, and write patient details only in the message text.",
                status=422,
            )


@dataclass
class NewMessage:
    """A message row being created: the columns of `Message` without ORM instrumentation.

    Sending builds thousands of these per second; a mapped instance costs several times more CPU
    than the database insert of its row. `vars()` of one is the row for a Core executemany.
    """

    id: uuid.UUID
    conversation_id: uuid.UUID
    seq: int
    sender_user_id: uuid.UUID | None
    sender_unit_id: uuid.UUID | None
    client_id: uuid.UUID
    kind: str
    system_kind: str | None
    priority: str
    ack_required: bool
    reply_to_id: uuid.UUID | None
    attachment_ids: list[str]
    created_at: datetime
    version: int = 1
    body_kek: str = ""
    body_enc: bytes = b""
    edited_at: datetime | None = None
    retracted_at: datetime | None = None


@dataclass
class NewReceipt:
    """A receipt row being created (see `NewMessage`): nothing delivered, read or acknowledged yet."""

    id: uuid.UUID
    message_id: uuid.UUID
    conversation_id: uuid.UUID
    unit_id: uuid.UUID | None
    user_id: uuid.UUID | None
    needs_ack: bool
    escalation_level: int = 0
    delivered_at: datetime | None = None
    read_at: datetime | None = None
    read_by_user_id: uuid.UUID | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by_user_id: uuid.UUID | None = None
    claimed_at: datetime | None = None
    claimed_by_user_id: uuid.UUID | None = None
    returned_at: datetime | None = None
    returned_by_user_id: uuid.UUID | None = None
    escalated_at: datetime | None = None
    escalation_route: dict[str, Any] | None = None


AnyMessage = Message | NewMessage
AnyReceipt = Receipt | NewReceipt


@dataclass
class _Send:
    principal: Principal
    request: MessageSend
    access: ConversationAccess
    sender_unit_id: uuid.UUID | None
    recipients: list[RecipientRef]
    due: dict[uuid.UUID, datetime]  # recipient unit -> escalation due time
    origin: str | None  # the connection that sent it: it gets the message in its ack, not as message:new
    future: asyncio.Future[tuple[MessageOut, bool]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass
class _Loaded:
    messages: list[Message]
    receipts: dict[uuid.UUID, list[Receipt]]
    attachments: dict[uuid.UUID, list[Attachment]]
    names: dict[uuid.UUID, str]


class MessagingService:
    def __init__(
        self,
        db: Database,
        envelope: Envelope,
        config: MessagingConfig,
        *,
        clock: Callable[[], datetime],
        calendar: Callable[[], UnitCalendar] = AlwaysOpen,
        notifier: Notifier | None = None,
    ) -> None:
        self.db = db
        self.envelope = envelope
        self.config = config
        self.clock = clock
        self.calendar = calendar
        self.notifier: Notifier = notifier or NullNotifier()
        self._access: dict[uuid.UUID, ConversationAccess] = {}
        self._loading: dict[uuid.UUID, asyncio.Task[ConversationAccess]] = {}
        self._names: dict[uuid.UUID, str] = {}
        self._queue: asyncio.Queue[_Send] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._inbox_dirty: set[uuid.UUID] = set()
        self._inbox_task: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None
        # Multi-node: the plugin points this at the `messaging-escalations` lease, so only its holder fires.
        self.may_escalate: Callable[[], bool] = lambda: True
        self._stopping = False
        self._upload_slots = asyncio.Semaphore(4)
        self._write_gate = asyncio.Lock()
        self._sync_slots = asyncio.Semaphore(4)  # leave pooled connections for sends and logins

    # ------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._send_worker(), name="messaging-send")
        self._scheduler = asyncio.create_task(self._scheduler_loop(), name="messaging-escalation")

    async def stop(self) -> None:
        self._stopping = True
        self.wake.set()
        for task in (self._worker, self._scheduler, self._inbox_task):
            if task is not None:
                task.cancel()
        for task in (self._worker, self._scheduler, self._inbox_task):
            if task is not None:
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                except Exception:  # pragma: no cover - shutdown must not raise
                    log.exception("messaging task failed at shutdown")

    @contextlib.asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[AsyncSession]:
        """A transaction that writes. On SQLite (one writer at a time) this node's writers queue here
        instead of busy-waiting inside SQLite while holding pooled connections."""
        if not self.db.is_sqlite:
            async with self.db.transaction() as session:
                yield session
            return
        async with self._write_gate, self.db.transaction() as session:
            yield session

    # ------------------------------------------------------------------------------ access

    async def access(self, conversation_id: uuid.UUID, *, fresh: bool = False) -> ConversationAccess:
        """Participants of a conversation, cached; concurrent misses share one query."""
        cached = None if fresh else self._access.get(conversation_id)
        if cached is not None:
            return cached
        loading = self._loading.get(conversation_id)
        if loading is None:
            loading = asyncio.get_running_loop().create_task(self._load_access(conversation_id))
            self._loading[conversation_id] = loading
            loading.add_done_callback(lambda _task: self._loading.pop(conversation_id, None))
        return await asyncio.shield(loading)

    async def _load_access(self, conversation_id: uuid.UUID) -> ConversationAccess:
        async with self.db.transaction() as session:
            participants = await store.participants(session, conversation_id)
        if not participants:
            raise NotFound("conversation")
        access = access_of(conversation_id, participants)
        if len(self._access) > 50_000:
            self._access.clear()
        self._access[conversation_id] = access
        return access

    async def may(self, principal: Principal, action: str, conversation_id: uuid.UUID) -> bool:
        """Whether `action` is allowed, to decide what a page offers; nothing is read, so nothing is audited."""
        try:
            return policy.allowed(principal, action, await self.access(conversation_id))
        except NotFound:
            return False

    async def require(self, principal: Principal, action: str, conversation_id: uuid.UUID) -> ConversationAccess:
        """The conversation's access if allowed; otherwise an audited denial and 404 (no existence leak)."""
        try:
            access = await self.access(conversation_id)
        except NotFound:
            await self._audit_denied(principal, action, "conversation", conversation_id)
            raise
        if not policy.allowed(principal, action, access):
            access = await self.access(conversation_id, fresh=True)  # participants may have been added
            if not policy.allowed(principal, action, access):
                await self._audit_denied(principal, action, "conversation", conversation_id)
                raise NotFound("conversation")
        return access

    async def _audit_denied(self, principal: Principal, action: str, object_type: str, object_id: object) -> None:
        async with self.db.transaction() as session:
            await record(
                session,
                actor=principal,
                action=action,
                object_type=object_type,
                object_id=str(object_id),
                outcome="denied",
            )

    def acting_unit(self, principal: Principal, access: ConversationAccess) -> uuid.UUID | None:
        if principal.user_id in access.user_ids:
            return None
        mine = sorted(access.unit_ids & principal.unit_ids)
        return mine[0] if mine else None

    # ------------------------------------------------------------------------------ conversations

    async def create_conversation(self, principal: Principal, request: ConversationCreate) -> ConversationOut:
        check_metadata(request.subject, request.case_ref)
        policy.require(
            principal,
            "conversation.create",
            request.from_unit_id,
            detail="You can only start a conversation for a unit you belong to.",
        )
        unit_ids = set(request.unit_ids)
        user_ids = set(request.user_ids)
        if request.from_unit_id is not None:
            unit_ids.add(request.from_unit_id)
        elif unit_ids:
            raise Problem("from_unit_required", "Say which of your units writes (from_unit_id) to address units.")
        else:
            user_ids.add(principal.user_id)
        if len(unit_ids) + len(user_ids) < 2:
            raise Problem("too_few_participants", "Add at least one recipient unit or person.", status=422)
        async with self.write_transaction() as session:
            missing_units = unit_ids - await store.active_units(session, unit_ids)
            missing_users = user_ids - await store.active_users(session, user_ids)
            if missing_units or missing_users:
                raise Problem(
                    "unknown_participant", "A recipient unit or person does not exist or is inactive.", status=422
                )
            conversation = Conversation(
                id=uuid.uuid4(),
                kind="units" if unit_ids else "direct",
                subject=request.subject.strip(),
                case_ref=request.case_ref,
                created_by_user_id=principal.user_id,
                created_by_unit_id=request.from_unit_id,
                created_at=self.clock(),
                last_seq=0,
            )
            session.add(conversation)
            await session.flush()
            participants = [Participant(id=uuid.uuid4(), conversation_id=conversation.id, unit_id=u) for u in unit_ids]
            participants += [Participant(id=uuid.uuid4(), conversation_id=conversation.id, user_id=u) for u in user_ids]
            session.add_all(participants)
            await record(
                session,
                actor=principal,
                action="conversation.create",
                object_type="conversation",
                object_id=conversation.id,
                unit_id=request.from_unit_id,
                case_ref=request.case_ref,
            )
            out = await self._conversation_out(session, conversation, participants)
        self._access[conversation.id] = access_of(conversation.id, participants)
        return out

    async def _conversation_out(
        self, session: AsyncSession, conversation: Conversation, participants: list[Participant]
    ) -> ConversationOut:
        units = await store.unit_names(session, [p.unit_id for p in participants if p.unit_id])
        names = await self.names(
            session, [conversation.created_by_user_id, *[p.user_id for p in participants if p.user_id]]
        )
        return ConversationOut(
            id=conversation.id,
            kind=conversation.kind,
            subject=conversation.subject,
            case_ref=conversation.case_ref,
            created_at=conversation.created_at,
            created_by=UserRef(id=conversation.created_by_user_id, name=names.get(conversation.created_by_user_id, "")),
            participants=[
                ParticipantOut(
                    unit_id=p.unit_id,
                    unit_name=units.get(p.unit_id) if p.unit_id else None,
                    user_id=p.user_id,
                    user_name=names.get(p.user_id) if p.user_id else None,
                )
                for p in sorted(participants, key=lambda p: (str(p.unit_id), str(p.user_id)))
            ],
            last_seq=conversation.last_seq,
        )

    async def list_conversations(self, principal: Principal, unit_id: uuid.UUID | None) -> list[ConversationOut]:
        if unit_id is not None and not principal.is_member_of(unit_id):
            raise Forbidden("You can only list the conversations of units you belong to.")
        async with self.db.transaction() as session:
            units = [unit_id] if unit_id else list(principal.unit_ids)
            user = principal.user_id if unit_id is None else uuid.UUID(int=0)
            conversations = await store.list_conversations(session, user, units)
            everyone = await store.participants_of(session, [c.id for c in conversations])
            by_conversation: dict[uuid.UUID, list[Participant]] = {}
            for participant in everyone:
                by_conversation.setdefault(participant.conversation_id, []).append(participant)
            return [await self._conversation_out(session, c, by_conversation.get(c.id, [])) for c in conversations]

    async def get_conversation(self, principal: Principal, conversation_id: uuid.UUID) -> ConversationOut:
        access = await self.require(principal, "conversation.read", conversation_id)
        async with self.db.transaction() as session:
            conversation = await session.get(Conversation, conversation_id)
            if conversation is None:
                raise NotFound("conversation")
            await self._audit_read(session, principal, conversation, access)
            return await self._conversation_out(
                session, conversation, await store.participants(session, conversation_id)
            )

    async def _audit_read(
        self,
        session: AsyncSession,
        principal: Principal,
        conversation: Conversation,
        access: ConversationAccess,
        action: str = "conversation.read",
    ) -> None:
        await self._audit_access(
            session, principal, access, action, "conversation", conversation.id, conversation.case_ref
        )

    async def _audit_access(
        self,
        session: AsyncSession,
        principal: Principal,
        access: ConversationAccess,
        action: str,
        object_type: str,
        object_id: uuid.UUID,
        case_ref: str | None,
        ip: str | None = None,
    ) -> None:
        """Access-log row naming the unit the reader acted for (their first unit in the conversation)."""
        mine = sorted(access.unit_ids & principal.unit_ids)
        await record(
            session,
            actor=principal,
            action=action,
            object_type=object_type,
            object_id=object_id,
            unit_id=mine[0] if mine else None,
            case_ref=case_ref,
            ip=ip,
        )

    async def conversation_of(self, message_id: uuid.UUID) -> uuid.UUID | None:
        async with self.db.transaction() as session:
            message = await session.get(Message, message_id)
            return message.conversation_id if message else None

    async def list_messages(
        self, principal: Principal, conversation_id: uuid.UUID, before_seq: int | None, limit: int
    ) -> list[MessageOut]:
        access = await self.require(principal, "conversation.read", conversation_id)
        async with self.db.transaction() as session:
            conversation = await session.get(Conversation, conversation_id)
            if conversation is None:
                raise NotFound("conversation")
            await self._audit_read(session, principal, conversation, access)
            messages = await store.conversation_messages(session, conversation_id, before_seq, limit)
            return await self.render(session, messages, viewer=principal)

    # ------------------------------------------------------------------------------ rendering

    async def names(self, session: AsyncSession, ids: list[uuid.UUID | None]) -> dict[uuid.UUID, str]:
        wanted = {i for i in ids if i is not None}
        missing = [i for i in wanted if i not in self._names]
        if missing:
            self._names.update(await store.user_names(session, missing))
        return {i: self._names.get(i, "") for i in wanted}

    def _ref(self, user_id: uuid.UUID | None, names: dict[uuid.UUID, str]) -> UserRef | None:
        return None if user_id is None else UserRef(id=user_id, name=names.get(user_id, ""))

    def _recipient_state(
        self, receipt: AnyReceipt, names: dict[uuid.UUID, str], viewer: Principal | None
    ) -> RecipientState:
        show_reader = self.config.read_receipt_names or (
            viewer is not None and RecipientRef(receipt.unit_id, receipt.user_id).is_acted_for_by(viewer)
        )
        route = receipt.escalation_route
        return RecipientState(
            unit_id=receipt.unit_id,
            user_id=receipt.user_id,
            needs_ack=receipt.needs_ack,
            delivered_at=receipt.delivered_at,
            read_at=receipt.read_at,
            read_by=self._ref(receipt.read_by_user_id, names) if show_reader else None,
            acknowledged_at=receipt.acknowledged_at,
            acknowledged_by=self._ref(receipt.acknowledged_by_user_id, names),
            claimed_at=receipt.claimed_at,
            claimed_by=self._ref(receipt.claimed_by_user_id, names),
            returned_at=receipt.returned_at,
            returned_by=self._ref(receipt.returned_by_user_id, names),
            escalated_at=receipt.escalated_at,
            escalation_level=receipt.escalation_level,
            escalation_route=EscalationRouteOut.model_validate(route) if route else None,
        )

    def _attachment_out(self, attachment: Attachment) -> AttachmentOut:
        return AttachmentOut(
            id=attachment.id,
            conversation_id=attachment.conversation_id,
            content_type=attachment.content_type,
            size=attachment.size,
            filename=self._attachment_cipher(attachment).decrypt(NAME_INDEX, attachment.name_enc, True).decode(),
            created_at=attachment.created_at,
            message_id=attachment.message_id,
        )

    def message_out(
        self,
        message: AnyMessage,
        receipts: Sequence[AnyReceipt],
        attachments: list[Attachment],
        names: dict[uuid.UUID, str],
        viewer: Principal | None = None,
        event_seq: int | None = None,
        plaintext: str | None = None,
    ) -> MessageOut:
        """The API view of a message; `plaintext` spares decrypting a body that was just sealed."""
        body: str | None = None
        system: SystemNotice | None = None
        if message.retracted_at is None:
            text = plaintext
            if text is None:
                text = self.envelope.open_text(Sealed(message.body_kek, message.body_enc), body_aad(message))
            if message.kind == "system":
                system = SystemNotice(kind=message.system_kind or "notice", data=json.loads(text))
            else:
                body = text
        if any(r.returned_at for r in receipts) and all(r.returned_at for r in receipts):
            state = "returned"
        elif any(r.needs_ack for r in receipts):
            open_receipts = [r for r in receipts if r.needs_ack and not r.acknowledged_at and not r.returned_at]
            if not open_receipts:
                state = "acknowledged"
            elif any(r.escalated_at for r in open_receipts):
                state = "escalated"
            else:
                state = "open"
        else:
            state = "sent"
        return MessageOut(
            id=message.id,
            conversation_id=message.conversation_id,
            seq=message.seq,
            event_seq=event_seq,
            client_id=message.client_id,
            sender=self._ref(message.sender_user_id, names),
            sender_unit_id=message.sender_unit_id,
            kind=message.kind,
            body=body,
            system=system,
            priority=message.priority,
            ack_required=message.ack_required,
            reply_to=message.reply_to_id,
            attachments=[self._attachment_out(a) for a in attachments],
            created_at=message.created_at,
            edited_at=message.edited_at,
            retracted_at=message.retracted_at,
            version=message.version,
            state=state,
            recipients=[
                self._recipient_state(r, names, viewer)
                for r in sorted(receipts, key=lambda r: (str(r.unit_id), str(r.user_id)))
            ],
        )

    async def render(
        self,
        session: AsyncSession,
        messages: list[Message],
        viewer: Principal | None = None,
        event_seqs: dict[uuid.UUID, int] | None = None,
    ) -> list[MessageOut]:
        return self.build(await self.load(session, messages), viewer, event_seqs)

    async def load(self, session: AsyncSession, messages: list[Message]) -> _Loaded:
        """Everything needed to render messages (the SQL part; `build` is CPU only)."""
        ids = [m.id for m in messages]
        receipts: dict[uuid.UUID, list[Receipt]] = {}
        for receipt in await store.receipts_for(session, ids):
            receipts.setdefault(receipt.message_id, []).append(receipt)
        attachments: dict[uuid.UUID, list[Attachment]] = {}
        for attachment in await store.attachments_for(session, ids):
            if attachment.message_id is not None:
                attachments.setdefault(attachment.message_id, []).append(attachment)
        people: list[uuid.UUID | None] = [m.sender_user_id for m in messages]
        for group in receipts.values():
            for r in group:
                people += [r.read_by_user_id, r.acknowledged_by_user_id, r.claimed_by_user_id, r.returned_by_user_id]
        return _Loaded(messages, receipts, attachments, await self.names(session, people))

    def build(
        self, loaded: _Loaded, viewer: Principal | None = None, event_seqs: dict[uuid.UUID, int] | None = None
    ) -> list[MessageOut]:
        return [
            self.message_out(
                m,
                loaded.receipts.get(m.id, []),
                loaded.attachments.get(m.id, []),
                loaded.names,
                viewer,
                (event_seqs or {}).get(m.id),
            )
            for m in loaded.messages
        ]

    # ------------------------------------------------------------------------------ sending

    async def send(
        self, principal: Principal, request: MessageSend, origin: str | None = None
    ) -> tuple[MessageOut, bool]:
        """Store a message (or find the earlier one with the same client_id); returns (message, created).

        Returns only after the transaction that holds the message has committed. `origin` names the
        connection that sent it, which is left out of the `message:new` fan-out.
        """
        if len(request.body) > self.config.max_body_chars:
            raise Problem(
                "body_too_long", f"A message can hold at most {self.config.max_body_chars} characters.", status=422
            )
        access = await self.require(principal, "conversation.post", request.conversation_id)
        sender_unit = self.acting_unit(principal, access)
        recipients = [RecipientRef(u, None) for u in sorted(access.unit_ids) if u != sender_unit]
        recipients += [RecipientRef(None, u) for u in sorted(access.user_ids) if u != principal.user_id]
        due: dict[uuid.UUID, datetime] = {}
        if request.priority == "urgent" or request.ack_required:
            now = self.clock()
            for recipient in recipients:
                if recipient.unit_id is not None:
                    minutes = await self.deadline_minutes(recipient.unit_id, request.priority)
                    due[recipient.unit_id] = await self.due_at(recipient.unit_id, now, minutes)
        job = _Send(principal, request, access, sender_unit, recipients, due, origin)
        if self._queue is None:
            await self._commit_batch([job])
        else:
            await self._queue.put(job)
        return await job.future

    async def _send_worker(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            # Group commit: let senders that are already running enqueue too, so that one fsync
            # covers many messages (each COMMIT on SQLite with synchronous=FULL is an fsync).
            for _round in range(8):
                while len(batch) < self.config.batch_max and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                if len(batch) >= self.config.batch_max:
                    break
                await asyncio.sleep(0)
                if self._queue.empty():
                    break
            try:
                await self._commit_batch(batch)
            except Exception:
                log.exception("send batch failed")
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(Problem("internal", "The message could not be stored; send it again."))

    async def _commit_batch(self, batch: list[_Send]) -> None:
        # Optimistic: a resend of a stored message is rare, and the unique (sender, client_id) index
        # refuses it anyway; looking first would cost a query in every batch. Not with attachments: a
        # resend's files are linked to the stored message already and would be refused as sent.
        optimistic = not any(job.request.attachments for job in batch)
        try:
            created = await self._store_batch(batch, look_for_resends=not optimistic)
        except IntegrityError:
            try:
                created = await self._store_batch(batch)
            except IntegrityError:
                # A concurrent node stored one of these client_ids meanwhile: one by one.
                created = []
                for job in batch:
                    if job.future.done():
                        continue
                    try:
                        created += await self._store_batch([job])
                    except Exception as exc:
                        job.future.set_exception(exc)
        for message_out, access, origin in created:
            await self.notifier.emit("message:new", message_out.as_json(), rooms_of(access), skip=origin)
        for unit_id in {r.unit_id for job in batch for r in job.recipients if r.unit_id}:
            self.inbox_changed(unit_id)

    async def _store_batch(
        self, batch: list[_Send], look_for_resends: bool = True
    ) -> list[tuple[MessageOut, ConversationAccess, str | None]]:
        pending = [job for job in batch if not job.future.done()]
        results: list[tuple[_Send, MessageOut, bool]] = []
        created: list[tuple[MessageOut, ConversationAccess, str | None]] = []
        async with self.write_transaction() as session:
            keys = [(job.principal.user_id, job.request.client_id) for job in pending]
            existing = await store.existing_sends(session, keys) if look_for_resends else {}
            fresh: list[_Send] = []
            first_of: dict[tuple[uuid.UUID, uuid.UUID], _Send] = {}
            duplicates: list[tuple[_Send, _Send]] = []
            for job in pending:
                key = (job.principal.user_id, job.request.client_id)
                if key in existing:
                    continue
                if key in first_of:
                    duplicates.append((job, first_of[key]))
                    continue
                try:
                    await self._validate_links(session, job)
                except Problem as problem:
                    job.future.set_exception(problem)
                    continue
                first_of[key] = job
                fresh.append(job)
            # Reads first: on SQLite the write lock is taken at the first INSERT and held until COMMIT.
            await self.names(session, [job.principal.user_id for job in pending])
            if existing:
                rendered = await self.render(session, list(existing.values()))
                by_message = {out.id: out for out in rendered}
                for job in pending:
                    earlier = existing.get((job.principal.user_id, job.request.client_id))
                    if earlier is None:
                        continue
                    if earlier.conversation_id != job.request.conversation_id:
                        job.future.set_exception(
                            Conflict(
                                "client_id_reused",
                                "This client_id was already used for another message; use a new one.",
                            )
                        )
                        continue
                    results.append((job, by_message[earlier.id], False))
            now = self.clock()
            messages = [self._new_message(job, now) for job in fresh]
            new_receipts: dict[uuid.UUID, list[NewReceipt]] = {}
            escalations: list[dict[str, Any]] = []
            for job, message in zip(fresh, messages, strict=True):
                needs_ack = job.request.ack_required or job.request.priority == "urgent"
                receipts = [
                    NewReceipt(uuid.uuid4(), message.id, message.conversation_id, r.unit_id, r.user_id, needs_ack)
                    for r in job.recipients
                ]
                new_receipts[message.id] = receipts
                escalations += [
                    {
                        "id": uuid.uuid4(),
                        "receipt_id": receipt.id,
                        "message_id": message.id,
                        "unit_id": receipt.unit_id,
                        "level": 1,
                        "due_at": job.due[receipt.unit_id],
                        "state": "pending",
                        "fired_at": None,
                    }
                    for receipt in receipts
                    if receipt.unit_id in job.due
                ]
            # Everything above ran before the feed lock (PostgreSQL: other nodes' writers wait while
            # it is held); from here to COMMIT only the writes. Core executemany inserts: the ORM unit
            # of work costs more CPU than the database here.
            if messages:
                await store.lock_feed(session)
            seqs = await store.insert_feed(
                session,
                [
                    {"conversation_id": m.conversation_id, "message_id": m.id, "kind": "message", "at": now}
                    for m in messages
                ],
            )
            last: dict[uuid.UUID, int] = {}
            for message, seq in zip(messages, seqs, strict=True):
                message.seq = seq
                last[message.conversation_id] = seq
            await store.insert_rows(session, Message, [vars(m) for m in messages])
            await store.insert_rows(session, Receipt, [vars(r) for group in new_receipts.values() for r in group])
            await store.insert_rows(session, Escalation, escalations)
            linked: dict[uuid.UUID, list[Attachment]] = {}
            for message, job in zip(messages, fresh, strict=True):
                if job.request.attachments:
                    rows = await session.execute(select(Attachment).where(Attachment.id.in_(job.request.attachments)))
                    linked[message.id] = list(rows.scalars())
                    for attachment in linked[message.id]:
                        attachment.message_id = message.id
            await store.bump_conversations(session, last)
        names = self._names
        for message, job in zip(messages, fresh, strict=True):
            out = self.message_out(
                message, new_receipts[message.id], linked.get(message.id, []), names, plaintext=job.request.body
            )
            results.append((job, out, True))
            created.append((out, job.access, job.origin))
        if any(m for m in messages if m.priority == "urgent" or m.ack_required):
            self.wake.set()
        by_key = {(job.principal.user_id, job.request.client_id): out for job, out, _c in results}
        for job, out, was_created in results:
            if not job.future.done():
                job.future.set_result((out, was_created))
        for job, first in duplicates:
            if not job.future.done():
                same = by_key.get((first.principal.user_id, first.request.client_id))
                if same is not None:
                    job.future.set_result((same, False))
                else:
                    job.future.set_exception(Problem("internal", "The message could not be stored; send it again."))
        return created

    def _new_message(self, job: _Send, now: datetime) -> NewMessage:
        """The row of a sent message, body sealed; its seq is set once the feed row has one."""
        request = job.request
        message = NewMessage(
            id=uuid.uuid4(),
            conversation_id=request.conversation_id,
            seq=0,
            sender_user_id=job.principal.user_id,
            sender_unit_id=job.sender_unit_id,
            client_id=request.client_id,
            kind="text",
            system_kind=None,
            priority=request.priority,
            ack_required=request.ack_required,
            reply_to_id=request.reply_to,
            attachment_ids=[str(a) for a in request.attachments],
            created_at=now,
        )
        sealed = self.envelope.seal_text(request.body, body_aad(message))
        message.body_kek, message.body_enc = sealed.kek_id, sealed.blob
        return message

    async def _validate_links(self, session: AsyncSession, job: _Send) -> None:
        request = job.request
        if request.reply_to is not None:
            parent = await session.get(Message, request.reply_to)
            if parent is None or parent.conversation_id != request.conversation_id:
                raise Problem("invalid_reply_to", "reply_to must be a message in the same conversation.", status=422)
        if request.attachments:
            rows = await session.execute(select(Attachment).where(Attachment.id.in_(request.attachments)))
            found = list(rows.scalars())
            if len(found) != len(set(request.attachments)) or any(
                a.conversation_id != request.conversation_id
                or a.uploader_user_id != job.principal.user_id
                or a.message_id is not None
                for a in found
            ):
                raise Problem(
                    "invalid_attachment",
                    "Attach only files you uploaded to this conversation and have not sent yet.",
                    status=422,
                )

    # ------------------------------------------------------------------------------ system notices

    async def post_system_notice(
        self, session: AsyncSession, conversation_id: uuid.UUID, kind: str, data: dict[str, Any]
    ) -> uuid.UUID:
        """Add a system message (e.g. a meeting invitation) in the caller's transaction.

        `data` is stored encrypted like any body. `message:new` goes out after the caller commits.
        The notice has no sender and needs no acknowledgement. Returns the message id.
        """
        participants = await store.participants(session, conversation_id)
        if not participants:
            raise NotFound("conversation")
        access = access_of(conversation_id, participants)
        await store.lock_feed(session)
        now = self.clock()
        message_id = uuid.uuid4()
        row = FeedEvent(conversation_id=conversation_id, message_id=message_id, kind="message", at=now)
        session.add(row)
        await session.flush()
        message = Message(
            id=message_id,
            conversation_id=conversation_id,
            seq=row.seq,
            sender_user_id=None,
            sender_unit_id=None,
            client_id=uuid.uuid5(SYSTEM_CLIENT_NAMESPACE, str(message_id)),
            kind="system",
            system_kind=kind[:40],
            priority="normal",
            ack_required=False,
            reply_to_id=None,
            attachment_ids=[],
            created_at=now,
            version=1,
        )
        sealed = self.envelope.seal_text(json.dumps(data), body_aad(message))
        message.body_kek, message.body_enc = sealed.kek_id, sealed.blob
        session.add(message)
        await session.flush()
        receipts = [
            Receipt(
                id=uuid.uuid4(),
                message_id=message_id,
                conversation_id=conversation_id,
                unit_id=p.unit_id,
                user_id=p.user_id,
                needs_ack=False,
                escalation_level=0,
            )
            for p in participants
        ]
        session.add_all(receipts)
        await store.bump_conversations(session, {conversation_id: row.seq})
        out = self.message_out(message, receipts, [], {})
        self._after_commit(
            session, lambda: self.notifier.emit("message:new", out.model_dump(mode="json"), rooms_of(access))
        )
        return message_id

    def _after_commit(self, session: AsyncSession, action: Callable[[], Coroutine[Any, Any, None]]) -> None:
        def fire(_session: object) -> None:
            asyncio.get_running_loop().create_task(action())

        event.listen(session.sync_session, "after_commit", fire, once=True)

    # ------------------------------------------------------------------------------ sync

    async def sync(self, principal: Principal, since: int, limit: int | None = None) -> SyncOut:
        """Everything visible to the caller after `since`, in feed order, one snapshot per message.

        Reading happens in one transaction; recording delivery and the access-log rows in a second,
        short write transaction (SQLite has one writer at a time, so writes must not wait on rendering).
        """
        page = min(limit or self.config.sync_page_size, self.config.sync_page_size)
        async with self._sync_slots, self.db.transaction() as session:
            rows = await store.feed_page(session, principal.user_id, principal.unit_ids, since, page + 1)
            has_more = len(rows) > page
            rows = rows[:page]
            latest: dict[uuid.UUID, int] = {}
            order: list[uuid.UUID] = []
            for seq, message_id, _conversation in rows:
                if message_id not in latest:
                    order.append(message_id)
                latest[message_id] = seq
            messages = {m.id: m for m in await store.messages_by_ids(session, order)}
            undelivered = await store.undelivered_receipts(
                session, list(messages), principal.user_id, principal.unit_ids
            )
            conversations = {m.conversation_id: m for m in messages.values()}
            case_refs = await store.case_refs(session, list(conversations))
            ordered = [messages[i] for i in order if i in messages]
            loaded = await self.load(session, ordered)
        out = self.build(loaded, principal, latest)  # CPU work after the connection went back to the pool
        now = self.clock()
        if undelivered or conversations:
            accesses = {c: await self.access(c) for c in conversations}
            async with self.write_transaction() as session:
                await store.mark_delivered(session, [r.id for r in undelivered], now)
                for conversation_id, access in accesses.items():
                    await self._audit_access(
                        session,
                        principal,
                        access,
                        "conversation.sync",
                        "conversation",
                        conversation_id,
                        case_refs.get(conversation_id),
                    )
            for receipt in undelivered:
                await self._emit_receipt(receipt, "delivered", None, now, accesses[receipt.conversation_id])
        return SyncOut(messages=out, cursor=rows[-1][0] if rows else since, has_more=has_more)

    async def _emit_receipt(
        self, receipt: Receipt, kind: str, by: UserRef | None, at: datetime, access: ConversationAccess
    ) -> None:
        payload = ReceiptEvent(
            message_id=receipt.message_id,
            conversation_id=receipt.conversation_id,
            kind=kind,
            unit_id=receipt.unit_id,
            user_id=receipt.user_id,
            by=by,
            at=at,
        ).model_dump(mode="json")
        if kind == "read" and not self.config.read_receipt_names:
            # Within policy: the reader's own unit sees who read; everybody else only the unit and time.
            own = (
                [unit_room(receipt.unit_id)]
                if receipt.unit_id
                else [user_room(receipt.user_id)]
                if receipt.user_id
                else []
            )
            await self.notifier.emit("receipt", payload, own)
            others = [room for room in rooms_of(access) if room not in own]
            if others:
                await self.notifier.emit("receipt", {**payload, "by": None}, others)
            return
        await self.notifier.emit("receipt", payload, rooms_of(access))

    # ------------------------------------------------------------------------------ receipts and unit actions

    async def mark_read(self, principal: Principal, conversation_id: uuid.UUID, up_to: int) -> int:
        access = await self.require(principal, "conversation.read", conversation_id)
        now = self.clock()
        async with self.write_transaction() as session:
            await store.lock_feed(session)
            conversation = await session.get(Conversation, conversation_id)
            if conversation is None:
                raise NotFound("conversation")
            await self._audit_read(session, principal, conversation, access)
            pairs = await store.my_receipts(session, conversation_id, principal.user_id, principal.unit_ids, up_to)
            changed: list[Receipt] = []
            for receipt, _message in pairs:
                receipt.read_at = now
                receipt.read_by_user_id = principal.user_id
                receipt.delivered_at = receipt.delivered_at or now
                changed.append(receipt)
            for message_id in {r.message_id for r in changed}:
                session.add(FeedEvent(conversation_id=conversation_id, message_id=message_id, kind="receipt", at=now))
        names = {principal.user_id: principal.display_name}
        for receipt in changed:
            await self._emit_receipt(receipt, "read", self._ref(principal.user_id, names), now, access)
        for unit_id in {r.unit_id for r in changed if r.unit_id}:
            self.inbox_changed(unit_id)
        return len(changed)

    async def _recipient_action(
        self,
        principal: Principal,
        message_id: uuid.UUID,
        action: str,
        apply: Callable[[Receipt, datetime], bool],
        receipt_kind: str,
        *,
        require_ack: bool = False,
    ) -> MessageOut:
        """Apply `apply` to each receipt of the message the caller may act for (their units / themselves)."""
        now = self.clock()
        async with self.write_transaction() as session:
            message = await session.get(Message, message_id)
            if message is None:
                await self._audit_denied(principal, action, "message", message_id)
                raise NotFound("message")
            access = await self.access(message.conversation_id)
            if not policy.allowed(principal, "conversation.read", access):
                await self._audit_denied(principal, action, "message", message_id)
                raise NotFound("message")
            await store.lock_feed(session)
            receipts = await store.receipts_for(session, [message_id])
            mine = [
                r
                for r in receipts
                if policy.allowed(principal, "message.act_as_recipient", RecipientRef(r.unit_id, r.user_id))
            ]
            if not mine:
                raise Forbidden(f"Only a recipient of this message can {action.split('.')[-1]} it.")
            if require_ack and not any(r.needs_ack for r in mine):
                raise Problem("no_ack_requested", "This message does not ask for acknowledgement.", status=409)
            changed = [r for r in mine if apply(r, now)]
            if changed:
                session.add(
                    FeedEvent(conversation_id=message.conversation_id, message_id=message_id, kind="receipt", at=now)
                )
                mine_units = [r.unit_id for r in changed if r.unit_id]
                await record(
                    session,
                    actor=principal,
                    action=action,
                    object_type="message",
                    object_id=message_id,
                    unit_id=mine_units[0] if mine_units else None,
                )
            if receipt_kind in ("acknowledged", "returned"):
                await store.cancel_escalations(session, [r.id for r in changed])
            out = (await self.render(session, [message], viewer=principal))[0]
        by = UserRef(id=principal.user_id, name=principal.display_name)
        for receipt in changed:
            await self._emit_receipt(receipt, receipt_kind, by, now, access)
        if changed:
            await self.notifier.emit("message:updated", out.model_dump(mode="json"), rooms_of(access))
            for unit_id in {r.unit_id for r in receipts if r.unit_id} | ({message.sender_unit_id} - {None}):
                self.inbox_changed(unit_id)  # type: ignore[arg-type]
        return out

    async def acknowledge(self, principal: Principal, message_id: uuid.UUID) -> MessageOut:
        def apply(receipt: Receipt, now: datetime) -> bool:
            if not receipt.needs_ack or receipt.acknowledged_at is not None or receipt.returned_at is not None:
                return False
            receipt.acknowledged_at = now
            receipt.acknowledged_by_user_id = principal.user_id
            receipt.read_at = receipt.read_at or now
            receipt.read_by_user_id = receipt.read_by_user_id or principal.user_id
            receipt.delivered_at = receipt.delivered_at or now
            return True

        return await self._recipient_action(
            principal, message_id, "message.acknowledge", apply, "acknowledged", require_ack=True
        )

    async def claim(self, principal: Principal, message_id: uuid.UUID, release: bool = False) -> MessageOut:
        def apply(receipt: Receipt, now: datetime) -> bool:
            if release:
                if receipt.claimed_by_user_id != principal.user_id:
                    return False
                receipt.claimed_at, receipt.claimed_by_user_id = None, None
                return True
            if receipt.claimed_by_user_id is not None and receipt.claimed_by_user_id != principal.user_id:
                raise Conflict("already_claimed", "A colleague has already taken this message.")
            receipt.claimed_at, receipt.claimed_by_user_id = now, principal.user_id
            receipt.read_at = receipt.read_at or now
            receipt.read_by_user_id = receipt.read_by_user_id or principal.user_id
            return True

        kind = "released" if release else "claimed"
        return await self._recipient_action(
            principal, message_id, f"message.{'release' if release else 'claim'}", apply, kind
        )

    async def return_misdirected(self, principal: Principal, message_id: uuid.UUID, reason: str) -> MessageOut:
        def apply(receipt: Receipt, now: datetime) -> bool:
            if receipt.returned_at is not None or receipt.acknowledged_at is not None:
                return False
            receipt.returned_at, receipt.returned_by_user_id = now, principal.user_id
            return True

        return await self._recipient_action(principal, message_id, f"message.return.{reason}", apply, "returned")

    # ------------------------------------------------------------------------------ edit / retract

    async def edit(self, principal: Principal, message_id: uuid.UUID, body: str | None) -> MessageOut:
        """Replace the text (body) or retract it (body None); the previous text is kept, encrypted."""
        if body is not None and len(body) > self.config.max_body_chars:
            raise Problem(
                "body_too_long", f"A message can hold at most {self.config.max_body_chars} characters.", status=422
            )
        now = self.clock()
        action = "message.edit" if body is not None else "message.retract"
        async with self.write_transaction() as session:
            message = await session.get(Message, message_id)
            access = await self.access(message.conversation_id) if message else None
            if message is None or access is None or not policy.allowed(principal, "conversation.read", access):
                await self._audit_denied(principal, action, "message", message_id)
                raise NotFound("message")
            if not policy.allowed(principal, "message.edit", message.sender_user_id) or message.kind != "text":
                raise Forbidden("Only the sender can edit or retract a message.")
            if message.retracted_at is not None:
                raise Conflict("retracted", "This message has been retracted and cannot change.")
            if now - message.created_at > timedelta(minutes=self.config.edit_window_minutes):
                raise Conflict(
                    "edit_window_closed",
                    f"Messages can be changed only within {self.config.edit_window_minutes} minutes. "
                    "Send a new message instead.",
                )
            await store.lock_feed(session)
            old_text = self.envelope.open_text(Sealed(message.body_kek, message.body_enc), body_aad(message))
            revision = MessageRevision(
                id=uuid.uuid4(),
                message_id=message.id,
                version=message.version,
                action="edit" if body is not None else "retract",
                by_user_id=principal.user_id,
                at=now,
            )
            kept = self.envelope.seal_text(old_text, revision_aad(revision, message.conversation_id))
            revision.body_kek, revision.body_enc = kept.kek_id, kept.blob
            session.add(revision)
            message.version += 1
            if body is None:
                message.retracted_at = now
                text = ""  # nothing readable remains in the message row
            else:
                message.edited_at = now
                text = body
            sealed = self.envelope.seal_text(text, body_aad(message))
            message.body_kek, message.body_enc = sealed.kek_id, sealed.blob
            session.add(
                FeedEvent(conversation_id=message.conversation_id, message_id=message.id, kind="updated", at=now)
            )
            await record(
                session,
                actor=principal,
                action=action,
                object_type="message",
                object_id=message.id,
                unit_id=message.sender_unit_id,
            )
            out = (await self.render(session, [message], viewer=principal))[0]
        await self.notifier.emit("message:updated", out.model_dump(mode="json"), rooms_of(access))
        return out

    async def revisions(self, principal: Principal, message_id: uuid.UUID) -> list[tuple[int, str, datetime, str]]:
        """Earlier texts of a message for the record: (version, action, at, text). Audited."""
        async with self.db.transaction() as session:
            message = await session.get(Message, message_id)
            if message is None:
                raise NotFound("message")
            access = await self.access(message.conversation_id)
            if not policy.allowed(principal, "conversation.read", access):
                await self._audit_denied(principal, "message.history", "message", message_id)
                raise NotFound("message")
            rows = await session.execute(
                select(MessageRevision)
                .where(MessageRevision.message_id == message_id)
                .order_by(MessageRevision.version)
            )
            await record(
                session, actor=principal, action="message.history", object_type="message", object_id=message_id
            )
            return [
                (
                    r.version,
                    r.action,
                    r.at,
                    self.envelope.open_text(Sealed(r.body_kek, r.body_enc), revision_aad(r, message.conversation_id)),
                )
                for r in rows.scalars()
            ]

    # ------------------------------------------------------------------------------ typing

    async def typing(self, principal: Principal, conversation_id: uuid.UUID, typing: bool) -> None:
        access = await self.require(principal, "conversation.post", conversation_id)
        await self.notifier.emit(
            "typing",
            {
                "conversation_id": str(conversation_id),
                "user": {"id": str(principal.user_id), "name": principal.display_name},
                "typing": typing,
            },
            rooms_of(access),
        )

    # ------------------------------------------------------------------------------ inbox

    async def inbox(self, principal: Principal, unit_id: uuid.UUID) -> InboxOut:
        if not policy.allowed(principal, "unit.act_for", unit_id):
            await self._audit_denied(principal, "inbox.read", "unit", unit_id)
            raise Forbidden("You can only open the inbox of a unit you belong to.")
        async with self.db.transaction() as session:
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

    def inbox_changed(self, unit_id: uuid.UUID) -> None:
        """Push fresh counts to the unit room soon (coalesced: at most one query per unit per second)."""
        self._inbox_dirty.add(unit_id)
        if self._inbox_task is None or self._inbox_task.done():
            self._inbox_task = asyncio.get_running_loop().create_task(self._flush_inbox())

    async def _flush_inbox(self) -> None:
        while self._inbox_dirty:
            await asyncio.sleep(1.0)  # coalesce: one round of counts per second at most
            dirty, self._inbox_dirty = list(self._inbox_dirty), set()
            # Small chunks spread over part of the second: one burst of counting and pushing would hold up
            # the sends that arrive meanwhile (seen as a send→deliver latency spike once a second).
            chunks = [dirty[start : start + INBOX_CHUNK] for start in range(0, len(dirty), INBOX_CHUNK)]
            pause = max(INBOX_PAUSE_SECONDS, INBOX_SPREAD_SECONDS / len(chunks))
            for number, chunk in enumerate(chunks):
                if number:
                    await asyncio.sleep(pause)
                try:
                    async with self.db.transaction() as session:
                        counts = await store.inbox_counts_many(session, chunk)
                    for unit_id, values in counts.items():
                        await self.notifier.emit("inbox", {"unit_id": str(unit_id), **values}, [unit_room(unit_id)])
                except Exception:
                    log.exception("inbox count failed")

    # ------------------------------------------------------------------------------ unit settings

    async def deadline_minutes(self, unit_id: uuid.UUID, priority: str) -> int:
        async with self.db.transaction() as session:
            settings = await store.unit_settings(session, unit_id)
        if settings is not None:
            return settings.urgent_minutes if priority == "urgent" else settings.normal_minutes
        return self.config.urgent_ack_minutes if priority == "urgent" else self.config.normal_ack_minutes

    async def get_unit_settings(self, principal: Principal, unit_id: uuid.UUID) -> UnitSettingsOut:
        policy.require(principal, "unit.act_for", unit_id)
        return UnitSettingsOut(
            unit_id=unit_id,
            urgent_minutes=await self.deadline_minutes(unit_id, "urgent"),
            normal_minutes=await self.deadline_minutes(unit_id, "normal"),
        )

    async def set_unit_settings(
        self, principal: Principal, unit_id: uuid.UUID, urgent: int, normal: int
    ) -> UnitSettingsOut:
        policy.require(principal, "unit.administer", unit_id, detail="Only a unit administrator can change deadlines.")
        async with self.write_transaction() as session:
            row = await store.unit_settings(session, unit_id)
            if row is None:
                row = UnitMessagingSettings(
                    unit_id=unit_id, urgent_minutes=urgent, normal_minutes=normal, updated_at=self.clock()
                )
                session.add(row)
            else:
                row.urgent_minutes, row.normal_minutes, row.updated_at = urgent, normal, self.clock()
            await record(
                session,
                actor=principal,
                action="messaging.settings",
                object_type="unit",
                object_id=unit_id,
                unit_id=unit_id,
            )
        return UnitSettingsOut(unit_id=unit_id, urgent_minutes=urgent, normal_minutes=normal)

    # ------------------------------------------------------------------------------ escalation

    async def due_at(self, unit_id: uuid.UUID, start: datetime, minutes: int) -> datetime:
        """`minutes` of the unit's open time after `start` (per the directory calendar)."""
        remaining = timedelta(minutes=minutes)
        calendar = self.calendar()
        window_start = start
        for _week in range(8):
            window_end = window_start + timedelta(days=7)
            for opens, closes in await calendar.open_intervals(unit_id, window_start, window_end):
                opens = max(opens, window_start)
                if closes <= opens:
                    continue
                if closes - opens >= remaining:
                    return opens + remaining
                remaining -= closes - opens
            window_start = window_end
        return start + timedelta(minutes=minutes)  # never staffed in 8 weeks: count wall-clock time

    async def fire_due(self) -> int:
        """Escalate every pending timer that is due now; returns how many fired."""
        now = self.clock()
        async with self.db.transaction() as session:
            due = await store.due_escalations(session, now)
        fired = 0
        for escalation in due:
            fired += await self._fire(escalation.id, now)
        return fired

    async def _fire(self, escalation_id: uuid.UUID, now: datetime) -> int:
        async with self.write_transaction() as session:
            await store.lock_feed(session)
            escalation = await session.get(Escalation, escalation_id)
            if escalation is None or not await store.claim_escalation(session, escalation_id, now):
                return 0
            receipt = await session.get(Receipt, escalation.receipt_id)
            message = await session.get(Message, escalation.message_id)
            if receipt is None or message is None or receipt.acknowledged_at or receipt.returned_at:
                escalation.state = "cancelled"
                return 0
            routes = await self.calendar().escalation_routes(escalation.unit_id, now)
            index = escalation.level - 1
            route = routes[index] if index < len(routes) else (routes[-1] if routes else None)
            receipt.escalated_at = receipt.escalated_at or now
            receipt.escalation_level = escalation.level
            receipt.escalation_route = route_out(route)
            if escalation.level < len(routes):
                minutes = await self.deadline_minutes(escalation.unit_id, message.priority)
                session.add(
                    Escalation(
                        id=uuid.uuid4(),
                        receipt_id=receipt.id,
                        message_id=message.id,
                        unit_id=escalation.unit_id,
                        level=escalation.level + 1,
                        due_at=now + timedelta(minutes=minutes),
                        state="pending",
                    )
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
                unit_id=escalation.unit_id,
                details={"level": escalation.level, "route_purpose": route.purpose if route else None},
            )
            out = (await self.render(session, [message]))[0]
            access = await self.access(message.conversation_id)
        payload = EscalationEvent(
            message_id=message.id,
            conversation_id=message.conversation_id,
            unit_id=escalation.unit_id,
            level=escalation.level,
            route=EscalationRouteOut.model_validate(route_out(route)) if route else None,
            at=now,
        ).model_dump(mode="json")
        sender_rooms = [user_room(message.sender_user_id)] if message.sender_user_id else []
        if message.sender_unit_id:
            sender_rooms.append(unit_room(message.sender_unit_id))
        await self.notifier.emit("escalation", payload, [*sender_rooms, unit_room(escalation.unit_id)])
        await self.notifier.emit("message:updated", out.model_dump(mode="json"), rooms_of(access))
        self.inbox_changed(escalation.unit_id)
        if message.sender_unit_id:
            self.inbox_changed(message.sender_unit_id)
        log.info("message escalated", extra={"message_id": str(message.id), "level": escalation.level})
        return 1

    async def next_due(self) -> datetime | None:
        async with self.db.transaction() as session:
            return await store.next_due(session)

    async def _scheduler_loop(self) -> None:
        while not self._stopping:
            self.wake.clear()
            timeout = self.config.scheduler_poll_seconds
            if not self.may_escalate():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=timeout)
                continue
            try:
                await self.fire_due()
                upcoming = await self.next_due()
                if upcoming is not None:
                    timeout = max(0.0, min(timeout, (upcoming - self.clock()).total_seconds()))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("escalation scheduler failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=timeout)

    # ------------------------------------------------------------------------------ attachments

    def _attachment_cipher(self, attachment: Attachment) -> ChunkCipher:
        key = self.envelope.unwrap(attachment.kek_id, attachment.wrapped_dek)
        aad = associated_data("message_attachment_chunks", attachment.id, attachment.conversation_id)
        return ChunkCipher(key, attachment.nonce_prefix, aad)

    async def upload(
        self,
        principal: Principal,
        conversation_id: uuid.UUID,
        content_type: str,
        filename: str,
        chunks: AsyncIterator[bytes],
        max_bytes: int,
    ) -> AttachmentOut:
        """Stream an upload into encrypted 1 MiB chunks; nothing is stored unless it all arrives and passes."""
        from server.messaging.sniff import ALLOWED_TYPES, SNIFF_BYTES, sniff

        access = await self.require(principal, "conversation.post", conversation_id)
        if content_type not in ALLOWED_TYPES:
            raise Problem(
                "unsupported_media_type",
                f"Attachments may be {', '.join(sorted(ALLOWED_TYPES))}.",
                status=415,
            )
        async with self._upload_slots:
            data_key = self.envelope.new_data_key()
            attachment_id = uuid.uuid4()
            prefix = os.urandom(4)
            cipher = ChunkCipher(
                data_key.key, prefix, associated_data("message_attachment_chunks", attachment_id, conversation_id)
            )
            encrypted: list[bytes] = []
            buffer = bytearray()
            size = 0
            head = b""
            sniffed = False
            async for piece in chunks:
                size += len(piece)
                if size > max_bytes:
                    raise Problem(
                        "payload_too_large", f"Attachments can be at most {max_bytes // (1024 * 1024)} MiB.", status=413
                    )
                if len(head) < SNIFF_BYTES:
                    head = (head + piece)[:SNIFF_BYTES]
                if not sniffed and len(head) >= SNIFF_BYTES:
                    sniff(content_type, head)  # reject a wrong type before reading the rest
                    sniffed = True
                buffer += piece
                while len(buffer) > CHUNK_SIZE:
                    encrypted.append(cipher.encrypt(len(encrypted), bytes(buffer[:CHUNK_SIZE]), False))
                    del buffer[:CHUNK_SIZE]
            if size == 0:
                raise Problem("empty_upload", "The upload was empty.", status=422)
            if not sniffed:
                sniff(content_type, head)
            encrypted.append(cipher.encrypt(len(encrypted), bytes(buffer), True))
            name = (filename or "bilaga").replace("/", "_").replace("\\", "_")[:200]
            attachment = Attachment(
                id=attachment_id,
                conversation_id=conversation_id,
                uploader_user_id=principal.user_id,
                content_type=content_type,
                size=size,
                chunk_count=len(encrypted),
                kek_id=data_key.kek_id,
                wrapped_dek=data_key.wrapped,
                nonce_prefix=prefix,
                name_enc=cipher.encrypt(NAME_INDEX, name.encode(), True),
                created_at=self.clock(),
            )
            async with self.write_transaction() as session:
                session.add(attachment)
                await session.flush()
                for index, blob in enumerate(encrypted):
                    session.add(AttachmentChunk(attachment_id=attachment_id, idx=index, data=blob))
                await record(
                    session,
                    actor=principal,
                    action="attachment.upload",
                    object_type="attachment",
                    object_id=attachment_id,
                    unit_id=self.acting_unit(principal, access),
                    details={"size": size, "content_type": content_type},
                )
            return self._attachment_out(attachment)

    async def open_attachment(
        self, principal: Principal, conversation_id: uuid.UUID, attachment_id: uuid.UUID, ip: str | None = None
    ) -> tuple[AttachmentOut, AsyncIterator[bytes]]:
        """Check access, write the access-log row, and return a decrypting chunk iterator."""
        access = await self.require(principal, "conversation.read", conversation_id)
        async with self.write_transaction() as session:
            attachment = await session.get(Attachment, attachment_id)
            if attachment is None or attachment.conversation_id != conversation_id:
                raise NotFound("attachment")
            if attachment.message_id is None and attachment.uploader_user_id != principal.user_id:
                raise NotFound("attachment")
            conversation = await session.get(Conversation, conversation_id)
            case_ref = conversation.case_ref if conversation else None
            await self._audit_access(
                session, principal, access, "attachment.download", "attachment", attachment_id, case_ref, ip
            )
        cipher = self._attachment_cipher(attachment)
        meta = self._attachment_out(attachment)

        async def stream() -> AsyncIterator[bytes]:
            for index in range(attachment.chunk_count):
                async with self.db.transaction() as session:
                    chunk = await session.get(AttachmentChunk, (attachment.id, index))
                if chunk is None:
                    raise NotFound("attachment chunk")
                yield cipher.decrypt(index, chunk.data, index == attachment.chunk_count - 1)

        return meta, stream()

    # ------------------------------------------------------------------------------ key rotation

    async def rewrap_batch(self, envelope: Envelope, batch_size: int) -> int:
        """Rewrap up to `batch_size` data keys not wrapped by the active KEK (messages, revisions, files)."""
        active = envelope.keyring.active_id
        changed = 0
        async with self.db.transaction() as session:
            for model in (Message, MessageRevision):
                rows = await session.execute(
                    select(model.id, model.body_kek, model.body_enc).where(model.body_kek != active).limit(batch_size)
                )
                for row_id, kek_id, blob in rows.all():
                    sealed = envelope.rewrap_blob(kek_id, blob)
                    result = await session.execute(
                        update(model)
                        .where(model.id == row_id, model.body_kek == kek_id, model.body_enc == blob)
                        .values(body_kek=sealed.kek_id, body_enc=sealed.blob)
                    )
                    changed += result.rowcount  # type: ignore[attr-defined]
            rows = await session.execute(
                select(Attachment.id, Attachment.kek_id, Attachment.wrapped_dek)
                .where(Attachment.kek_id != active)
                .limit(batch_size)
            )
            for row_id, kek_id, wrapped in rows.all():
                new_id, new_wrapped = envelope.rewrap_key(kek_id, wrapped)
                result = await session.execute(
                    update(Attachment)
                    .where(Attachment.id == row_id, Attachment.kek_id == kek_id)
                    .values(kek_id=new_id, wrapped_dek=new_wrapped)
                )
                changed += result.rowcount  # type: ignore[attr-defined]
        return changed


NAME_INDEX = 2**64 - 1  # chunk index reserved for the encrypted file name
