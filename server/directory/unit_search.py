"""`GET /api/v1/units`: ranked or listed units, optionally only those with a usable route at a time."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.models import Unit
from server.directory import hours as hrs
from server.directory import schemas as s
from server.directory import search, store
from server.directory.models import ContactRoute
from server.directory.reachability import open_routes
from server.directory.text import MUNICIPALITIES
from server.directory.views import route_out

SCAN_LIMIT = 5000  # candidates examined per page when filtering on open_at


async def search_units(session: AsyncSession, query: s.UnitQuery, *, staff: bool, now: datetime) -> s.UnitPage:
    filters = search.Filters(
        unit_type=query.type,
        municipality=query.municipality,
        organisation=query.organisation,
        include_inactive=query.include_inactive,
    )
    position = search.decode_cursor(query.cursor)
    at = hrs.to_utc(query.open_at) if query.open_at else None
    filtering = at is not None or query.purpose is not None
    batch_size = query.limit + 1 if not filtering else 200
    picked: list[tuple[search.Hit, list[ContactRoute] | None]] = []
    scanned = 0
    corrected: str | None = None
    more = False
    while True:
        if query.q:
            batch = await search.ranked(session, query.q, filters, position, batch_size)
        else:
            batch = await search.listing(session, filters, position, batch_size)
        corrected = corrected or batch.corrected
        hits = batch.hits
        if filtering and hits:
            ids = [hit.unit_id for hit in hits]
            units = {u.id: u for u in (await session.execute(select_units(ids))).scalars()}
            routes = await store.routes_of(session, ids)
            closures = await store.closures_of(session, ids, after=(at or now) - timedelta(days=1))
            for hit in hits:
                scanned += 1
                row = units[hit.unit_id]
                visible = [r for r in routes[hit.unit_id] if staff or r.audience == "public"]
                if at is not None:
                    usable = [r for r, _ in open_routes(row, visible, closures[hit.unit_id], at, query.purpose)]
                else:
                    usable = [r for r in visible if r.purpose == query.purpose]
                if usable:
                    if len(picked) == query.limit:
                        more = True
                        break
                    picked.append((hit, usable))
        else:
            for hit in hits:
                if len(picked) == query.limit:
                    more = True
                    break
                picked.append((hit, None))
        if more or batch.exhausted or not hits:
            break
        position = hits[-1].cursor
        if scanned >= SCAN_LIMIT:  # give the client a cursor to continue instead of scanning everything
            return await _page(session, picked, position, corrected, at)
    next_position = picked[-1][0].cursor if (more and picked) else None
    return await _page(session, picked, next_position, corrected, at)


async def _page(
    session: AsyncSession,
    picked: list[tuple[Any, list[ContactRoute] | None]],
    next_position: dict[str, Any] | None,
    corrected: str | None,
    at: datetime | None,
) -> s.UnitPage:
    missing = [hit.unit_id for hit, _ in picked if hit.row is None]
    found = {hit.unit_id: hit.row for hit, _ in picked if hit.row is not None}
    if missing:  # e.g. PostgreSQL hits carry ids only
        rows = await session.execute(search.summary_select().where(Unit.id.in_(missing)))
        found.update({row[0]: row for row in rows.all()})
    items = []
    for hit, usable in picked:
        unit_id, _folded, name, unit_type, hsa_id, code, town, org_id, org_name = found[hit.unit_id]
        items.append(
            s.UnitSummary(
                id=unit_id,
                name=name,
                unit_type=unit_type,
                hsa_id=hsa_id,
                municipality_code=code,
                municipality_name=MUNICIPALITIES.get(code or ""),
                town=town,
                organisation_id=org_id,
                organisation_name=org_name,
                match=hit.match,
                open_routes=[route_out(r) for r in usable] if usable is not None and at is not None else None,
            )
        )
    return s.UnitPage(
        items=items,
        next_cursor=search.encode_cursor(next_position) if next_position else None,
        corrected_query=corrected,
    )


def select_units(ids: Sequence[uuid.UUID]) -> Any:
    return select(Unit).where(Unit.id.in_(ids))
