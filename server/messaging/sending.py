"""Sending: a message is checked, queued for the group-commit batcher, stored with its receipts and
escalation timers, and acknowledged to the sender only after COMMIT; then `message:new` fans out.
Also structured (system) messages that other domains post inside their own transaction."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.deadlines import Timer
from server.core.errors import Conflict, NotFound, Problem
from server.core.prepared import Write
from server.core.principal import Principal
from server.messaging import store
from server.messaging.access import Access, access_of, acting_unit, rooms_of
from server.messaging.batcher import Batcher
from server.messaging.deps import Deps, after_commit
from server.messaging.escalation import Escalator
from server.messaging.inbox import Inbox
from server.messaging.models import Attachment, FeedEvent, Message, Receipt
from server.messaging.rendering import Renderer
from server.messaging.rows import NewMessage, NewReceipt, body_aad
from server.messaging.rules import ConversationAccess, RecipientRef
from server.messaging.schemas import MessageOut, MessageSend
from server.messaging.settings import UnitSettings

log = logging.getLogger("brygga.messaging")

SYSTEM_CLIENT_NAMESPACE = uuid.UUID("6d1c3c1e-8f0a-4a55-9d51-6272796767a1")
NOT_STORED = "The message could not be stored; send it again."


@dataclass
class SendJob:
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
class Stored:
    """What one batch writes: its new messages (in the order of their jobs), their receipts, and the
    attachments linked to them."""

    messages: list[NewMessage]
    jobs: list[SendJob]
    receipts: dict[uuid.UUID, list[NewReceipt]] = field(default_factory=dict)
    linked: dict[uuid.UUID, list[Attachment]] = field(default_factory=dict)

    def rows_after_feed(self, seqs: list[int]) -> list[Write]:
        """The writes that need the messages' feed seqs (`store.append_messages`)."""
        for message, seq in zip(self.messages, seqs, strict=True):
            message.seq = seq
        last = {message.conversation_id: message.seq for message in self.messages}  # in seq order
        receipts = [vars(r) for group in self.receipts.values() for r in group]
        return [
            store.inserts(Message, [vars(m) for m in self.messages]),
            store.inserts(Receipt, receipts),
            store.last_seqs(last),
        ]


def _failure(exc: Exception) -> Exception:
    return exc if isinstance(exc, Problem) else Problem("internal", NOT_STORED)


class Sender:
    def __init__(
        self,
        deps: Deps,
        access: Access,
        renderer: Renderer,
        inbox: Inbox,
        escalation: Escalator,
        settings: UnitSettings,
    ) -> None:
        self.deps = deps
        self.access = access
        self.renderer = renderer
        self.inbox = inbox
        self.escalation = escalation
        self.settings = settings
        self.batcher = Batcher[SendJob](
            self._commit_batch, limit=lambda: deps.config.batch_max, failure=_failure, what="send batch"
        )

    async def send(
        self, principal: Principal, request: MessageSend, origin: str | None = None
    ) -> tuple[MessageOut, bool]:
        """Store a message (or find the earlier one with the same client_id); returns (message, created).

        Returns only after the transaction that holds the message has committed. `origin` names the
        connection that sent it, which is left out of the `message:new` fan-out.
        """
        config = self.deps.config
        if len(request.body) > config.max_body_chars:
            raise Problem(
                "body_too_long", f"A message can hold at most {config.max_body_chars} characters.", status=422
            )
        access = await self.access.require(principal, "conversation.post", request.conversation_id)
        sender_unit = acting_unit(principal, access)
        recipients = [RecipientRef(u, None) for u in sorted(access.unit_ids) if u != sender_unit]
        recipients += [RecipientRef(None, u) for u in sorted(access.user_ids) if u != principal.user_id]
        due: dict[uuid.UUID, datetime] = {}
        if request.priority == "urgent" or request.ack_required:
            now = self.deps.clock()
            for recipient in recipients:
                if recipient.unit_id is not None:
                    minutes = await self.settings.deadline_minutes(recipient.unit_id, request.priority)
                    due[recipient.unit_id] = await self.escalation.due_at(recipient.unit_id, now, minutes)
        job = SendJob(principal, request, access, sender_unit, recipients, due, origin)
        await self.batcher.submit(job)
        return await job.future

    async def _commit_batch(self, batch: list[SendJob]) -> None:
        # Optimistic: a resend of a stored message is rare, and the unique (sender, client_id) index
        # refuses it anyway; looking first would cost a query in every batch. Not with attachments: a
        # resend's files are linked to the stored message already and would be refused as sent.
        optimistic = not any(job.request.attachments for job in batch)
        try:
            await self._store_batch(batch, look_for_resends=not optimistic)
        except IntegrityError:
            try:
                await self._store_batch(batch)
            except IntegrityError:
                # A concurrent node stored one of these client_ids meanwhile: one by one.
                for job in batch:
                    if job.future.done():
                        continue
                    try:
                        await self._store_batch([job])
                    except Exception as exc:
                        job.future.set_exception(exc)

    async def _store_batch(self, batch: list[SendJob], look_for_resends: bool = True) -> None:
        """Store the batch in one transaction; its senders get their acks and the recipients their
        `message:new` as soon as COMMIT returns (`_announce`)."""
        pending = [job for job in batch if not job.future.done()]
        results: list[tuple[SendJob, MessageOut, bool]] = []
        async with self.deps.write_transaction() as session:
            keys = [(job.principal.user_id, job.request.client_id) for job in pending]
            existing = await store.existing_sends(session, keys) if look_for_resends else {}
            fresh: list[SendJob] = []
            first_of: dict[tuple[uuid.UUID, uuid.UUID], SendJob] = {}
            duplicates: list[tuple[SendJob, SendJob]] = []
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
            await self.renderer.names(session, [job.principal.user_id for job in pending])
            if existing:
                rendered = await self.renderer.render(session, list(existing.values()))
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
            now = self.deps.clock()
            stored = Stored([self._new_message(job, now) for job in fresh], fresh)
            timers: list[Timer] = []
            for job, message in zip(fresh, stored.messages, strict=True):
                needs_ack = job.request.ack_required or job.request.priority == "urgent"
                receipts = [
                    NewReceipt(uuid.uuid4(), message.id, message.conversation_id, r.unit_id, r.user_id, needs_ack)
                    for r in job.recipients
                ]
                stored.receipts[message.id] = receipts
                timers += self.escalation.first_timers(receipts, job.due)
            # Everything above ran before the feed lock (PostgreSQL: other nodes' writers wait while
            # it is held); from here to COMMIT only the writes. Core executemany inserts: the ORM unit
            # of work costs more CPU than the database here.
            if stored.messages:
                await store.lock_feed(session)
            feed = [
                {"conversation_id": m.conversation_id, "message_id": m.id, "kind": "message", "at": now}
                for m in stored.messages
            ]
            await store.append_messages(session, feed, stored.rows_after_feed)
            await self.escalation.deadlines.schedule(session, timers)  # the loop looks once this commits
            for message, job in zip(stored.messages, fresh, strict=True):
                if job.request.attachments:
                    stored.linked[message.id] = await store.attachments_by_ids(session, job.request.attachments)
                    for attachment in stored.linked[message.id]:
                        attachment.message_id = message.id
            # Acks and deliveries as soon as COMMIT returns, before the session hands its connection
            # back (one more trip to the database thread). In the batcher's worker, not a task of
            # their own: the next batch waits for this one's fan-out, so deliveries cannot fall behind.
            await session.commit()
            await self._announce(stored, results, duplicates)

    async def _announce(
        self,
        stored: Stored,
        results: list[tuple[SendJob, MessageOut, bool]],
        duplicates: list[tuple[SendJob, SendJob]],
    ) -> None:
        """Acks and `message:new` for a committed batch; every sender gets an ack, whatever happens."""
        names = self.renderer.known_names
        created: list[tuple[MessageOut, SendJob]] = []
        try:
            for message, job in zip(stored.messages, stored.jobs, strict=True):
                out = self.renderer.message_out(
                    message, stored.receipts[message.id], stored.linked.get(message.id, []), names,
                    plaintext=job.request.body,
                )  # fmt: skip
                results.append((job, out, True))
                created.append((out, job))
        finally:  # a sender refused here can resend: the same client_id finds the stored message
            by_key = {(job.principal.user_id, job.request.client_id): out for job, out, _c in results}
            for job, out, was_created in results:
                if not job.future.done():
                    job.future.set_result((out, was_created))
            for job, first in duplicates:
                same = by_key.get((first.principal.user_id, first.request.client_id))
                if same is not None and not job.future.done():
                    job.future.set_result((same, False))
            for job in [*stored.jobs, *(job for job, _first in duplicates)]:
                if not job.future.done():
                    job.future.set_exception(Problem("internal", NOT_STORED))
        try:
            for out, job in created:
                await self.deps.notifier.emit("message:new", out.as_json(), rooms_of(job.access), skip=job.origin)
        except Exception:  # the messages are stored: recipients get them with their next `sync`
            log.exception("message:new fan-out failed")
        for unit_id in {r.unit_id for job in stored.jobs for r in job.recipients if r.unit_id}:
            self.inbox.changed(unit_id)

    def _new_message(self, job: SendJob, now: datetime) -> NewMessage:
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
        sealed = self.deps.envelope.seal_text(request.body, body_aad(message))
        message.body_kek, message.body_enc = sealed.kek_id, sealed.blob
        return message

    async def _validate_links(self, session: AsyncSession, job: SendJob) -> None:
        request = job.request
        if request.reply_to is not None:
            parent = await session.get(Message, request.reply_to)
            if parent is None or parent.conversation_id != request.conversation_id:
                raise Problem("invalid_reply_to", "reply_to must be a message in the same conversation.", status=422)
        if request.attachments:
            found = await store.attachments_by_ids(session, request.attachments)
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
        """Add a structured message (a meeting invitation, a discharge milestone) in the caller's transaction.

        `data` is stored encrypted like any body. `message:new` goes out after the caller commits.
        Without `sender` it is a system notice; with one (and `sender_unit_id`) the sender unit gets no
        receipt. Units in `ack_unit_ids` must acknowledge it, as for `ack_required`. Returns the message id.
        """
        must_ack = frozenset(ack_unit_ids)
        everyone = await store.participants(session, conversation_id)
        if not everyone:
            raise NotFound("conversation")
        access = access_of(conversation_id, everyone)
        participants = [p for p in everyone if sender_unit_id is None or p.unit_id != sender_unit_id]
        await store.lock_feed(session)
        now = self.deps.clock()
        message_id = uuid.uuid4()
        row = FeedEvent(conversation_id=conversation_id, message_id=message_id, kind="message", at=now)
        session.add(row)
        await session.flush()
        message = Message(
            id=message_id,
            conversation_id=conversation_id,
            seq=row.seq,
            sender_user_id=sender.user_id if sender else None,
            sender_unit_id=sender_unit_id,
            client_id=uuid.uuid5(SYSTEM_CLIENT_NAMESPACE, str(message_id)),
            kind="system",
            system_kind=kind[:40],
            priority="normal",
            ack_required=bool(must_ack),
            reply_to_id=None,
            attachment_ids=[],
            created_at=now,
            version=1,
        )
        sealed = self.deps.envelope.seal_text(json.dumps(data), body_aad(message))
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
                needs_ack=p.unit_id in must_ack,
                escalation_level=0,
            )
            for p in participants
        ]
        session.add_all(receipts)
        await store.bump_conversations(session, {conversation_id: row.seq})
        out = self.renderer.message_out(message, receipts, [], {sender.user_id: sender.display_name} if sender else {})

        async def announce() -> None:
            await self.deps.notifier.emit("message:new", out.model_dump(mode="json"), rooms_of(access))
            for unit_id in {p.unit_id for p in participants if p.unit_id is not None}:
                self.inbox.changed(unit_id)  # unread (and, for `must_ack`, unacknowledged) counts

        after_commit(session, announce)
        return message_id
