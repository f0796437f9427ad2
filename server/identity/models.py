"""Identity tables: browser sessions, the logout-token replay cache and the permission-change feed.

The built-in OpenID Provider keeps its own tables in `auth/models.py`; they are imported here so
Alembic sees every table through `server.<domain>.models`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

import auth.models  # noqa: F401  - the built-in provider's tables share this metadata
from server.core.db import Base, UTCDateTime, utcnow


class BrowserSession(Base):
    """A server-side session. The cookie holds a 256-bit random secret; only its SHA-256 is stored.

    A row without `user_id` is a pre-login session: it carries the OIDC `state`, `nonce` and PKCE
    verifier (`pending`) between /auth/login and /auth/callback and is replaced at login.
    """

    __tablename__ = "sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # absolute timeout
    issuer: Mapped[str | None] = mapped_column(String(300))
    idp_sid: Mapped[str | None] = mapped_column(String(255), index=True)  # the provider's `sid`
    acr: Mapped[str | None] = mapped_column(String(200))
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    id_token: Mapped[str | None] = mapped_column(String(8000))  # id_token_hint for RP-initiated logout
    pending: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    user_agent: Mapped[str | None] = mapped_column(String(300))


class MembershipAdminGrant(Base):
    """The explicit right to manage the unit memberships (which give access to care information) of one
    organisation, for someone who is not an administrator of the unit itself (PDL: administering the
    directory does not include it). Granted and revoked with `brygga membership-admin`, audited."""

    __tablename__ = "membership_admin_grants"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LogoutTokenSeen(Base):
    """Replay cache for back-channel logout tokens (`jti` per issuer), kept until the token expires."""

    __tablename__ = "logout_tokens_seen"

    issuer: Mapped[str] = mapped_column(String(300), primary_key=True)
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class IdentityChange(Base):
    """Feed of permission changes and logouts; every node polls it and updates its open sockets."""

    __tablename__ = "identity_changes"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(20))  # changed | logout
    session_hash: Mapped[str | None] = mapped_column(String(64))  # logout of one session only
