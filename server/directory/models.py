"""Directory tables: contact routes with opening hours, closures, endpoints, affiliations, version history.

Organisations and units are core tables (server/core/models.py); migration 0003_directory extends them.
The SQLite FTS5 index (`unit_search`, kept in sync by triggers on `units`) and the PostgreSQL trigram
index are created by the migration only and are not part of the metadata (see UNMANAGED_PREFIX).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Table, Time, Uuid, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.core.db import Base, UTCDateTime, new_id, utcnow
from server.core.models import Unit
from server.directory.text import fold, search_key

# Tables and indexes whose names start with this are dialect-specific search structures managed by
# the migration (FTS5 virtual tables and their shadow tables on SQLite, a GIN index on PostgreSQL).
UNMANAGED_PREFIX = "unit_search"
Base.metadata.info.setdefault("unmanaged_prefixes", set()).add(UNMANAGED_PREFIX)


class ContactRoute(Base):
    """A way to reach a unit (kontaktväg): purpose, channel, value, audience, rank and opening hours."""

    __tablename__ = "contact_routes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(200))
    value: Mapped[str] = mapped_column(String(300))
    audience: Mapped[str] = mapped_column(String(10), default="staff")
    rank: Mapped[int] = mapped_column(Integer, default=100)
    note: Mapped[str | None] = mapped_column(String(1000))
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("directory_endpoints.id", ondelete="SET NULL"))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    hours: Mapped[list[TimeSpan]] = relationship(
        order_by="TimeSpan.position", cascade="all, delete-orphan", lazy="selectin"
    )


class TimeSpan(Base):
    """HSA-style TimeSpan: weekdays (1 = Monday ... 7 = Sunday), times or all day, date bounds, holiday rule."""

    __tablename__ = "time_spans"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    route_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contact_routes.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    from_day: Mapped[int] = mapped_column(Integer)
    to_day: Mapped[int] = mapped_column(Integer)
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    from_time: Mapped[time | None] = mapped_column(Time)
    to_time: Mapped[time | None] = mapped_column(Time)
    from_date: Mapped[date | None] = mapped_column(Date)
    to_date: Mapped[date | None] = mapped_column(Date)
    holiday_rule: Mapped[str] = mapped_column(String(20), default="normal")
    comment: Mapped[str | None] = mapped_column(String(200))


class Closure(Base):
    """A temporary change: `closure` makes a unit (or one route) unreachable; `notice` only informs."""

    __tablename__ = "directory_closures"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    route_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contact_routes.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10), default="closure")  # closure | notice
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class Endpoint(Base):
    """A technical address (Brygga inbox, video room, FHIR base) owned by an organisation or a unit."""

    __tablename__ = "directory_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    organisation_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    connection_type: Mapped[str] = mapped_column(String(40))
    address: Mapped[str] = mapped_column(String(500))
    payload_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | suspended | off
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Affiliation(Base):
    """Cooperation between two parties (organisations or units), e.g. a ward and a municipality."""

    __tablename__ = "directory_affiliations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    primary_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)  # organisation or unit id
    participating_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    role: Mapped[str] = mapped_column(String(60))
    period_start: Mapped[date | None] = mapped_column(Date)
    period_end: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DirectoryVersion(Base):
    """Append-only version history of every directory object (backs /history, FHIR vread and _history)."""

    __tablename__ = "directory_versions"
    __table_args__ = (
        Index("uq_directory_versions_object", "resource_type", "resource_id", "version", unique=True),
        Index("ix_directory_versions_type_at", "resource_type", "at"),
    )

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    resource_type: Mapped[str] = mapped_column(String(20))  # organisation | unit | route | endpoint | affiliation
    resource_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    version: Mapped[int] = mapped_column(Integer)
    operation: Mapped[str] = mapped_column(String(10))  # create | update | delete
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    diff: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class (for bulk executemany inserts)."""
    return Base.metadata.tables[model.__tablename__]


def search_columns(
    unit_id: uuid.UUID, name: str, aliases: list[str] | None, town: str | None, hsa_id: str | None
) -> dict[str, Any]:
    """The folded search columns of a unit: name, name + aliases + town, and the FTS rowid.

    HSA-ids are not tokenised (they would flood the typo vocabulary); search matches them on the
    unique `units.hsa_id` index instead.
    """
    parts = [name, *(aliases or []), town or ""]
    return {
        "search_name": fold(name)[:200],
        "search_text": fold(" ".join(parts))[:2000],
        "search_key": search_key(unit_id.int),
    }


def unit_search_fields(unit: Unit) -> None:
    if unit.id is None:
        unit.id = new_id()
    for key, value in search_columns(unit.id, unit.name, unit.aliases, unit.town, unit.hsa_id).items():
        setattr(unit, key, value)


@event.listens_for(Unit, "before_insert")
@event.listens_for(Unit, "before_update")
def _derive_search_fields(_mapper: Any, _connection: Any, unit: Unit) -> None:
    unit_search_fields(unit)
