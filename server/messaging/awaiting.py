"""Rendering of "Väntar på kvittens": what a unit sent that still waits for acknowledgement."""

from __future__ import annotations

import uuid

from server.messaging.models import Conversation, Message, Receipt
from server.messaging.schemas import AwaitingList, AwaitingMessage, AwaitingRecipient, EscalationRouteOut, UserRef


def _ref(user_id: uuid.UUID | None, names: dict[uuid.UUID, str]) -> UserRef | None:
    return None if user_id is None else UserRef(id=user_id, name=names.get(user_id, ""))


def _recipient(receipt: Receipt, names: dict[uuid.UUID, str], units: dict[uuid.UUID, str]) -> AwaitingRecipient:
    route = receipt.escalation_route
    return AwaitingRecipient(
        unit_id=receipt.unit_id,
        unit_name=units.get(receipt.unit_id) if receipt.unit_id else None,
        user_id=receipt.user_id,
        delivered_at=receipt.delivered_at,
        read_at=receipt.read_at,
        claimed_by=_ref(receipt.claimed_by_user_id, names),
        escalated_at=receipt.escalated_at,
        escalation_level=receipt.escalation_level,
        escalation_route=EscalationRouteOut.model_validate(route) if route else None,
    )


def awaiting_out(
    unit_id: uuid.UUID,
    rows: list[tuple[Message, Conversation, list[Receipt]]],
    names: dict[uuid.UUID, str],
    units: dict[uuid.UUID, str],
) -> AwaitingList:
    """`rows` come sorted by the store (urgent, escalation level, longest wait); the order is kept."""
    return AwaitingList(
        unit_id=unit_id,
        items=[
            AwaitingMessage(
                message_id=message.id,
                conversation_id=conversation.id,
                subject=conversation.subject,
                case_ref=conversation.case_ref,
                priority="urgent" if message.priority == "urgent" else "normal",
                sender=_ref(message.sender_user_id, names),
                sent_at=message.created_at,
                escalation_level=max((r.escalation_level for r in receipts), default=0),
                waiting_for=[_recipient(r, names, units) for r in receipts],
            )
            for message, conversation, receipts in rows
        ],
    )
