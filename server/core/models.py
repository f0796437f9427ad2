"""Tables shared by several domains: organisations, units, users, memberships, tokens, audit.

Domain-specific tables live in each domain's own `models.py`; every table is created only by
Alembic migrations (server/migrations).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String, Uuid, false
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, UTCDateTime, new_id, utcnow
from server.core.sealed_columns import SealedText, sealed_model


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # region | municipality | private
    org_number: Mapped[str | None] = mapped_column(String(10), unique=True)
    hsa_id: Mapped[str | None] = mapped_column(String(31), unique=True)
    municipality_code: Mapped[str | None] = mapped_column(String(4))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Added by the directory (0003_directory).
    source: Mapped[str] = mapped_column(String(20), default="manual")  # manual | import | seed
    updated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Unit(Base):
    __tablename__ = "units"
    # (folded name, id): search's prefix tier and keyset listing read it in order (0003_directory).
    __table_args__ = (Index("ix_units_search_name", "search_name", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("units.id"))
    name: Mapped[str] = mapped_column(String(200))
    unit_type: Mapped[str] = mapped_column(String(40))
    hsa_id: Mapped[str | None] = mapped_column(String(31), unique=True)
    municipality_code: Mapped[str | None] = mapped_column(String(4), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Added by the directory (0003_directory).
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    street: Mapped[str | None] = mapped_column(String(200))
    postal_code: Mapped[str | None] = mapped_column(String(5))
    town: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(1000))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    # Case- and accent-folded name (server.directory.text.fold): exact and prefix search, stable sort.
    search_name: Mapped[str] = mapped_column(String(200), default="")
    # Folded name, aliases, town, HSA-id and organisation: the trigram-indexed text on PostgreSQL.
    search_text: Mapped[str] = mapped_column(String(2000), default="")
    # Stable 63-bit key derived from the id: the rowid of the unit's row in the SQLite FTS5 index.
    search_key: Mapped[int | None] = mapped_column(BigInteger, unique=True, index=True)
    source: Mapped[str] = mapped_column(String(20), default="manual")  # manual | import | seed | generated
    updated_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class User(Base):
    """A person, keyed by the identity provider that vouches for them: (issuer, subject)."""

    __tablename__ = "users"
    __table_args__ = (Index("uq_users_issuer_subject", "issuer", "subject", unique=True),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    issuer: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(255))
    login: Mapped[str | None] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    hsa_id: Mapped[str | None] = mapped_column(String(31))
    system_roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Membership(Base):
    __tablename__ = "memberships"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(20), default="member")  # member | unit_admin
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Published in the directory (FHIR Practitioner/PractitionerRole) only after a decision (0018).
    public: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    role_title: Mapped[str | None] = mapped_column(String(100))  # e.g. "Sjuksköterska"
    role_code: Mapped[str | None] = mapped_column(String(40))
    # The PractitionerRole id: given on first publication, kept when unpublished and published again.
    public_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, unique=True, index=True)


class AccessToken(Base):
    """Personal access token; only its SHA-256 is stored."""

    __tablename__ = "access_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


@sealed_model
class AuditEvent(Base):
    """Append-only access log (PDL / HSLF-FS 2016:40): who did what to which object, when, allowed or not.

    Never holds message text. `chain_pos`/`prev_hash`/`hash` form a SHA-256 chain filled in by the audit
    chainer (server/audit/chain.py, docs/audit.md); rows are inserted with them empty.
    """

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    actor_unit_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(60))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(80), index=True)
    # The case reference, sealed (server/core/sealed_columns.py); `case_ref_hmac` is its blind index.
    case_ref_kek: Mapped[str | None] = mapped_column(String(64))
    case_ref_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    case_ref_hmac: Mapped[str | None] = mapped_column(String(64), index=True)
    case_ref: SealedText[str | None] = SealedText(indexed=True, bound=False)
    outcome: Mapped[str] = mapped_column(String(10), default="allowed")  # allowed | denied
    ip: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
    # Position in the hash chain (1, 2, ...), assigned by the single chainer; NULL = not yet chained.
    chain_pos: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), unique=True, index=True)


class Lease(Base):
    """A named, expiring ownership claim (server/core/leases.py): one node at a time runs a singleton job."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Deadline(Base):
    """A durable timer of the deadline engine (server/core/deadlines.py): at `due_at`, fire its kind's handler."""

    __tablename__ = "deadlines"
    __table_args__ = (
        Index("ix_deadlines_state_due", "state", "due_at"),
        Index("ix_deadlines_kind_reference", "kind", "reference"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(40))  # e.g. messaging.escalation, discharge.sip_call
    reference: Mapped[str] = mapped_column(String(64))  # what it is about (a receipt id, a case id)
    unit_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the unit that must act
    level: Mapped[int] = mapped_column(Integer, default=1)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | fired | cancelled
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
