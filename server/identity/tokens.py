"""Personal access tokens: random secrets shown once, stored as SHA-256, revocable, optionally expiring."""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.db import Database, StorageFull, utcnow
from server.core.models import AccessToken, User
from server.core.principal import Principal
from server.identity import store

TOKEN_PREFIX = "bry_"  # noqa: S105 - a public prefix, not a secret
TOUCH_INTERVAL = timedelta(minutes=1)

log = logging.getLogger("brygga.identity")
_last_touch: dict[uuid.UUID, datetime] = {}


async def note_token_use(db: Database, token_id: uuid.UUID) -> None:
    """Record a token's last use at most once a minute per process; best effort, never fails a request."""
    now = utcnow()
    last = _last_touch.get(token_id)
    if last is not None and now - last < TOUCH_INTERVAL:
        return
    _last_touch[token_id] = now
    try:
        async with db.transaction() as session:
            await store.touch_token(session, token_id, now)
    except (DBAPIError, StorageFull, TimeoutError):  # the database reports a full disk once itself
        log.warning("token last-use not recorded", extra={"token_id": str(token_id)})


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(
    session: AsyncSession, user_id: uuid.UUID, name: str, ttl: timedelta | None = None
) -> tuple[AccessToken, str]:
    """Create a token and return it with its secret (the only time the secret exists in clear)."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AccessToken(
        id=uuid.uuid4(),
        user_id=user_id,
        token_hash=hash_token(secret),
        name=name,
        created_at=utcnow(),
        expires_at=utcnow() + ttl if ttl else None,
    )
    session.add(token)
    await session.flush()
    return token, secret


def token_is_usable(token: AccessToken, now: datetime) -> bool:
    if token.revoked_at is not None:
        return False
    return token.expires_at is None or token.expires_at > now


async def principal_for_user(session: AsyncSession, user: User, *, auth_method: str, **extra: str | None) -> Principal:
    return Principal(
        user_id=user.id,
        display_name=user.display_name,
        system_roles=frozenset(user.system_roles or ()),
        unit_roles=await store.unit_roles(session, user.id),
        auth_method=auth_method,
        acr=extra.get("acr"),
        session_id=extra.get("session_id"),
    )


async def authenticate_token(session: AsyncSession, secret: str) -> Principal | None:
    """Resolve a bearer secret to a principal; None for unknown, expired, revoked or disabled.

    Read-only on purpose: authentication must not queue behind writers (SQLite has one write lock);
    `note_token_use` records the use separately.
    """
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = await store.find_token(session, hash_token(secret))
    now = utcnow()
    if token is None or not token_is_usable(token, now):
        return None
    user = await store.get_user(session, token.user_id)
    if user is None or user.disabled:
        return None
    principal = await principal_for_user(session, user, auth_method="token")
    return replace(principal, token_id=token.id)
