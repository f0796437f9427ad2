"""Deviation reports: no patient data, only the reporter's own contact details (docs/deviations.md)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, UTCDateTime, new_id, utcnow


class DeviationReport(Base):
    __tablename__ = "deviation_reports"
    __table_args__ = (Index("ix_deviation_reports_category_occurred_on", "category", "occurred_on"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    reporter_user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    reporter_unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id"))
    reporter_name: Mapped[str] = mapped_column(String(200))
    reporter_phone: Mapped[str | None] = mapped_column(String(40))
    reporter_email: Mapped[str | None] = mapped_column(String(254))
    category: Mapped[str] = mapped_column(String(40))
    occurred_on: Mapped[date] = mapped_column(Date)
    organisation_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    unit_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    route_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # a directory contact route that did not answer
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="inskickad")
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
