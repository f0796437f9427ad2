"""SQL for deviation reports."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.models import Organisation, Unit
from server.deviations.models import DeviationReport
from server.directory.models import ContactRoute


async def reports(session: AsyncSession, reporter_user_id: uuid.UUID | None, limit: int = 500) -> list[DeviationReport]:
    """All reports (None) or one reporter's, newest first."""
    query = select(DeviationReport).order_by(DeviationReport.created_at.desc()).limit(limit)
    if reporter_user_id is not None:
        query = query.where(DeviationReport.reporter_user_id == reporter_user_id)
    return list((await session.execute(query)).scalars())


async def missing_references(
    session: AsyncSession,
    organisation_ids: Iterable[uuid.UUID],
    unit_ids: Iterable[uuid.UUID],
    route_id: uuid.UUID | None,
) -> bool:
    orgs, units = set(organisation_ids), set(unit_ids)
    if orgs:
        found = await session.execute(select(func.count()).where(Organisation.id.in_(orgs)))
        if found.scalar_one() != len(orgs):
            return True
    if units:
        found = await session.execute(select(func.count()).where(Unit.id.in_(units)))
        if found.scalar_one() != len(units):
            return True
    return route_id is not None and await session.get(ContactRoute, route_id) is None


async def counts(session: AsyncSession, first: date, end: date) -> list[tuple[int, int, str, int]]:
    """(year, month, category, reports) for deviations that occurred in [first, end)."""
    rows = await session.execute(
        select(DeviationReport.occurred_on, DeviationReport.category).where(
            DeviationReport.occurred_on >= first, DeviationReport.occurred_on < end
        )
    )
    tally: dict[tuple[int, int, str], int] = {}
    for occurred_on, category in rows.all():
        key = (occurred_on.year, occurred_on.month, category)
        tally[key] = tally.get(key, 0) + 1
    return [(year, month, category, n) for (year, month, category), n in sorted(tally.items())]
