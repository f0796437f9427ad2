"""Discharge tables: cases, the units involved, milestones, clock escalations and per-region clock rules.

A case never holds a personal identity number: `case_ref` is the source system's pseudonymous
reference (sealed, looked up by its blind index), and `patient_key` (only for linking readmissions)
is a keyed hash (HMAC-SHA-256, key in the pseudonym key file). `discharge_month`, `ready_days`,
`payment_days` and `readmitted_7d` are derived when the case is discharged or a readmission is
linked, so the monthly statistics are one GROUP BY (docs/discharge.md).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, UTCDateTime, new_id, utcnow
from server.core.sealed_columns import SealedText, sealed_model


@sealed_model
class DischargeCase(Base):
    __tablename__ = "discharge_cases"
    __table_args__ = (
        # Covers the monthly statistics: the GROUP BY reads only this index, never the wide rows.
        Index(
            "ix_discharge_cases_statistics",
            "discharge_month",
            "municipality_code",
            "district",
            "age_band",
            "readmitted_7d",
            "ready_days",
            "payment_days",
        ),
        Index("ix_discharge_cases_patient_key_admitted_at", "patient_key", "admitted_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # The case reference, sealed (server/core/sealed_columns.py); unique by its blind index.
    case_ref_kek: Mapped[str | None] = mapped_column(String(64))
    case_ref_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    case_ref_hmac: Mapped[str | None] = mapped_column(String(64), unique=True)
    case_ref: SealedText[str] = SealedText(indexed=True)
    municipality_code: Mapped[str] = mapped_column(String(4))
    district: Mapped[str | None] = mapped_column(String(40))  # Stockholm city's stadsdelsområde
    age_band: Mapped[str] = mapped_column(String(8))  # under_65 | 65_plus
    ward_unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"), index=True)
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the case thread (messaging owns it)
    status: Mapped[str] = mapped_column(String(12), default="admitted")  # admitted | ready | discharged
    unplanned: Mapped[bool] = mapped_column(Boolean, default=True)  # the admission was not planned
    patient_key: Mapped[str | None] = mapped_column(String(64))
    admitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    admission_notice_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    planning_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sip_called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sip_held_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    payment_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    discharged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    discharge_month: Mapped[str | None] = mapped_column(String(7))  # YYYY-MM (Stockholm time)
    ready_days: Mapped[int] = mapped_column(Integer, default=0)
    payment_days: Mapped[int] = mapped_column(Integer, default=0)
    readmitted_7d: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)


class CaseUnit(Base):
    """A unit involved in a case: home care, social services, municipal health care, primary care."""

    __tablename__ = "discharge_case_units"

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("discharge_cases.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(30))


class Milestone(Base):
    """A typed milestone, sent as a structured message in the case thread (acknowledged there)."""

    __tablename__ = "discharge_milestones"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("discharge_cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)  # e.g. when the patient is ready
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    by_unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id"))
    message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    meeting_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class ClockEscalation(Base):
    """A missed clock escalated to a unit's contact route (or the payment clock starting)."""

    __tablename__ = "discharge_clock_escalations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("discharge_cases.id", ondelete="CASCADE"), index=True)
    clock: Mapped[str] = mapped_column(String(30))
    level: Mapped[int] = mapped_column(Integer)
    unit_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    route: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ClockRules(Base):
    """A region's clock rules (defaults in server/discharge/clocks.py, sources in docs/discharge.md)."""

    __tablename__ = "discharge_clock_rules"

    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    admission_notice_hours: Mapped[int] = mapped_column(Integer)
    sip_call_days: Mapped[int] = mapped_column(Integer)
    payment_days: Mapped[int] = mapped_column(Integer)
    payment_day_kind: Mapped[str] = mapped_column(String(10))  # calendar | weekdays
    escalation_minutes: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
