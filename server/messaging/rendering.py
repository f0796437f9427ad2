"""The API view of messages: `message_out` (body opened, state derived from the receipts, names
filled in from a per-node cache), and `render` = `load` (the SQL) + `build` (CPU only)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.envelope import Envelope, KeyFileError, Sealed
from server.core.principal import Principal
from server.messaging import store
from server.messaging.attachments import attachment_out
from server.messaging.config import MessagingConfig
from server.messaging.models import Attachment, Message, Receipt
from server.messaging.rows import AnyMessage, AnyReceipt, body_aad
from server.messaging.rules import RecipientRef
from server.messaging.schemas import EscalationRouteOut, MessageOut, RecipientState, SystemNotice, UserRef

log = logging.getLogger("brygga.messaging")


@dataclass
class Loaded:
    messages: list[Message]
    receipts: dict[uuid.UUID, list[Receipt]]
    attachments: dict[uuid.UUID, list[Attachment]]
    names: dict[uuid.UUID, str]


def user_ref(user_id: uuid.UUID | None, names: dict[uuid.UUID, str]) -> UserRef | None:
    return None if user_id is None else UserRef(id=user_id, name=names.get(user_id, ""))


def message_state(receipts: Sequence[AnyReceipt]) -> str:
    if any(r.returned_at for r in receipts) and all(r.returned_at for r in receipts):
        return "returned"
    if any(r.needs_ack for r in receipts):
        open_receipts = [r for r in receipts if r.needs_ack and not r.acknowledged_at and not r.returned_at]
        if not open_receipts:
            return "acknowledged"
        if any(r.escalated_at for r in open_receipts):
            return "escalated"
        return "open"
    return "sent"


class Renderer:
    def __init__(self, envelope: Envelope, config: MessagingConfig) -> None:
        self.envelope = envelope
        self.config = config
        self.known_names: dict[uuid.UUID, str] = {}

    async def names(self, session: AsyncSession, ids: list[uuid.UUID | None]) -> dict[uuid.UUID, str]:
        wanted = {i for i in ids if i is not None}
        missing = [i for i in wanted if i not in self.known_names]
        if missing:
            self.known_names.update(await store.user_names(session, missing))
        return {i: self.known_names.get(i, "") for i in wanted}

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
            read_by=user_ref(receipt.read_by_user_id, names) if show_reader else None,
            acknowledged_at=receipt.acknowledged_at,
            acknowledged_by=user_ref(receipt.acknowledged_by_user_id, names),
            claimed_at=receipt.claimed_at,
            claimed_by=user_ref(receipt.claimed_by_user_id, names),
            returned_at=receipt.returned_at,
            returned_by=user_ref(receipt.returned_by_user_id, names),
            escalated_at=receipt.escalated_at,
            escalation_level=receipt.escalation_level,
            escalation_route=EscalationRouteOut.model_validate(route) if route else None,
        )

    def _open_body(self, message: AnyMessage) -> str | None:
        """The message's text, or None (logged with its ids) when it cannot be opened with the key file."""
        try:
            return self.envelope.open_text(Sealed(message.body_kek, message.body_enc), body_aad(message))
        except (InvalidTag, InvalidUnwrap, KeyFileError, ValueError):
            log.error("message cannot be decrypted", extra={"message_id": str(message.id), "kek_id": message.body_kek})
            return None

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
                text = self._open_body(message)
            if text is None:  # one unreadable record must not hide the rest of a page
                ids = {"message_id": str(message.id), "kek_id": message.body_kek}
                system = SystemNotice(kind="unreadable", data=ids)
            elif message.kind == "system":
                system = SystemNotice(kind=message.system_kind or "notice", data=json.loads(text))
            else:
                body = text
        return MessageOut(
            id=message.id,
            conversation_id=message.conversation_id,
            seq=message.seq,
            event_seq=event_seq,
            client_id=message.client_id,
            sender=user_ref(message.sender_user_id, names),
            sender_unit_id=message.sender_unit_id,
            kind=message.kind,
            body=body,
            system=system,
            priority=message.priority,
            ack_required=message.ack_required,
            reply_to=message.reply_to_id,
            attachments=[attachment_out(self.envelope, a) for a in attachments],
            created_at=message.created_at,
            edited_at=message.edited_at,
            retracted_at=message.retracted_at,
            version=message.version,
            state=message_state(receipts),
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

    async def load(self, session: AsyncSession, messages: list[Message]) -> Loaded:
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
        return Loaded(messages, receipts, attachments, await self.names(session, people))

    def build(
        self, loaded: Loaded, viewer: Principal | None = None, event_seqs: dict[uuid.UUID, int] | None = None
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
