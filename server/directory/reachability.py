"""Reachability: which contact routes are usable at a moment, and when a unit next opens."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from server.core.models import Unit
from server.directory import hours as hrs
from server.directory import schemas as s
from server.directory import store
from server.directory.models import Closure, ContactRoute
from server.directory.reads import get_unit
from server.directory.views import route_out, to_span


def route_hours(route: ContactRoute, unit: Unit, closures: Sequence[Closure]) -> hrs.RouteHours:
    return hours_of(route.id, [to_span(span) for span in route.hours], route.valid_from, route.valid_to, unit, closures)


def hours_of(
    route_id: uuid.UUID | None,
    spans: Sequence[hrs.Span],
    valid_from: date | None,
    valid_to: date | None,
    unit: Unit,
    closures: Sequence[Closure],
) -> hrs.RouteHours:
    """A route's hours within its unit: both validity periods, unit-wide closures and the route's own."""
    valid_from = max((d for d in (valid_from, unit.valid_from) if d), default=None)
    valid_to = min((d for d in (valid_to, unit.valid_to) if d), default=None)
    cuts = [
        (c.starts_at, c.ends_at)
        for c in closures
        if c.kind == "closure" and (c.route_id is None or c.route_id == route_id)
    ]
    return hrs.RouteHours(spans=spans, valid_from=valid_from, valid_to=valid_to, closures=cuts)


PREVIEW_DAYS = 14


def preview(unit: Unit, body: s.HoursPreviewIn, closures: Sequence[Closure], now: datetime) -> s.HoursPreview:
    """Day by day over the next two weeks, when a route with these (unsaved) hours would be usable."""
    spans = [to_span(span) for span in s.spans_of(body.hours)]
    hours = hours_of(body.route_id, spans, body.valid_from, body.valid_to, unit, closures)
    now = hrs.to_utc(now)
    today = now.astimezone(hrs.TZ).date()
    days = []
    for offset in range(PREVIEW_DAYS):
        day = today + timedelta(days=offset)
        start = datetime.combine(day, time(0), hrs.TZ)
        end = datetime.combine(day + timedelta(days=1), time(0), hrs.TZ)
        intervals = hrs.open_intervals(hours, start, end) if unit.active else []
        days.append(
            s.PreviewDay(
                date=day,
                holiday=hrs.holiday_name(day),
                open=[s.OpenSpan(start=_clock(low, day), end=_clock(high, day)) for low, high in intervals],
                closures=[
                    c.reason
                    for c in closures
                    if c.kind == "closure"
                    and c.route_id in (None, body.route_id)
                    and c.starts_at < end.astimezone(UTC)
                    and c.ends_at > start.astimezone(UTC)
                ],
            )
        )
    open_now = unit.active and hrs.is_open(hours, now)
    return s.HoursPreview(
        at=now,
        open_now=open_now,
        next_opening=None if open_now or not unit.active else hrs.next_opening(hours, now),
        days=days,
    )


def _clock(moment: datetime, day: date) -> str:
    local = moment.astimezone(hrs.TZ)
    return "24:00" if local.date() > day else f"{local:%H:%M}"


def open_routes(
    unit: Unit, routes: Sequence[ContactRoute], closures: Sequence[Closure], at: datetime, purpose: str | None = None
) -> list[tuple[ContactRoute, datetime | None]]:
    """Routes usable at `at` with the end of their current interval, rank order."""
    if not unit.active or unit.deleted_at is not None:
        return []
    found: list[tuple[ContactRoute, datetime | None]] = []
    for route in routes:
        if purpose and route.purpose != purpose:
            continue
        intervals = hrs.open_intervals(route_hours(route, unit, closures), at, at + hrs.LOOKAHEAD)
        if intervals and intervals[0][0] <= at:
            end = intervals[0][1]
            found.append((route, None if end >= at + hrs.LOOKAHEAD else end))
    found.sort(key=lambda item: (item[0].rank, item[0].label))
    return found


async def reachability(
    session: AsyncSession, unit_id: uuid.UUID, at: datetime, *, staff: bool, purpose: str | None = None
) -> s.Reachability:
    at = hrs.to_utc(at)
    unit = await get_unit(session, unit_id)
    routes = [r for r in (await store.routes_of(session, [unit.id]))[unit.id] if staff or r.audience == "public"]
    closures = (await store.closures_of(session, [unit.id], after=at - timedelta(days=1)))[unit.id]
    usable = open_routes(unit, routes, closures, at, purpose)
    next_open: s.NextOpening | None = None
    if not usable and unit.active:
        candidates = []
        for route in routes:
            if purpose and route.purpose != purpose:
                continue
            when = hrs.next_opening(route_hours(route, unit, closures), at)
            if when is not None:
                candidates.append((when, route.rank, route))
        if candidates:
            when, _rank, route = min(candidates, key=lambda item: (item[0], item[1]))
            next_open = s.NextOpening(
                at=when, route_id=route.id, purpose=route.purpose, channel=route.channel, label=route.label
            )
    local = at.astimezone(hrs.TZ)
    visible = {r.id for r in routes}
    return s.Reachability(
        unit_id=unit.id,
        unit_name=unit.name,
        at=at,
        local_time=local.isoformat(),
        holiday=hrs.holiday_name(local.date()),
        reachable=bool(usable),
        routes=[s.ReachableRoute(**route_out(route).model_dump(), until=until) for route, until in usable],
        next_opening=next_open,
        closures=[
            s.ClosureOut.model_validate(c, from_attributes=True)
            for c in closures
            if c.starts_at <= at < c.ends_at and (c.route_id is None or c.route_id in visible)
        ],
    )
