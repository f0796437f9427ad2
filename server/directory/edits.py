"""Directory edits: create/update/delete of organisations, units, routes, closures, endpoints, affiliations.

Each function works in the caller's transaction, bumps the version (compare-and-set), and appends the
version-history row and the audit event. Authorisation is the caller's (DirectoryService) job.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.errors import Conflict, NotFound, Problem
from server.core.models import Organisation, Unit
from server.core.principal import Principal
from server.directory import practitioners, store
from server.directory import schemas as s
from server.directory.models import Affiliation, Closure, ContactRoute, Endpoint, TimeSpan
from server.directory.reads import get_route, get_unit
from server.directory.versioning import locked, record_version, set_values
from server.directory.views import snapshot


async def _check_org_unique(
    session: AsyncSession, org_number: str | None, hsa_id: str | None, own: uuid.UUID | None
) -> None:
    if org_number:
        other = await store.organisation_by_number(session, org_number)
        if other is not None and other.id != own:
            raise Conflict("org_number_taken", "Another organisation already has this organisation number.")


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


def _spans(hours: Sequence[s.TimeSpanIn]) -> list[TimeSpan]:
    return [TimeSpan(id=uuid.uuid4(), position=index, **span.model_dump()) for index, span in enumerate(hours)]


async def _check_endpoint(session: AsyncSession, endpoint_id: uuid.UUID | None) -> None:
    if endpoint_id is not None and await store.live(session, Endpoint, endpoint_id) is None:
        raise Problem("unknown_endpoint", "No such endpoint.", status=422)


async def _route_closures(session: AsyncSession, route: ContactRoute) -> list[Closure]:
    """The closures a route shows: its own and its unit's (the route snapshot keeps those)."""
    return (await store.closures_of(session, [route.unit_id]))[route.unit_id]


async def party_exists(session: AsyncSession, party_id: uuid.UUID) -> bool:
    return (await store.live(session, Organisation, party_id)) is not None or (
        await store.live(session, Unit, party_id)
    ) is not None


class Edits:
    """The edits one actor makes in one transaction at one moment (the service's injected clock)."""

    def __init__(self, session: AsyncSession, actor: Principal | None, now: datetime) -> None:
        self.session = session
        self.actor = actor
        self.actor_id = actor.user_id if actor else None
        self.now = now

    async def _record(
        self,
        resource_type: str,
        obj: Any,
        operation: str,
        before: dict[str, Any],
        after: dict[str, Any],
        *,
        unit_id: uuid.UUID | None = None,
        audit: bool = True,
    ) -> None:
        """Stamp the object with this edit's moment (its FHIR lastUpdated equals the history entry's) and record."""
        obj.updated_at = self.now
        await self.session.flush()
        await record_version(
            self.session,
            self.actor,
            resource_type,
            obj,
            operation,
            before,
            after,
            at=self.now,
            unit_id=unit_id,
            audit=audit,
        )

    async def create_organisation(self, body: s.OrganisationCreate, *, source: str = "manual") -> Organisation:
        await _check_org_unique(self.session, body.org_number, body.hsa_id, None)
        org = Organisation(id=uuid.uuid4(), version=1, source=source, updated_by=self.actor_id)
        set_values(org, body.model_dump())
        self.session.add(org)
        await self.session.flush()
        await self._record("organisation", org, "create", {}, snapshot(org))
        return org

    async def update_organisation(self, org_id: uuid.UUID, expected: int, body: s.OrganisationPatch) -> Organisation:
        org = await locked(self.session, Organisation, org_id, expected, "organisation")
        before = snapshot(org)
        values = body.model_dump(exclude_unset=True)
        await _check_org_unique(self.session, values.get("org_number"), values.get("hsa_id"), org.id)
        set_values(org, values)
        org.updated_by = self.actor_id
        await self.session.flush()
        await self._record("organisation", org, "update", before, snapshot(org))
        return org

    async def delete_organisation(self, org_id: uuid.UUID, expected: int) -> None:
        org = await locked(self.session, Organisation, org_id, expected, "organisation")
        units = await self.session.scalar(
            Unit.__table__.select()
            .with_only_columns(Unit.id)
            .where(Unit.organisation_id == org_id, Unit.deleted_at.is_(None))
            .limit(1)
        )
        if units is not None:
            raise Conflict("organisation_has_units", "Delete or move the organisation's units first.")
        before = snapshot(org)
        org.deleted_at = self.now
        org.active = False
        await self.session.flush()
        await self._record("organisation", org, "delete", before, snapshot(org))

    async def create_unit(self, body: s.UnitCreate, *, source: str = "manual") -> Unit:
        values = _unit_values(body, partial=False)
        await _check_unit_refs(self.session, values, None)
        unit = Unit(id=uuid.uuid4(), version=1, source=source, updated_by=self.actor_id)
        set_values(unit, values)
        self.session.add(unit)
        await self.session.flush()
        await self._record("unit", unit, "create", {}, snapshot(unit), unit_id=unit.id)
        for route in body.routes:
            await self.create_route(unit, route)
        return unit

    async def update_unit(self, unit_id: uuid.UUID, expected: int, body: s.UnitPatch) -> Unit:
        unit = await locked(self.session, Unit, unit_id, expected, "unit")
        closures = (await store.closures_of(self.session, [unit.id]))[unit.id]
        before = snapshot(unit, closures)
        values = _unit_values(body, partial=True)
        await _check_unit_refs(self.session, values, unit.id)
        set_values(unit, values)
        unit.updated_by = self.actor_id
        await self.session.flush()
        await self._record("unit", unit, "update", before, snapshot(unit, closures), unit_id=unit.id)
        return unit

    async def delete_unit(self, unit_id: uuid.UUID, expected: int) -> None:
        unit = await locked(self.session, Unit, unit_id, expected, "unit")
        before = snapshot(unit)
        now = self.now
        for route in (await store.routes_of(self.session, [unit.id]))[unit.id]:
            route_before = snapshot(route)
            route.version += 1
            route.deleted_at = now
            await self.session.flush()
            await self._record("route", route, "delete", route_before, snapshot(route), audit=False)
        unit.deleted_at = now
        unit.active = False
        await self.session.flush()
        await self._record("unit", unit, "delete", before, snapshot(unit), unit_id=unit.id)
        await practitioners.sync(self.session, unit_ids=[unit.id], actor=self.actor, now=now)  # its roles end

    async def create_route(self, unit: Unit, body: s.RouteCreate) -> ContactRoute:
        await _check_endpoint(self.session, body.endpoint_id)
        route = ContactRoute(
            id=uuid.uuid4(),
            unit_id=unit.id,
            version=1,
            updated_by=self.actor_id,
            **body.model_dump(exclude={"hours"}),
        )
        route.hours = _spans(s.spans_of(body.hours))
        self.session.add(route)
        await self.session.flush()
        await self._record("route", route, "create", {}, snapshot(route), unit_id=unit.id)
        return route

    async def update_route(self, route_id: uuid.UUID, expected: int, body: s.RoutePatch) -> ContactRoute:
        route = await locked(self.session, ContactRoute, route_id, expected, "contact route")
        closures = await _route_closures(self.session, route)
        before = snapshot(route, closures)
        values = body.model_dump(exclude_unset=True, exclude={"hours"})
        await _check_endpoint(self.session, values.get("endpoint_id"))
        set_values(route, values)
        try:
            s.check_route_value(route.channel, route.value)
        except ValueError as exc:
            raise Problem("invalid_value", f"{exc}.", status=422) from None
        if body.hours is not None:
            route.hours = _spans(s.spans_of(body.hours))
        route.updated_by = self.actor_id
        await self.session.flush()
        await self._record("route", route, "update", before, snapshot(route, closures), unit_id=route.unit_id)
        return route

    async def delete_route(self, route_id: uuid.UUID, expected: int) -> None:
        route = await locked(self.session, ContactRoute, route_id, expected, "contact route")
        before = snapshot(route)
        route.deleted_at = self.now
        await self.session.flush()
        await self._record("route", route, "delete", before, snapshot(route), unit_id=route.unit_id)

    async def add_closure(self, unit: Unit, body: s.ClosureCreate) -> Closure:
        """A closure or notice is part of its unit (or route): adding one makes a new version of the owner."""
        if body.route_id is not None:
            route = await get_route(self.session, body.route_id)
            if route.unit_id != unit.id:
                raise Problem("route_not_in_unit", "That contact route belongs to another unit.", status=422)
        values = body.model_dump()
        for key in ("starts_at", "ends_at"):  # as stored (UTC), so snapshots now and later read the same
            values[key] = values[key].astimezone(UTC)
        closure = Closure(id=uuid.uuid4(), unit_id=unit.id, created_by=self.actor_id, **values)
        await self._with_closures(unit, body.route_id, lambda: self.session.add(closure))
        return closure

    async def remove_closure(self, closure_id: uuid.UUID) -> Closure:
        closure = await self.session.get(Closure, closure_id)
        if closure is None:
            raise NotFound("closure")
        unit = await get_unit(self.session, closure.unit_id)

        async def drop() -> None:
            await self.session.delete(closure)

        await self._with_closures(unit, closure.route_id, drop)
        return closure

    async def _with_closures(self, unit: Unit, route_id: uuid.UUID | None, change: Any) -> None:
        owner: Unit | ContactRoute = unit if route_id is None else await get_route(self.session, route_id)
        kind = "unit" if route_id is None else "route"

        async def owned() -> list[Closure]:
            closures = (await store.closures_of(self.session, [unit.id]))[unit.id]
            return [c for c in closures if c.route_id == route_id]

        # A unit-wide closure changes what every route of the unit shows (FHIR notAvailable): new versions too.
        routes = [] if route_id is not None else (await store.routes_of(self.session, [unit.id]))[unit.id]
        unit_closures = (await store.closures_of(self.session, [unit.id]))[unit.id]
        route_befores = [snapshot(route, unit_closures) for route in routes]
        before = snapshot(owner, await owned())
        result = change()
        if result is not None:
            await result
        await self.session.flush()
        await self.session.execute(
            update(type(owner)).where(type(owner).id == owner.id).values(version=type(owner).version + 1)
        )
        await self.session.refresh(owner)
        await self._record(kind, owner, "update", before, snapshot(owner, await owned()), unit_id=unit.id)
        unit_closures = (await store.closures_of(self.session, [unit.id]))[unit.id]
        for route, route_before in zip(routes, route_befores, strict=True):
            route.version += 1
            await self._record("route", route, "update", route_before, snapshot(route, unit_closures), audit=False)

    async def _create_simple(
        self,
        model: type[store.Versioned],
        kind: str,
        values: dict[str, Any],
        unit_id: uuid.UUID | None = None,
    ) -> store.Versioned:
        obj = model(id=uuid.uuid4(), version=1, updated_by=self.actor_id, **values)
        self.session.add(obj)
        await self.session.flush()
        await self._record(kind, obj, "create", {}, snapshot(obj), unit_id=unit_id)
        return obj

    async def _update_simple(
        self,
        model: type[store.Versioned],
        kind: str,
        object_id: uuid.UUID,
        expected: int,
        values: dict[str, Any],
        *,
        delete: bool = False,
    ) -> store.Versioned:
        """Compare-and-set update (or soft delete) of an endpoint or affiliation, with history and audit."""
        obj = await locked(self.session, model, object_id, expected, kind)
        before = snapshot(obj)
        set_values(obj, values)
        if delete:
            obj.deleted_at = self.now
        await self.session.flush()
        unit_id = getattr(obj, "unit_id", None)
        await self._record(kind, obj, "delete" if delete else "update", before, snapshot(obj), unit_id=unit_id)
        return obj

    async def create_endpoint(self, body: s.EndpointCreate) -> Endpoint:
        if body.unit_id is not None:
            await get_unit(self.session, body.unit_id)
        if (
            body.organisation_id is not None
            and await store.live(self.session, Organisation, body.organisation_id) is None
        ):
            raise NotFound("organisation")
        return await self._create_simple(Endpoint, "endpoint", body.model_dump(), unit_id=body.unit_id)

    async def update_endpoint(self, endpoint_id: uuid.UUID, expected: int, body: s.EndpointPatch) -> Endpoint:
        values = body.model_dump(exclude_unset=True)
        return await self._update_simple(Endpoint, "endpoint", endpoint_id, expected, values)

    async def delete_endpoint(self, endpoint_id: uuid.UUID, expected: int) -> None:
        await self._update_simple(Endpoint, "endpoint", endpoint_id, expected, {"status": "off"}, delete=True)

    async def create_affiliation(self, body: s.AffiliationCreate) -> Affiliation:
        for party in (body.primary_id, body.participating_id):
            if not await party_exists(self.session, party):
                raise Problem("unknown_party", "Both parties must be existing organisations or units.", status=422)
        return await self._create_simple(Affiliation, "affiliation", body.model_dump())

    async def update_affiliation(
        self, affiliation_id: uuid.UUID, expected: int, body: s.AffiliationPatch
    ) -> Affiliation:
        values = body.model_dump(exclude_unset=True)
        return await self._update_simple(Affiliation, "affiliation", affiliation_id, expected, values)

    async def delete_affiliation(self, affiliation_id: uuid.UUID, expected: int) -> None:
        await self._update_simple(Affiliation, "affiliation", affiliation_id, expected, {"active": False}, delete=True)
