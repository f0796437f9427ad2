"""Tables of the built-in OpenID Provider: local credentials, registered clients, codes, provider sessions.

People themselves live in the core `users` table (issuer "local"); this holds only what the
provider needs to authenticate them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from server.core.db import Base, UTCDateTime, utcnow
from server.core.envelope import register_sealed


class OpAccount(Base):
    __tablename__ = "op_accounts"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))  # argon2id
    # The TOTP secret, sealed with the key-encryption key like message bodies (auth/accounts.py).
    totp_kek: Mapped[str | None] = mapped_column(String(64))
    totp_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_last_step: Mapped[int] = mapped_column(Integer, default=0)  # a TOTP code works once
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OpClient(Base):
    __tablename__ = "op_clients"

    client_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_hash: Mapped[str | None] = mapped_column(String(64))  # SHA-256; None = public client (PKCE only)
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OpCode(Base):
    """An authorisation code (stored as SHA-256), single use, valid for at most 60 seconds."""

    __tablename__ = "op_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    redirect_uri: Mapped[str] = mapped_column(String(500))
    scope: Mapped[str] = mapped_column(String(300))
    nonce: Mapped[str | None] = mapped_column(String(255))
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(10))
    sid: Mapped[str] = mapped_column(String(64))
    auth_time: Mapped[int] = mapped_column(Integer)
    acr: Mapped[str] = mapped_column(String(100))
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class OpSession(Base):
    """The provider's own login session (cookie `brygga_idp`), and which clients it signed in to."""

    __tablename__ = "op_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    sid: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_time: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acr: Mapped[str] = mapped_column(String(100))
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    client_ids: Mapped[list[str]] = mapped_column(JSON, default=list)


register_sealed("totp secrets", OpAccount.totp_kek)
