"""Messaging tables: conversations, participants, messages (encrypted), receipts, escalations, feed.

Bodies, earlier revisions, attachment bytes, conversation subjects and case references are stored only as
envelope ciphertext
(server.core.envelope); `*_kek` columns name the KEK that wraps each record's data key.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, UTCDateTime, new_id, utcnow
from server.core.sealed_columns import SealedText, sealed_model

SEQ = BigInteger().with_variant(Integer, "sqlite")


@sealed_model
class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(10))  # units | direct
    # Subject and case reference sealed (server/core/sealed_columns.py); `case_ref_hmac` is the blind index.
    subject_kek: Mapped[str | None] = mapped_column(String(64))
    subject_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    subject: SealedText[str] = SealedText()
    case_ref_kek: Mapped[str | None] = mapped_column(String(64))
    case_ref_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    case_ref_hmac: Mapped[str | None] = mapped_column(String(64), index=True)
    case_ref: SealedText[str | None] = SealedText(indexed=True)
    created_by_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_by_unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seq: Mapped[int] = mapped_column(SEQ, default=0)


class Participant(Base):
    """A unit or a user taking part in a conversation (exactly one of the two is set)."""

    __tablename__ = "conversation_participants"
    __table_args__ = (
        UniqueConstraint("conversation_id", "unit_id", "user_id", name="uq_conversation_participants_member"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id"), index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), index=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("sender_user_id", "client_id", name="uq_messages_sender_client"),
        Index("ix_messages_conversation_seq", "conversation_id", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(SEQ, unique=True)  # feed position of its creation
    sender_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))  # None: system notice
    sender_unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id"))
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(10), default="text")  # text | system
    system_kind: Mapped[str | None] = mapped_column(String(40))
    priority: Mapped[str] = mapped_column(String(10), default="normal")  # normal | urgent
    ack_required: Mapped[bool] = mapped_column(Boolean, default=False)
    reply_to_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    attachment_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retracted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    body_kek: Mapped[str] = mapped_column(String(40), index=True)
    body_enc: Mapped[bytes] = mapped_column(LargeBinary)


class MessageRevision(Base):
    """The text a message had before an edit or retraction, kept for the record (encrypted)."""

    __tablename__ = "message_revisions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(10))  # edit | retract
    by_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    body_kek: Mapped[str] = mapped_column(String(40), index=True)
    body_enc: Mapped[bytes] = mapped_column(LargeBinary)


# Conditions of the partial indexes on receipts; a query uses one only if its WHERE carries the same terms.
RECEIPT_OPEN = "returned_at IS NULL AND (read_at IS NULL OR acknowledged_at IS NULL)"
RECEIPT_ESCALATED_OPEN = "escalated_at IS NOT NULL AND acknowledged_at IS NULL AND returned_at IS NULL"


class Receipt(Base):
    """Per message and recipient (unit or user): delivered, read, acknowledged, claimed, returned, escalated."""

    __tablename__ = "message_receipts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id"), index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), index=True)
    needs_ack: Mapped[bool] = mapped_column(Boolean, default=False)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_by_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    returned_by_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    escalation_route: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    # The inbox counts run about once a second per busy unit: partial indexes keep them proportional to
    # what is still open, not to the unit's whole history of read and acknowledged messages.
    __table_args__ = (
        Index(
            "ix_message_receipts_open_unit",
            "unit_id",
            sqlite_where=text(RECEIPT_OPEN),
            postgresql_where=text(RECEIPT_OPEN),
        ),
        Index(
            "ix_message_receipts_escalated_open",
            "message_id",
            sqlite_where=text(RECEIPT_ESCALATED_OPEN),
            postgresql_where=text(RECEIPT_ESCALATED_OPEN),
        ),
    )


class FeedEvent(Base):
    """The ordered change feed behind `sync`: one row per new message, update, receipt or escalation."""

    __tablename__ = "message_feed"

    seq: Mapped[int] = mapped_column(SEQ, primary_key=True, autoincrement=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    message_id: Mapped[uuid.UUID] = mapped_column(Uuid)  # not indexed: nothing looks feed rows up by message
    kind: Mapped[str] = mapped_column(String(20))  # message | updated | receipt | escalation
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Attachment(Base):
    __tablename__ = "message_attachments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    uploader_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    chunk_count: Mapped[int] = mapped_column(Integer)
    kek_id: Mapped[str] = mapped_column(String(40), index=True)
    wrapped_dek: Mapped[bytes] = mapped_column(LargeBinary)
    nonce_prefix: Mapped[bytes] = mapped_column(LargeBinary)
    name_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AttachmentChunk(Base):
    __tablename__ = "message_attachment_chunks"

    attachment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("message_attachments.id", ondelete="CASCADE"), primary_key=True
    )
    idx: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class UnitMessagingSettings(Base):
    """Per-unit acknowledgement deadlines (minutes of open time)."""

    __tablename__ = "unit_messaging_settings"

    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), primary_key=True)
    urgent_minutes: Mapped[int] = mapped_column(Integer)
    normal_minutes: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
