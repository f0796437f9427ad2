"""SQL for users, memberships and personal access tokens."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.models import AccessToken, Membership, Unit, User


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_login(session: AsyncSession, login: str) -> User | None:
    return (await session.execute(select(User).where(User.login == login))).scalar_one_or_none()


async def get_user_by_subject(session: AsyncSession, issuer: str, subject: str) -> User | None:
    query = select(User).where(User.issuer == issuer, User.subject == subject)
    return (await session.execute(query)).scalar_one_or_none()


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.execute(select(User).order_by(User.login))).scalars())


async def unit_roles(session: AsyncSession, user_id: uuid.UUID) -> dict[uuid.UUID, str]:
    rows = await session.execute(select(Membership.unit_id, Membership.role).where(Membership.user_id == user_id))
    return {unit_id: role for unit_id, role in rows.all()}


async def find_token(session: AsyncSession, token_hash: str) -> AccessToken | None:
    return (await session.execute(select(AccessToken).where(AccessToken.token_hash == token_hash))).scalar_one_or_none()


async def touch_token(session: AsyncSession, token_id: uuid.UUID, when: datetime) -> None:
    await session.execute(update(AccessToken).where(AccessToken.id == token_id).values(last_used_at=when))


async def list_tokens(session: AsyncSession, user_id: uuid.UUID) -> list[AccessToken]:
    query = select(AccessToken).where(AccessToken.user_id == user_id).order_by(AccessToken.created_at)
    return list((await session.execute(query)).scalars())


async def unit_names(session: AsyncSession, unit_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(list(unit_ids))))
    return {unit_id: name for unit_id, name in rows.all()}


async def members(session: AsyncSession, unit_id: uuid.UUID) -> list[tuple[User, Membership]]:
    """The unit's members with their membership (role, publication), by name."""
    rows = await session.execute(
        select(User, Membership)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.unit_id == unit_id)
        .order_by(User.display_name)
    )
    return [(user, membership) for user, membership in rows.all()]
