"""User, membership and token management (framework-free; used by the API and the CLI)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.errors import Conflict, NotFound, Problem
from server.core.models import AccessToken, Membership, Unit, User
from server.identity import sessions, store, tokens
from server.identity.principal import SYSTEM_ROLES, UNIT_ROLES

LOCAL_ISSUER = "local"  # users whose accounts live in Brygga's built-in identity provider


async def create_local_user(
    session: AsyncSession,
    login: str,
    display_name: str,
    *,
    roles: list[str] | None = None,
    title: str | None = None,
    email: str | None = None,
) -> User:
    roles = roles or []
    unknown = set(roles) - set(SYSTEM_ROLES)
    if unknown:
        raise Problem("unknown_role", f"Unknown system role(s) {sorted(unknown)}; use {list(SYSTEM_ROLES)}.")
    if await store.get_user_by_login(session, login):
        raise Conflict("login_taken", f"The login '{login}' is already taken; choose another.")
    user_id = uuid.uuid4()
    user = User(
        id=user_id,
        issuer=LOCAL_ISSUER,
        subject=str(user_id),
        login=login,
        display_name=display_name,
        title=title,
        email=email,
        system_roles=roles,
        disabled=False,
    )
    session.add(user)
    await session.flush()
    return user


async def require_user(session: AsyncSession, login: str) -> User:
    user = await store.get_user_by_login(session, login)
    if user is None:
        raise NotFound(f"user '{login}'")
    return user


async def set_membership(session: AsyncSession, user: User, unit_id: uuid.UUID, role: str) -> None:
    if role not in UNIT_ROLES:
        raise Problem("unknown_role", f"Unit role must be one of {list(UNIT_ROLES)}.")
    if await session.get(Unit, unit_id) is None:
        raise NotFound("unit")
    existing = await session.get(Membership, (user.id, unit_id))
    if existing:
        existing.role = role
    else:
        session.add(Membership(user_id=user.id, unit_id=unit_id, role=role))
    await session.flush()
    await sessions.record_change(session, user.id, "changed")


async def remove_membership(session: AsyncSession, user: User, unit_id: uuid.UUID) -> bool:
    result = await session.execute(
        delete(Membership).where(Membership.user_id == user.id, Membership.unit_id == unit_id)
    )
    await sessions.record_change(session, user.id, "changed")
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_disabled(session: AsyncSession, user: User, disabled: bool) -> None:
    """Disable (or re-enable) an account; disabling ends its sessions and open connections at once."""
    user.disabled = disabled
    await session.flush()
    if disabled:
        await sessions.destroy_user_sessions(session, user.id)
    else:
        await sessions.record_change(session, user.id, "changed")


async def set_system_roles(session: AsyncSession, user: User, roles: list[str]) -> None:
    unknown = set(roles) - set(SYSTEM_ROLES)
    if unknown:
        raise Problem("unknown_role", f"Unknown system role(s) {sorted(unknown)}; use {list(SYSTEM_ROLES)}.")
    user.system_roles = sorted(set(roles))
    await session.flush()
    await sessions.record_change(session, user.id, "changed")


async def create_token_for(session: AsyncSession, user: User, name: str, ttl: timedelta | None) -> str:
    if user.disabled:
        raise Problem("user_disabled", "This account is disabled; enable it before creating tokens.", status=409)
    _token, secret = await tokens.create_token(session, user.id, name, ttl)
    return secret


async def revoke_token(session: AsyncSession, token_id: uuid.UUID, now: datetime) -> bool:
    """Revoke a token (admin/CLI); open sockets that authenticated with it close via the change feed."""
    token = await session.get(AccessToken, token_id)
    if token is None or token.revoked_at is not None:
        return False
    token.revoked_at = now
    await sessions.record_change(session, token.user_id, "changed")
    return True


async def find_unit(session: AsyncSession, ref: str) -> Unit:
    """A unit by id or HSA-id (CLI convenience)."""
    try:
        unit = await session.get(Unit, uuid.UUID(ref))
    except ValueError:
        unit = (await session.execute(select(Unit).where(Unit.hsa_id == ref))).scalar_one_or_none()
    if unit is None:
        raise NotFound(f"unit '{ref}'")
    return unit


async def user_from_claims(session: AsyncSession, user_issuer: str, claims: dict[str, object]) -> User:
    """The Brygga user for a verified ID token, keyed by (issuer, sub); external users are created on
    first login (without memberships: an administrator places them in units)."""
    subject = str(claims.get("sub") or "")
    if not subject:
        raise Problem("token_invalid", "The ID token has no subject.")
    user = await store.get_user_by_subject(session, user_issuer, subject)
    name = str(claims.get("name") or claims.get("preferred_username") or subject)[:200]
    hsa_id = claims.get("employeeHsaId")
    if user is None:
        if user_issuer == LOCAL_ISSUER:
            raise NotFound("local account")
        user = User(
            id=uuid.uuid4(), issuer=user_issuer, subject=subject, display_name=name, system_roles=[], disabled=False
        )
        session.add(user)
    elif user_issuer != LOCAL_ISSUER and claims.get("name"):
        user.display_name = name
    if isinstance(hsa_id, str) and hsa_id:
        user.hsa_id = hsa_id[:31]
    if isinstance(claims.get("email"), str) and user.email is None:
        user.email = str(claims["email"])[:254]
    await session.flush()
    if user.disabled:
        raise Problem("user_disabled", "This account is disabled. Contact your administrator.", status=403)
    return user
