"""Signed checkpoints of the audit hash chain (the chain itself lives on `audit_events`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, UTCDateTime


class AuditCheckpoint(Base):
    """Ed25519 signature over (chain_pos, seq, hash, at): fixes the chain up to that row."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    chain_pos: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), index=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(128))
