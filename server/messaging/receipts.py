"""What recipients and senders do to a sent message: read, acknowledge, claim / release, return as
misdirected (receipts, with `receipt` and `message:updated` events), and edit / retract (the earlier
text kept encrypted, readable through the audited history)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from server.audit.service import record
from server.core import policy
from server.core.envelope import Sealed
from server.core.errors import Conflict, Forbidden, NotFound, Problem
from server.core.principal import Principal
from server.core.realtime import unit_room, user_room
from server.messaging import store
from server.messaging.access import Access, open_conversation, rooms_of
from server.messaging.deps import Deps
from server.messaging.escalation import Escalator
from server.messaging.inbox import Inbox
from server.messaging.models import FeedEvent, Message, MessageRevision, Receipt
from server.messaging.rendering import Renderer, user_ref
from server.messaging.rows import body_aad, revision_aad
from server.messaging.rules import ConversationAccess, RecipientRef
from server.messaging.schemas import MessageOut, ReceiptEvent, UserRef


class Receipts:
    def __init__(self, deps: Deps, access: Access, renderer: Renderer, inbox: Inbox, escalation: Escalator) -> None:
        self.deps = deps
        self.access = access
        self.renderer = renderer
        self.inbox = inbox
        self.escalation = escalation

    async def emit_receipt(
        self, receipt: Receipt, kind: str, by: UserRef | None, at: datetime, access: ConversationAccess
    ) -> None:
        notifier = self.deps.notifier
        payload = ReceiptEvent(
            message_id=receipt.message_id,
            conversation_id=receipt.conversation_id,
            kind=kind,
            unit_id=receipt.unit_id,
            user_id=receipt.user_id,
            by=by,
            at=at,
        ).model_dump(mode="json")
        if kind == "read" and not self.deps.config.read_receipt_names:
            # Within policy: the reader's own unit sees who read; everybody else only the unit and time.
            own = (
                [unit_room(receipt.unit_id)]
                if receipt.unit_id
                else [user_room(receipt.user_id)]
                if receipt.user_id
                else []
            )
            await notifier.emit("receipt", payload, own)
            others = [room for room in rooms_of(access) if room not in own]
            if others:
                await notifier.emit("receipt", {**payload, "by": None}, others)
            return
        await notifier.emit("receipt", payload, rooms_of(access))

    async def mark_read(self, principal: Principal, conversation_id: uuid.UUID, up_to: int) -> int:
        access = await self.access.require(principal, "conversation.read", conversation_id)
        now = self.deps.clock()
        async with self.deps.write_transaction() as session:
            await store.lock_feed(session)
            await open_conversation(session, principal, conversation_id, access)
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
            await self.emit_receipt(receipt, "read", user_ref(principal.user_id, names), now, access)
        for unit_id in {r.unit_id for r in changed if r.unit_id}:
            self.inbox.changed(unit_id)
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
        now = self.deps.clock()
        async with self.deps.write_transaction() as session:
            message = await session.get(Message, message_id)
            if message is None:
                await self.access.audit_denied(principal, action, "message", message_id)
                raise NotFound("message")
            access = await self.access.access(message.conversation_id)
            if not policy.allowed(principal, "conversation.read", access):
                await self.access.audit_denied(principal, action, "message", message_id)
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
                await self.escalation.cancel(session, [r.id for r in changed])
            out = (await self.renderer.render(session, [message], viewer=principal))[0]
        by = UserRef(id=principal.user_id, name=principal.display_name)
        for receipt in changed:
            await self.emit_receipt(receipt, receipt_kind, by, now, access)
        if changed:
            await self.deps.notifier.emit("message:updated", out.model_dump(mode="json"), rooms_of(access))
            for unit_id in {r.unit_id for r in receipts if r.unit_id} | ({message.sender_unit_id} - {None}):
                self.inbox.changed(unit_id)  # type: ignore[arg-type]
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
        deps = self.deps
        config = deps.config
        if body is not None and len(body) > config.max_body_chars:
            raise Problem(
                "body_too_long", f"A message can hold at most {config.max_body_chars} characters.", status=422
            )
        now = deps.clock()
        action = "message.edit" if body is not None else "message.retract"
        async with deps.write_transaction() as session:
            message = await session.get(Message, message_id)
            access = await self.access.access(message.conversation_id) if message else None
            if message is None or access is None or not policy.allowed(principal, "conversation.read", access):
                await self.access.audit_denied(principal, action, "message", message_id)
                raise NotFound("message")
            if not policy.allowed(principal, "message.edit", message.sender_user_id) or message.kind != "text":
                raise Forbidden("Only the sender can edit or retract a message.")
            if message.retracted_at is not None:
                raise Conflict("retracted", "This message has been retracted and cannot change.")
            if now - message.created_at > timedelta(minutes=config.edit_window_minutes):
                raise Conflict(
                    "edit_window_closed",
                    f"Messages can be changed only within {config.edit_window_minutes} minutes. "
                    "Send a new message instead.",
                )
            if await store.recipient_responded(session, message.id):
                # Someone acted on this text ("kvitterat av" must stay true of what they saw): a correction
                # is a new message replying to this one; this one and its earlier versions stay as they are.
                raise Conflict(
                    "recipient_responded",
                    "A recipient has already read, acknowledged or claimed this message, so it can no longer be "
                    "edited or retracted. Send a correction: a new message replying to this one.",
                )
            await store.lock_feed(session)
            envelope = deps.envelope
            old_text = envelope.open_text(Sealed(message.body_kek, message.body_enc), body_aad(message))
            revision = MessageRevision(
                id=uuid.uuid4(),
                message_id=message.id,
                version=message.version,
                action="edit" if body is not None else "retract",
                by_user_id=principal.user_id,
                at=now,
            )
            kept = envelope.seal_text(old_text, revision_aad(revision, message.conversation_id))
            revision.body_kek, revision.body_enc = kept.kek_id, kept.blob
            session.add(revision)
            message.version += 1
            if body is None:
                message.retracted_at = now
                text = ""  # nothing readable remains in the message row
            else:
                message.edited_at = now
                text = body
            sealed = envelope.seal_text(text, body_aad(message))
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
            out = (await self.renderer.render(session, [message], viewer=principal))[0]
        await deps.notifier.emit("message:updated", out.model_dump(mode="json"), rooms_of(access))
        return out

    async def revisions(self, principal: Principal, message_id: uuid.UUID) -> list[tuple[int, str, datetime, str]]:
        """Earlier texts of a message for the record: (version, action, at, text). Audited."""
        async with self.deps.db.transaction() as session:
            message = await session.get(Message, message_id)
            if message is None:
                raise NotFound("message")
            access = await self.access.access(message.conversation_id)
            if not policy.allowed(principal, "conversation.read", access):
                await self.access.audit_denied(principal, "message.history", "message", message_id)
                raise NotFound("message")
            revisions = await store.revisions_of(session, message_id)
            await record(
                session, actor=principal, action="message.history", object_type="message", object_id=message_id
            )
            return [
                (
                    r.version,
                    r.action,
                    r.at,
                    self.deps.envelope.open_text(
                        Sealed(r.body_kek, r.body_enc), revision_aad(r, message.conversation_id)
                    ),
                )
                for r in revisions
            ]
