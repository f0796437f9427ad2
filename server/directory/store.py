"""SQL for the directory (loading, compare-and-set versioning, history). Search lives in search.py."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.models import Organisation, Unit
from server.directory.models import Affiliation, Closure, ContactRoute, DirectoryVersion, Endpoint

Versioned = TypeVar("Versioned", Organisation, Unit, ContactRoute, Endpoint, Affiliation)


async def live(session: AsyncSession, model: type[Versioned], object_id: uuid.UUID) -> Versioned | None:
    """An object that is not soft-deleted."""
    obj = await session.get(model, object_id)
    if obj is None or obj.deleted_at is not None:
        return None
    return obj


async def bump_version(session: AsyncSession, model: type[Versioned], object_id: uuid.UUID, expected: int) -> bool:
    """Compare-and-set: version := version + 1 only if it still is `expected` (takes the write lock first)."""
    table: Any = model.__table__
    result = await session.execute(
        update(table)
        .where(table.c.id == object_id, table.c.version == expected, table.c.deleted_at.is_(None))
        .values(version=table.c.version + 1)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def next_version(session: AsyncSession, resource_type: str, object_id: uuid.UUID) -> int:
    latest = await session.scalar(
        select(func.max(DirectoryVersion.version)).where(
            DirectoryVersion.resource_type == resource_type, DirectoryVersion.resource_id == object_id
        )
    )
    return int(latest or 0) + 1


async def routes_of(session: AsyncSession, unit_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[ContactRoute]]:
    by_unit: dict[uuid.UUID, list[ContactRoute]] = {unit_id: [] for unit_id in unit_ids}
    if not unit_ids:
        return by_unit
    rows = await session.execute(
        select(ContactRoute)
        .where(ContactRoute.unit_id.in_(unit_ids), ContactRoute.deleted_at.is_(None))
        .order_by(ContactRoute.rank, ContactRoute.label)
    )
    for route in rows.scalars():
        by_unit[route.unit_id].append(route)
    return by_unit


async def closures_of(
    session: AsyncSession, unit_ids: Sequence[uuid.UUID], after: datetime | None = None
) -> dict[uuid.UUID, list[Closure]]:
    by_unit: dict[uuid.UUID, list[Closure]] = {unit_id: [] for unit_id in unit_ids}
    if not unit_ids:
        return by_unit
    query = select(Closure).where(Closure.unit_id.in_(unit_ids)).order_by(Closure.starts_at)
    if after is not None:
        query = query.where(Closure.ends_at > after)
    for closure in (await session.execute(query)).scalars():
        by_unit[closure.unit_id].append(closure)
    return by_unit


async def organisations_by_id(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Organisation]:
    if not ids:
        return {}
    rows = await session.execute(select(Organisation).where(Organisation.id.in_(set(ids))))
    return {org.id: org for org in rows.scalars()}


async def unit_by_hsa_id(session: AsyncSession, hsa_id: str) -> Unit | None:
    return (await session.execute(select(Unit).where(Unit.hsa_id == hsa_id))).scalar_one_or_none()


async def organisation_by_number(session: AsyncSession, org_number: str) -> Organisation | None:
    return (
        await session.execute(select(Organisation).where(Organisation.org_number == org_number))
    ).scalar_one_or_none()


async def organisations(
    session: AsyncSession, q: str | None, kind: str | None, municipality: str | None, offset: int, limit: int
) -> list[Organisation]:
    rows = await session.execute(
        organisations_query(q, kind, municipality)
        .order_by(Organisation.name, Organisation.id)
        .offset(offset)
        .limit(limit)
    )
    return list(rows.scalars())


async def endpoints(session: AsyncSession, party: uuid.UUID | None) -> list[Endpoint]:
    """Live endpoints (of a unit or organisation), by name."""
    stmt = select(Endpoint).where(Endpoint.deleted_at.is_(None)).order_by(Endpoint.name).limit(1000)
    if party:
        stmt = stmt.where(or_(Endpoint.unit_id == party, Endpoint.organisation_id == party))
    return list((await session.execute(stmt)).scalars())


async def affiliations(session: AsyncSession, party: uuid.UUID | None) -> list[Affiliation]:
    """Live affiliations (with an organisation or unit on either side), oldest first."""
    stmt = select(Affiliation).where(Affiliation.deleted_at.is_(None)).order_by(Affiliation.created_at).limit(1000)
    if party:
        stmt = stmt.where(or_(Affiliation.primary_id == party, Affiliation.participating_id == party))
    return list((await session.execute(stmt)).scalars())


def organisations_query(q: str | None, kind: str | None, municipality: str | None) -> Select[Organisation]:
    query = select(Organisation).where(Organisation.deleted_at.is_(None))
    if kind:
        query = query.where(Organisation.kind == kind)
    if municipality:
        query = query.where(Organisation.municipality_code == municipality)
    if q:
        like = f"%{q.lower()}%"
        query = query.where(or_(func.lower(Organisation.name).like(like), Organisation.org_number == q))
    return query


async def history(session: AsyncSession, resource_type: str, object_id: uuid.UUID) -> list[DirectoryVersion]:
    rows = await session.execute(
        select(DirectoryVersion)
        .where(DirectoryVersion.resource_type == resource_type, DirectoryVersion.resource_id == object_id)
        .order_by(DirectoryVersion.version)
    )
    return list(rows.scalars())


async def version(
    session: AsyncSession, resource_type: str, object_id: uuid.UUID, number: int
) -> DirectoryVersion | None:
    return (
        await session.execute(
            select(DirectoryVersion).where(
                DirectoryVersion.resource_type == resource_type,
                DirectoryVersion.resource_id == object_id,
                DirectoryVersion.version == number,
            )
        )
    ).scalar_one_or_none()


async def changes(session: AsyncSession, since: int, limit: int) -> list[DirectoryVersion]:
    rows = await session.execute(
        select(DirectoryVersion).where(DirectoryVersion.seq > since).order_by(DirectoryVersion.seq).limit(limit)
    )
    return list(rows.scalars())


def latest_of(resource_type: str) -> Select[DirectoryVersion]:
    """The newest version row of each object of one kind (derived views are read from it)."""
    newest = (
        select(DirectoryVersion.resource_id, func.max(DirectoryVersion.version).label("version"))
        .where(DirectoryVersion.resource_type == resource_type)
        .group_by(DirectoryVersion.resource_id)
        .subquery()
    )
    return (
        select(DirectoryVersion)
        .join(
            newest,
            (DirectoryVersion.resource_id == newest.c.resource_id) & (DirectoryVersion.version == newest.c.version),
        )
        .where(DirectoryVersion.resource_type == resource_type)
    )


async def latest_versions(
    session: AsyncSession, resource_type: str, object_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, DirectoryVersion]:
    if not object_ids:
        return {}
    rows = await session.execute(latest_of(resource_type).where(DirectoryVersion.resource_id.in_(object_ids)))
    return {row.resource_id: row for row in rows.scalars()}
