"""`DirectoryCalendar`: the directory's implementation of server.core.calendar.UnitCalendar.

Set by the directory plugin as `ctx.calendar`; messaging uses it to decide when a
unit's inbox is staffed and where to escalate.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from server.core.calendar import RouteRef
from server.core.context import AppContext
from server.core.models import Unit
from server.directory import hours as hrs
from server.directory import store
from server.directory.reachability import open_routes, route_hours


class DirectoryCalendar:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def open_intervals(
        self, unit_id: uuid.UUID, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        """When the unit's secure-message inbox is staffed within [start, end), UTC, sorted.

        The hours of the unit's secure_message routes count; a unit without any such hours counts as
        always open. Unit-wide closures and the unit's validity period still apply. An unknown or
        inactive unit is never open.
        """
        start, end = hrs.to_utc(start), hrs.to_utc(end)
        if end <= start:
            return []
        async with self.ctx.db.transaction() as session:
            unit = await store.live(session, Unit, unit_id)
            if unit is None or not unit.active:
                return []
            routes = [r for r in (await store.routes_of(session, [unit_id]))[unit_id] if r.channel == "secure_message"]
            closures = (await store.closures_of(session, [unit_id], after=start - timedelta(days=1)))[unit_id]
        timed = [route for route in routes if route.hours]
        if not timed:
            unit_closures = [c for c in closures if c.route_id is None]
            always = hrs.RouteHours(
                valid_from=unit.valid_from,
                valid_to=unit.valid_to,
                closures=[(c.starts_at, c.ends_at) for c in unit_closures if c.kind == "closure"],
            )
            return hrs.open_intervals(always, start, end)
        intervals: list[tuple[datetime, datetime]] = []
        for route in timed:
            intervals.extend(hrs.open_intervals(route_hours(route, unit, closures), start, end))
        return hrs.merge(intervals)

    async def escalation_routes(self, unit_id: uuid.UUID, at: datetime) -> list[RouteRef]:
        """Routes other than the inbox that are usable at `at`, best (lowest rank) first."""
        at = hrs.to_utc(at)
        async with self.ctx.db.transaction() as session:
            unit = await store.live(session, Unit, unit_id)
            if unit is None:
                return []
            routes = (await store.routes_of(session, [unit_id]))[unit_id]
            closures = (await store.closures_of(session, [unit_id], after=at - timedelta(days=1)))[unit_id]
        usable = open_routes(unit, routes, closures, at)
        return [
            RouteRef(
                route_id=route.id, purpose=route.purpose, channel=route.channel, label=route.label, value=route.value
            )
            for route, _until in usable
            if route.channel != "secure_message"
        ]
