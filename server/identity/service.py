"""User, membership and token management (framework-free; used by the API and the CLI)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.service import record
from server.core import policy
from server.core.errors import Conflict, NotFound, Problem
from server.core.models import AccessToken, Membership, Organisation, Unit, User
from server.core.principal import SYSTEM_ROLES, UNIT_ROLES, Principal
from server.directory import practitioners
from server.identity import sessions, store, tokens
from server.identity.models import MembershipAdminGrant

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


async def may_manage_members(session: AsyncSession, principal: Principal, unit_id: uuid.UUID) -> bool:
    """Unit administrators of the unit, and holders of a membership-admin grant for its organisation.

    Directory administrators manage the directory, not memberships (which give access to care
    information, PDL), unless they hold such a grant too."""
    if policy.allowed(principal, "unit.manage_members", unit_id):
        return True
    unit = await session.get(Unit, unit_id)
    return unit is not None and await _has_grant(session, principal, unit.organisation_id)


async def _has_grant(session: AsyncSession, principal: Principal, organisation_id: uuid.UUID) -> bool:
    return await session.get(MembershipAdminGrant, (principal.user_id, organisation_id)) is not None


async def check_new_member(
    session: AsyncSession, principal: Principal, unit_id: uuid.UUID, user: User, *, any_organisation: bool
) -> None:
    """A unit administrator adds only users who already belong to the unit's organisation (a membership
    in one of its units), unless `BRYGGA_UNIT_ADMINS_ADD_ANY_ORGANISATION`; organisation-level
    membership admins (grants) may add anyone to their organisation's units."""
    unit = await session.get(Unit, unit_id)
    if unit is None:
        raise NotFound("unit")
    if any_organisation or await _has_grant(session, principal, unit.organisation_id):
        return
    same_organisation = await session.execute(
        select(Membership.unit_id)
        .join(Unit, Unit.id == Membership.unit_id)
        .where(Membership.user_id == user.id, Unit.organisation_id == unit.organisation_id)
        .limit(1)
    )
    if same_organisation.first() is None:
        raise Problem(
            "other_organisation",
            "Unit administrators can add only users of their own organisation. Ask a membership "
            "administrator of the organisation to add this user.",
            status=403,
        )


async def grant_membership_admin(
    session: AsyncSession, user: User, organisation_id: uuid.UUID, *, granted: bool, by: str
) -> bool:
    """Give or take the membership-admin right for one organisation (CLI); audited either way."""
    if await session.get(Organisation, organisation_id) is None:
        raise NotFound("organisation")
    existing = await session.get(MembershipAdminGrant, (user.id, organisation_id))
    changed = (existing is None) == granted
    if granted and existing is None:
        session.add(MembershipAdminGrant(user_id=user.id, organisation_id=organisation_id))
    elif not granted and existing is not None:
        await session.delete(existing)
    await record(
        session,
        actor=None,
        action="identity.membership_admin_grant" if granted else "identity.membership_admin_revoke",
        object_type="user",
        object_id=user.id,
        details={"organisation_id": str(organisation_id), "by": by, "changed": changed},
    )
    return changed


async def remove_membership(session: AsyncSession, user: User, unit_id: uuid.UUID) -> bool:
    """Ends the membership; a published one shows as deleted in the directory's FHIR `_history`."""
    role_id = await session.scalar(
        select(Membership.public_id).where(Membership.user_id == user.id, Membership.unit_id == unit_id)
    )
    result = await session.execute(
        delete(Membership).where(Membership.user_id == user.id, Membership.unit_id == unit_id)
    )
    await sessions.record_change(session, user.id, "changed")
    await practitioners.sync(session, user_ids=[user.id], withdrawn=[role_id] if role_id else [])
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def set_disabled(session: AsyncSession, user: User, disabled: bool) -> None:
    """Disable (or re-enable) an account; disabling ends its sessions and open connections at once."""
    user.disabled = disabled
    await session.flush()
    await practitioners.sync(session, user_ids=[user.id])  # a disabled account is not published
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


async def revoke_user_tokens(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> int:
    """ "Log out everywhere": every personal access token of the user ends too, for REST and reconnects."""
    result = await session.execute(
        update(AccessToken)
        .where(AccessToken.user_id == user_id, AccessToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


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
    await practitioners.sync(session, user_ids=[user.id])  # a published name or HSA-id may have changed
    return user
