"""Message and receipt rows being created, without ORM instrumentation, and the associated data that
binds an encrypted body to its row."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from server.core.envelope import associated_data
from server.messaging.models import Message, MessageRevision, Receipt


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


def body_aad(message: AnyMessage) -> bytes:
    return associated_data("messages", message.id, message.conversation_id, message.version)


def revision_aad(revision: MessageRevision, conversation_id: uuid.UUID) -> bytes:
    return associated_data("message_revisions", revision.id, conversation_id, revision.version)
