"""Reading directory objects: lookups that 404, a unit page, version history."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from server.core.errors import NotFound
from server.core.models import Organisation, Unit
from server.directory import schemas as s
from server.directory import store
from server.directory.models import ContactRoute
from server.directory.views import unit_out


async def get_unit(session: AsyncSession, unit_id: uuid.UUID) -> Unit:
    unit = await store.live(session, Unit, unit_id)
    if unit is None:
        raise NotFound("unit")
    return unit


async def get_route(session: AsyncSession, route_id: uuid.UUID) -> ContactRoute:
    route = await store.live(session, ContactRoute, route_id)
    if route is None:
        raise NotFound("contact route")
    return route


async def unit_view(session: AsyncSession, unit: Unit, *, staff: bool, now: datetime) -> s.UnitOut:
    org = await session.get(Organisation, unit.organisation_id)
    assert org is not None
    routes = [r for r in (await store.routes_of(session, [unit.id]))[unit.id] if staff or r.audience == "public"]
    closures = (await store.closures_of(session, [unit.id], after=now))[unit.id]
    if not staff:
        visible = {r.id for r in routes}
        closures = [c for c in closures if c.route_id is None or c.route_id in visible]
    return unit_out(unit, org, routes, closures)


async def history(session: AsyncSession, resource_type: str, object_id: uuid.UUID) -> s.History:
    versions = await store.history(session, resource_type, object_id)
    if not versions:
        raise NotFound(resource_type)
    return s.History(
        resource_type=resource_type,
        resource_id=object_id,
        versions=[s.VersionOut.model_validate(v, from_attributes=True) for v in versions],
    )
