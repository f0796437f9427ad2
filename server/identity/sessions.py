"""Server-side browser sessions (framework-free): create, resolve with timeouts, rotate, destroy.

The cookie carries a 256-bit random secret; the database keeps only its SHA-256, so a database
leak does not hand out live sessions. A pre-login session (no user yet) carries the OIDC `state`,
`nonce` and PKCE verifier; logging in deletes it and creates a new session with a new id.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.models import User
from server.core.principal import Principal
from server.identity import tokens
from server.identity.models import BrowserSession, IdentityChange
from server.settings import Settings

PRELOGIN_TTL = timedelta(minutes=10)
TOUCH_INTERVAL = timedelta(seconds=30)  # last_seen is written at most this often per session


def new_secret() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Timeouts:
    idle: timedelta
    absolute: timedelta

    @classmethod
    def of(cls, settings: Settings) -> Timeouts:
        return cls(timedelta(minutes=settings.session_idle_minutes), timedelta(hours=settings.session_absolute_hours))


async def _insert(session: AsyncSession, now: datetime, lifetime: timedelta, **fields: Any) -> str:
    """Store a new session row under the hash of a fresh secret; returns the secret (the cookie value)."""
    secret = new_secret()
    row = BrowserSession(
        id_hash=hash_secret(secret),
        csrf_token=secrets.token_urlsafe(24),
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetime,
        **{"amr": [], "pending": {}, **fields},
    )
    session.add(row)
    await session.flush()
    return secret


async def create_prelogin(session: AsyncSession, now: datetime, pending: dict[str, Any]) -> str:
    return await _insert(session, now, PRELOGIN_TTL, user_id=None, pending=pending)


async def take_prelogin(session: AsyncSession, secret: str, now: datetime) -> dict[str, Any] | None:
    """Consume a pre-login session (single use) and return what it carried, if still valid."""
    if not secret:
        return None
    row = await session.get(BrowserSession, hash_secret(secret))
    if row is None or row.user_id is not None:
        return None
    await session.delete(row)
    await session.flush()
    if row.expires_at <= now:
        return None
    return dict(row.pending)


async def create_login_session(
    session: AsyncSession,
    now: datetime,
    timeouts: Timeouts,
    user_id: uuid.UUID,
    *,
    issuer: str,
    idp_sid: str | None,
    acr: str | None,
    amr: list[str],
    id_token: str | None,
    user_agent: str | None,
) -> str:
    return await _insert(
        session,
        now,
        timeouts.absolute,
        user_id=user_id,
        issuer=issuer,
        idp_sid=idp_sid,
        acr=acr,
        amr=amr,
        id_token=id_token,
        user_agent=(user_agent or "")[:300] or None,
    )


def session_is_live(row: BrowserSession, now: datetime, timeouts: Timeouts) -> bool:
    return row.user_id is not None and row.expires_at > now and row.last_seen_at + timeouts.idle > now


async def resolve(session: AsyncSession, secret: str, now: datetime, timeouts: Timeouts) -> Principal | None:
    """The principal behind a session cookie, or None (unknown, pre-login, timed out, user disabled)."""
    row = await session.get(BrowserSession, hash_secret(secret))
    if row is None or row.user_id is None:
        return None
    if not session_is_live(row, now, timeouts):
        await session.delete(row)
        return None
    user = await session.get(User, row.user_id)
    if user is None or user.disabled:
        return None
    if now - row.last_seen_at > TOUCH_INTERVAL:
        row.last_seen_at = now
    principal = await tokens.principal_for_user(session, user, auth_method="session", acr=row.acr)
    return replace(principal, session_id=row.id_hash, csrf_token=row.csrf_token, issuer=row.issuer)


async def live_session_hashes(session: AsyncSession, hashes: list[str], now: datetime, timeouts: Timeouts) -> set[str]:
    rows = await session.execute(select(BrowserSession).where(BrowserSession.id_hash.in_(hashes)))
    return {row.id_hash for row in rows.scalars() if session_is_live(row, now, timeouts)}


async def get_row(session: AsyncSession, id_hash: str) -> BrowserSession | None:
    return await session.get(BrowserSession, id_hash)


async def destroy(session: AsyncSession, id_hash: str) -> uuid.UUID | None:
    row = await session.get(BrowserSession, id_hash)
    if row is None:
        return None
    await session.delete(row)
    if row.user_id is not None:
        await record_change(session, row.user_id, "logout", session_hash=id_hash)
    return row.user_id


async def destroy_user_sessions(session: AsyncSession, user_id: uuid.UUID) -> int:
    result = await session.execute(delete(BrowserSession).where(BrowserSession.user_id == user_id))
    await record_change(session, user_id, "logout")
    return int(result.rowcount)  # type: ignore[attr-defined]


async def destroy_by_provider(
    session: AsyncSession, issuer: str, *, sid: str | None, user_id: uuid.UUID | None
) -> set[uuid.UUID]:
    """Back-channel logout: end the sessions from `issuer` matching the provider `sid` and/or user."""
    query = select(BrowserSession).where(BrowserSession.issuer == issuer, BrowserSession.user_id.is_not(None))
    if sid is not None:
        query = query.where(BrowserSession.idp_sid == sid)
    if user_id is not None:
        query = query.where(BrowserSession.user_id == user_id)
    users: set[uuid.UUID] = set()
    for row in (await session.execute(query)).scalars():
        await session.delete(row)
        assert row.user_id is not None
        users.add(row.user_id)
        await record_change(session, row.user_id, "logout", session_hash=row.id_hash)
    return users


async def purge_expired(session: AsyncSession, now: datetime, timeouts: Timeouts) -> None:
    await session.execute(
        delete(BrowserSession).where(
            (BrowserSession.expires_at <= now) | (BrowserSession.last_seen_at <= now - timeouts.idle)
        )
    )


async def record_change(
    session: AsyncSession, user_id: uuid.UUID, kind: str, *, session_hash: str | None = None
) -> None:
    """Tell every node (they poll this feed) that a user's permissions changed or a session ended."""
    session.add(IdentityChange(user_id=user_id, kind=kind, session_hash=session_hash))
    await session.flush()


async def changes_after(session: AsyncSession, seq: int) -> list[IdentityChange]:
    query = select(IdentityChange).where(IdentityChange.seq > seq).order_by(IdentityChange.seq)
    return list((await session.execute(query)).scalars())


async def last_change_seq(session: AsyncSession) -> int:
    return int((await session.execute(select(func.coalesce(func.max(IdentityChange.seq), 0)))).scalar_one())


async def purge_changes(session: AsyncSession, before: datetime) -> None:
    await session.execute(delete(IdentityChange).where(IdentityChange.at < before))
