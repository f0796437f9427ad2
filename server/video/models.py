"""Video meeting tables: meetings, who is invited, and guest links (secrets stored only as hashes; titles
and guest names sealed)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, UTCDateTime, new_id, utcnow
from server.core.sealed_columns import SealedText, sealed_model


@sealed_model
class Meeting(Base):
    __tablename__ = "video_meetings"
    __table_args__ = (Index("ix_video_meetings_organiser_unit_id_starts_at", "organiser_unit_id", "starts_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # Sealed (server/core/sealed_columns.py): a title may name the patient's case ("SIP <case ref>").
    title_kek: Mapped[str | None] = mapped_column(String(64))
    title_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    title: SealedText[str] = SealedText()
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    organiser_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    organiser_unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"))
    # The messaging conversation the meeting was created from (no FK: messaging owns that table).
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    status: Mapped[str] = mapped_column(String(20), default="scheduled")  # scheduled | ended | cancelled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MeetingUnit(Base):
    """An invited unit: its staff join directly."""

    __tablename__ = "video_meeting_units"

    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("video_meetings.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), primary_key=True, index=True)


class MeetingUser(Base):
    """An individually invited user (e.g. a doctor outside the invited units)."""

    __tablename__ = "video_meeting_users"

    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("video_meetings.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)


@sealed_model
class GuestLink(Base):
    """A single-use, expiring, revocable invitation for a patient or relative.

    `secret_hash` is SHA-256 of the link secret; `code_hash` binds the one-time code to that secret,
    so neither can be recovered from the table. Redeeming mints a guest session (`session_hash`).
    """

    __tablename__ = "video_guest_links"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("video_meetings.id", ondelete="CASCADE"), index=True)
    label_kek: Mapped[str | None] = mapped_column(String(64))
    label_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    label: SealedText[str | None] = SealedText()  # the host's note, e.g. "Anhörig"; sealed: it may name people
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    guest_name_kek: Mapped[str | None] = mapped_column(String(64))
    guest_name_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    guest_name: SealedText[str | None] = SealedText()  # sealed (server/core/sealed_columns.py)
    session_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    session_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Admission(Base):
    """Someone who knocked on a meeting (not invited): waiting, or let in by a host.

    Durable so that the waiting room and admissions survive the node that ran the room: after a
    failover a guest who was let in joins again without a second admission, and a waiting guest is
    still waiting. `subject` is the user id, or the guest link id for a guest.
    """

    __tablename__ = "video_admissions"

    meeting_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("video_meetings.id", ondelete="CASCADE"), primary_key=True)
    subject: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    state: Mapped[str] = mapped_column(String(20))  # waiting | admitted
    participant_id: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
