"""Directory rules: create/update/delete with optimistic concurrency, version history, audit, reachability.

Every change bumps the object's `version` with a compare-and-set UPDATE (so two concurrent edits with the
same expected version cannot both win), appends a `DirectoryVersion` (snapshot + diff) and an audit row in
the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.service import record
from server.core.errors import Conflict, NotFound, Problem
from server.core.models import Organisation, Unit
from server.directory import hours as hrs
from server.directory import schemas as s
from server.directory import store
from server.directory.models import Affiliation, Closure, ContactRoute, DirectoryVersion, Endpoint, TimeSpan
from server.directory.text import MUNICIPALITIES
from server.identity.principal import Principal

RESOURCE_TYPES = {
    "organisation": Organisation,
    "unit": Unit,
    "route": ContactRoute,
    "endpoint": Endpoint,
    "affiliation": Affiliation,
}


class PreconditionFailed(Problem):
    status = 412

    def __init__(self, current: int) -> None:
        super().__init__(
            "precondition_failed",
            "Someone else changed this since you loaded it. Reload, re-apply your change and save again.",
            headers={"ETag": etag(current)},
        )


def etag(version: int) -> str:
    return f'W/"{version}"'


def parse_if_match(header: str | None) -> int | None:
    """`W/"3"`, `"3"` or `3` → 3; None when the header is missing; -1 when it is unparseable (never matches)."""
    if header is None or not header.strip():
        return None
    value = header.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    return int(value) if value.isdigit() else -1


# --------------------------------------------------------------------------------------------- snapshots


def span_out(span: TimeSpan | hrs.Span | s.TimeSpanIn) -> s.TimeSpanOut:
    out = s.TimeSpanOut.model_validate(span, from_attributes=True)
    out.text = to_span(out).describe()
    return out


def to_span(span: TimeSpan | s.TimeSpanIn | s.TimeSpanOut) -> hrs.Span:
    return hrs.Span(
        from_day=span.from_day,
        to_day=span.to_day,
        all_day=span.all_day,
        from_time=span.from_time,
        to_time=span.to_time,
        from_date=span.from_date,
        to_date=span.to_date,
        holiday_rule=span.holiday_rule,
        comment=span.comment,
    )


def route_out(route: Any) -> s.RouteOut:
    return s.RouteOut(
        id=route.id,
        unit_id=route.unit_id,
        purpose=route.purpose,
        channel=route.channel,
        label=route.label,
        value=route.value,
        audience=route.audience,
        rank=route.rank,
        note=route.note,
        endpoint_id=route.endpoint_id,
        valid_from=route.valid_from,
        valid_to=route.valid_to,
        hours=[span_out(span) for span in route.hours],
        version=route.version,
        updated_at=route.updated_at,
    )


def organisation_out(org: Organisation) -> s.OrganisationOut:
    return s.OrganisationOut.model_validate(org, from_attributes=True)


def unit_out(unit: Unit, org: Organisation, routes: Sequence[ContactRoute], closures: Sequence[Closure]) -> s.UnitOut:
    return s.UnitOut(
        id=unit.id,
        organisation=s.OrganisationRef(id=org.id, name=org.name, kind=org.kind),
        parent_id=unit.parent_id,
        name=unit.name,
        unit_type=unit.unit_type,
        hsa_id=unit.hsa_id,
        municipality_code=unit.municipality_code,
        municipality_name=MUNICIPALITIES.get(unit.municipality_code or ""),
        address=s.Address.model_construct(street=unit.street, postal_code=unit.postal_code, town=unit.town),
        aliases=list(unit.aliases or []),
        description=unit.description,
        active=unit.active,
        valid_from=unit.valid_from,
        valid_to=unit.valid_to,
        version=unit.version,
        updated_at=unit.updated_at,
        routes=[route_out(route) for route in routes],
        closures=[s.ClosureOut.model_validate(closure, from_attributes=True) for closure in closures],
    )


def unit_snapshot(unit: Any, closures: Sequence[Closure] = ()) -> dict[str, Any]:
    return {
        "id": str(unit.id),
        "organisation_id": str(unit.organisation_id),
        "parent_id": str(unit.parent_id) if unit.parent_id else None,
        "name": unit.name,
        "unit_type": unit.unit_type,
        "hsa_id": unit.hsa_id,
        "municipality_code": unit.municipality_code,
        "address": {"street": unit.street, "postal_code": unit.postal_code, "town": unit.town},
        "aliases": list(unit.aliases or []),
        "description": unit.description,
        "active": unit.active,
        "valid_from": unit.valid_from.isoformat() if unit.valid_from else None,
        "valid_to": unit.valid_to.isoformat() if unit.valid_to else None,
        "closures": [
            s.ClosureOut.model_validate(closure, from_attributes=True).model_dump(mode="json") for closure in closures
        ],
    }


def snapshot(obj: Any, closures: Sequence[Closure] = ()) -> dict[str, Any]:
    if isinstance(obj, Unit):
        return unit_snapshot(obj, closures)
    if isinstance(obj, Organisation):
        data = organisation_out(obj).model_dump(mode="json")
    elif isinstance(obj, ContactRoute):
        return route_snapshot(obj, closures)
    elif isinstance(obj, Endpoint):
        data = s.EndpointOut.model_validate(obj, from_attributes=True).model_dump(mode="json")
    else:
        data = s.AffiliationOut.model_validate(obj, from_attributes=True).model_dump(mode="json")
    for volatile in ("version", "updated_at"):
        data.pop(volatile, None)
    return data


def route_snapshot(route: Any, closures: Sequence[Closure] = ()) -> dict[str, Any]:
    """Snapshot of a route (an ORM object or anything with the same attributes, e.g. during bulk import)."""
    data = route_out(route).model_dump(mode="json")
    data["closures"] = [
        s.ClosureOut.model_validate(closure, from_attributes=True).model_dump(mode="json") for closure in closures
    ]
    for volatile in ("version", "updated_at"):
        data.pop(volatile, None)
    return data


def version_row(
    actor: Principal | None,
    resource_type: str,
    object_id: uuid.UUID,
    version: int,
    operation: str,
    before: dict[str, Any],
    after: dict[str, Any],
    at: datetime | None = None,
) -> dict[str, Any]:
    """Column values of one DirectoryVersion row."""
    return {
        "resource_type": resource_type,
        "resource_id": object_id,
        "version": version,
        "operation": operation,
        "at": at or datetime.now(UTC),
        "actor_user_id": actor.user_id if actor else None,
        "snapshot": after,
        "diff": diff(before, after),
    }


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


async def record_version(
    session: AsyncSession,
    actor: Principal | None,
    resource_type: str,
    obj: Any,
    operation: str,
    before: dict[str, Any],
    after: dict[str, Any],
    *,
    unit_id: uuid.UUID | None = None,
    at: datetime | None = None,
    audit: bool = True,
) -> None:
    row = version_row(actor, resource_type, obj.id, obj.version, operation, before, after, at)
    changes = row["diff"]
    session.add(DirectoryVersion(**row))
    if audit:
        await record(
            session,
            actor=actor,
            action=f"directory.{resource_type}.{operation}",
            object_type=resource_type,
            object_id=obj.id,
            unit_id=unit_id,
            details={"version": obj.version, "diff": changes},
        )


async def _locked(
    session: AsyncSession, model: type[store.Versioned], object_id: uuid.UUID, expected: int, what: str
) -> store.Versioned:
    """Bump the version if it is still `expected`; 404 if gone, 412 if someone else got there first."""
    if not await store.bump_version(session, model, object_id, expected):
        current = await store.live(session, model, object_id)
        if current is None:
            raise NotFound(what)
        raise PreconditionFailed(current.version)
    obj = await store.live(session, model, object_id)
    if obj is None:  # pragma: no cover - just bumped
        raise NotFound(what)
    await session.refresh(obj)
    return obj


def _set(obj: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        setattr(obj, key, value)


# --------------------------------------------------------------------------------------------- organisations


async def _check_org_unique(
    session: AsyncSession, org_number: str | None, hsa_id: str | None, own: uuid.UUID | None
) -> None:
    if org_number:
        other = await store.organisation_by_number(session, org_number)
        if other is not None and other.id != own:
            raise Conflict("org_number_taken", "Another organisation already has this organisation number.")


async def create_organisation(
    session: AsyncSession, actor: Principal | None, body: s.OrganisationCreate, *, source: str = "manual"
) -> Organisation:
    await _check_org_unique(session, body.org_number, body.hsa_id, None)
    org = Organisation(id=uuid.uuid4(), version=1, source=source, updated_by=actor.user_id if actor else None)
    _set(org, body.model_dump())
    session.add(org)
    await session.flush()
    await record_version(session, actor, "organisation", org, "create", {}, snapshot(org))
    return org


async def update_organisation(
    session: AsyncSession, actor: Principal | None, org_id: uuid.UUID, expected: int, body: s.OrganisationPatch
) -> Organisation:
    org = await _locked(session, Organisation, org_id, expected, "organisation")
    before = snapshot(org)
    values = body.model_dump(exclude_unset=True)
    await _check_org_unique(session, values.get("org_number"), values.get("hsa_id"), org.id)
    _set(org, values)
    org.updated_by = actor.user_id if actor else None
    await session.flush()
    await record_version(session, actor, "organisation", org, "update", before, snapshot(org))
    return org


async def delete_organisation(session: AsyncSession, actor: Principal | None, org_id: uuid.UUID, expected: int) -> None:
    org = await _locked(session, Organisation, org_id, expected, "organisation")
    units = await session.scalar(
        Unit.__table__.select()
        .with_only_columns(Unit.id)
        .where(Unit.organisation_id == org_id, Unit.deleted_at.is_(None))
        .limit(1)
    )
    if units is not None:
        raise Conflict("organisation_has_units", "Delete or move the organisation's units first.")
    before = snapshot(org)
    org.deleted_at = datetime.now(UTC)
    org.active = False
    await session.flush()
    await record_version(session, actor, "organisation", org, "delete", before, snapshot(org))


# --------------------------------------------------------------------------------------------- units


async def _check_unit_refs(session: AsyncSession, values: dict[str, Any], own: uuid.UUID | None) -> None:
    org_id = values.get("organisation_id")
    if org_id is not None and await store.live(session, Organisation, org_id) is None:
        raise Problem("unknown_organisation", "No such organisation; create it first or check the id.", status=422)
    parent = values.get("parent_id")
    if parent is not None:
        if parent == own:
            raise Problem("invalid_parent", "A unit cannot be its own parent.", status=422)
        if await store.live(session, Unit, parent) is None:
            raise Problem("unknown_parent", "No such parent unit.", status=422)
    hsa_id = values.get("hsa_id")
    if hsa_id:
        other = await store.unit_by_hsa_id(session, hsa_id)
        if other is not None and other.id != own:
            raise Conflict("hsa_id_taken", "Another unit already has this HSA-id.")
    if values.get("valid_from") and values.get("valid_to") and values["valid_to"] < values["valid_from"]:
        raise Problem("invalid_period", "valid_to is before valid_from.", status=422)


def _unit_values(body: s.UnitCreate | s.UnitPatch, *, partial: bool) -> dict[str, Any]:
    values = body.model_dump(exclude_unset=partial, exclude={"routes", "address"})
    if "address" in body.model_fields_set or not partial:
        address = body.address or s.Address()
        values.update(street=address.street, postal_code=address.postal_code, town=address.town)
    return values


async def create_unit(
    session: AsyncSession, actor: Principal | None, body: s.UnitCreate, *, source: str = "manual"
) -> Unit:
    values = _unit_values(body, partial=False)
    await _check_unit_refs(session, values, None)
    unit = Unit(id=uuid.uuid4(), version=1, source=source, updated_by=actor.user_id if actor else None)
    _set(unit, values)
    session.add(unit)
    await session.flush()
    await record_version(session, actor, "unit", unit, "create", {}, snapshot(unit), unit_id=unit.id)
    for route in body.routes:
        await create_route(session, actor, unit, route)
    return unit


async def update_unit(
    session: AsyncSession, actor: Principal | None, unit_id: uuid.UUID, expected: int, body: s.UnitPatch
) -> Unit:
    unit = await _locked(session, Unit, unit_id, expected, "unit")
    closures = (await store.closures_of(session, [unit.id]))[unit.id]
    before = snapshot(unit, closures)
    values = _unit_values(body, partial=True)
    await _check_unit_refs(session, values, unit.id)
    _set(unit, values)
    unit.updated_by = actor.user_id if actor else None
    await session.flush()
    await record_version(session, actor, "unit", unit, "update", before, snapshot(unit, closures), unit_id=unit.id)
    return unit


async def delete_unit(session: AsyncSession, actor: Principal | None, unit_id: uuid.UUID, expected: int) -> None:
    unit = await _locked(session, Unit, unit_id, expected, "unit")
    before = snapshot(unit)
    now = datetime.now(UTC)
    for route in (await store.routes_of(session, [unit.id]))[unit.id]:
        route_before = snapshot(route)
        route.version += 1
        route.deleted_at = now
        await session.flush()
        await record_version(session, actor, "route", route, "delete", route_before, snapshot(route), audit=False)
    unit.deleted_at = now
    unit.active = False
    await session.flush()
    await record_version(session, actor, "unit", unit, "delete", before, snapshot(unit), unit_id=unit.id)


async def get_unit(session: AsyncSession, unit_id: uuid.UUID) -> Unit:
    unit = await store.live(session, Unit, unit_id)
    if unit is None:
        raise NotFound("unit")
    return unit


async def unit_view(session: AsyncSession, unit: Unit, *, staff: bool, now: datetime) -> s.UnitOut:
    org = await session.get(Organisation, unit.organisation_id)
    assert org is not None
    routes = [r for r in (await store.routes_of(session, [unit.id]))[unit.id] if staff or r.audience == "public"]
    closures = (await store.closures_of(session, [unit.id], after=now))[unit.id]
    if not staff:
        visible = {r.id for r in routes}
        closures = [c for c in closures if c.route_id is None or c.route_id in visible]
    return unit_out(unit, org, routes, closures)


# --------------------------------------------------------------------------------------------- routes


def _spans(hours: Sequence[s.TimeSpanIn]) -> list[TimeSpan]:
    return [TimeSpan(id=uuid.uuid4(), position=index, **span.model_dump()) for index, span in enumerate(hours)]


async def _check_endpoint(session: AsyncSession, endpoint_id: uuid.UUID | None) -> None:
    if endpoint_id is not None and await store.live(session, Endpoint, endpoint_id) is None:
        raise Problem("unknown_endpoint", "No such endpoint.", status=422)


async def create_route(session: AsyncSession, actor: Principal | None, unit: Unit, body: s.RouteCreate) -> ContactRoute:
    await _check_endpoint(session, body.endpoint_id)
    route = ContactRoute(
        id=uuid.uuid4(),
        unit_id=unit.id,
        version=1,
        updated_by=actor.user_id if actor else None,
        **body.model_dump(exclude={"hours"}),
    )
    route.hours = _spans(body.hours)
    session.add(route)
    await session.flush()
    await record_version(session, actor, "route", route, "create", {}, snapshot(route), unit_id=unit.id)
    return route


async def update_route(
    session: AsyncSession, actor: Principal | None, route_id: uuid.UUID, expected: int, body: s.RoutePatch
) -> ContactRoute:
    route = await _locked(session, ContactRoute, route_id, expected, "contact route")
    closures = await _route_closures(session, route)
    before = snapshot(route, closures)
    values = body.model_dump(exclude_unset=True, exclude={"hours"})
    await _check_endpoint(session, values.get("endpoint_id"))
    _set(route, values)
    try:
        s.check_route_value(route.channel, route.value)
    except ValueError as exc:
        raise Problem("invalid_value", f"{exc}.", status=422) from None
    if body.hours is not None:
        route.hours = _spans(body.hours)
    route.updated_by = actor.user_id if actor else None
    await session.flush()
    await record_version(
        session, actor, "route", route, "update", before, snapshot(route, closures), unit_id=route.unit_id
    )
    return route


async def delete_route(session: AsyncSession, actor: Principal | None, route_id: uuid.UUID, expected: int) -> None:
    route = await _locked(session, ContactRoute, route_id, expected, "contact route")
    before = snapshot(route)
    route.deleted_at = datetime.now(UTC)
    await session.flush()
    await record_version(session, actor, "route", route, "delete", before, snapshot(route), unit_id=route.unit_id)


async def get_route(session: AsyncSession, route_id: uuid.UUID) -> ContactRoute:
    route = await store.live(session, ContactRoute, route_id)
    if route is None:
        raise NotFound("contact route")
    return route


async def _route_closures(session: AsyncSession, route: ContactRoute) -> list[Closure]:
    return [c for c in (await store.closures_of(session, [route.unit_id]))[route.unit_id] if c.route_id == route.id]


# --------------------------------------------------------------------------------------------- closures


async def add_closure(session: AsyncSession, actor: Principal | None, unit: Unit, body: s.ClosureCreate) -> Closure:
    """A closure or notice is part of its unit (or route): adding one makes a new version of the owner."""
    if body.route_id is not None:
        route = await get_route(session, body.route_id)
        if route.unit_id != unit.id:
            raise Problem("route_not_in_unit", "That contact route belongs to another unit.", status=422)
    closure = Closure(
        id=uuid.uuid4(), unit_id=unit.id, created_by=actor.user_id if actor else None, **body.model_dump()
    )
    await _with_closures(session, actor, unit, body.route_id, lambda: session.add(closure))
    return closure


async def remove_closure(session: AsyncSession, actor: Principal | None, closure_id: uuid.UUID) -> Closure:
    closure = await session.get(Closure, closure_id)
    if closure is None:
        raise NotFound("closure")
    unit = await get_unit(session, closure.unit_id)

    async def drop() -> None:
        await session.delete(closure)

    await _with_closures(session, actor, unit, closure.route_id, drop)
    return closure


async def _with_closures(
    session: AsyncSession, actor: Principal | None, unit: Unit, route_id: uuid.UUID | None, change: Any
) -> None:
    owner: Unit | ContactRoute = unit if route_id is None else await get_route(session, route_id)
    kind = "unit" if route_id is None else "route"

    async def owned() -> list[Closure]:
        closures = (await store.closures_of(session, [unit.id]))[unit.id]
        return [c for c in closures if c.route_id == route_id]

    before = snapshot(owner, await owned())
    result = change()
    if result is not None:
        await result
    await session.flush()
    await session.execute(update(type(owner)).where(type(owner).id == owner.id).values(version=type(owner).version + 1))
    await session.refresh(owner)
    await record_version(session, actor, kind, owner, "update", before, snapshot(owner, await owned()), unit_id=unit.id)


# --------------------------------------------------------------------------------------------- endpoints, affiliations


async def _create_simple(
    session: AsyncSession,
    actor: Principal | None,
    model: type[store.Versioned],
    kind: str,
    values: dict[str, Any],
    unit_id: uuid.UUID | None = None,
) -> store.Versioned:
    obj = model(id=uuid.uuid4(), version=1, updated_by=actor.user_id if actor else None, **values)
    session.add(obj)
    await session.flush()
    await record_version(session, actor, kind, obj, "create", {}, snapshot(obj), unit_id=unit_id)
    return obj


async def _update_simple(
    session: AsyncSession,
    actor: Principal | None,
    model: type[store.Versioned],
    kind: str,
    object_id: uuid.UUID,
    expected: int,
    values: dict[str, Any],
    *,
    delete: bool = False,
) -> store.Versioned:
    """Compare-and-set update (or soft delete) of an endpoint or affiliation, with history and audit."""
    obj = await _locked(session, model, object_id, expected, kind)
    before = snapshot(obj)
    _set(obj, values)
    if delete:
        obj.deleted_at = datetime.now(UTC)
    await session.flush()
    unit_id = getattr(obj, "unit_id", None)
    await record_version(
        session, actor, kind, obj, "delete" if delete else "update", before, snapshot(obj), unit_id=unit_id
    )
    return obj


async def create_endpoint(session: AsyncSession, actor: Principal | None, body: s.EndpointCreate) -> Endpoint:
    if body.unit_id is not None:
        await get_unit(session, body.unit_id)
    if body.organisation_id is not None and await store.live(session, Organisation, body.organisation_id) is None:
        raise NotFound("organisation")
    return await _create_simple(session, actor, Endpoint, "endpoint", body.model_dump(), unit_id=body.unit_id)


async def update_endpoint(
    session: AsyncSession, actor: Principal | None, endpoint_id: uuid.UUID, expected: int, body: s.EndpointPatch
) -> Endpoint:
    values = body.model_dump(exclude_unset=True)
    return await _update_simple(session, actor, Endpoint, "endpoint", endpoint_id, expected, values)


async def delete_endpoint(
    session: AsyncSession, actor: Principal | None, endpoint_id: uuid.UUID, expected: int
) -> None:
    await _update_simple(session, actor, Endpoint, "endpoint", endpoint_id, expected, {"status": "off"}, delete=True)


async def party_exists(session: AsyncSession, party_id: uuid.UUID) -> bool:
    return (await store.live(session, Organisation, party_id)) is not None or (
        await store.live(session, Unit, party_id)
    ) is not None


async def create_affiliation(session: AsyncSession, actor: Principal | None, body: s.AffiliationCreate) -> Affiliation:
    for party in (body.primary_id, body.participating_id):
        if not await party_exists(session, party):
            raise Problem("unknown_party", "Both parties must be existing organisations or units.", status=422)
    return await _create_simple(session, actor, Affiliation, "affiliation", body.model_dump())


async def update_affiliation(
    session: AsyncSession, actor: Principal | None, affiliation_id: uuid.UUID, expected: int, body: s.AffiliationPatch
) -> Affiliation:
    values = body.model_dump(exclude_unset=True)
    return await _update_simple(session, actor, Affiliation, "affiliation", affiliation_id, expected, values)


async def delete_affiliation(
    session: AsyncSession, actor: Principal | None, affiliation_id: uuid.UUID, expected: int
) -> None:
    await _update_simple(
        session, actor, Affiliation, "affiliation", affiliation_id, expected, {"active": False}, delete=True
    )


async def history(session: AsyncSession, resource_type: str, object_id: uuid.UUID) -> s.History:
    versions = await store.history(session, resource_type, object_id)
    if not versions:
        raise NotFound(resource_type)
    return s.History(
        resource_type=resource_type,
        resource_id=object_id,
        versions=[s.VersionOut.model_validate(v, from_attributes=True) for v in versions],
    )


# --------------------------------------------------------------------------------------------- reachability


def route_hours(route: ContactRoute, unit: Unit, closures: Sequence[Closure]) -> hrs.RouteHours:
    valid_from = max((d for d in (route.valid_from, unit.valid_from) if d), default=None)
    valid_to = min((d for d in (route.valid_to, unit.valid_to) if d), default=None)
    cuts = [
        (c.starts_at, c.ends_at)
        for c in closures
        if c.kind == "closure" and (c.route_id is None or c.route_id == route.id)
    ]
    return hrs.RouteHours(
        spans=[to_span(span) for span in route.hours], valid_from=valid_from, valid_to=valid_to, closures=cuts
    )


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


def today(now: datetime) -> date:
    return now.astimezone(hrs.TZ).date()


# --------------------------------------------------------------------------------------------- search

SCAN_LIMIT = 5000  # candidates examined per page when filtering on open_at


async def search_units(session: AsyncSession, query: s.UnitQuery, *, staff: bool) -> s.UnitPage:
    from server.directory import search

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
            closures = await store.closures_of(session, ids, after=(at or datetime.now(UTC)) - timedelta(days=1))
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

    from server.directory import search

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
    from sqlalchemy import select

    return select(Unit).where(Unit.id.in_(ids))
