"""`DirectoryService`: every directory use case, with its authorisation, transaction and audit.

Routes (REST and FHIR) and the CLI call this and nothing below it; they never open sessions or write SQL.
Time comes from the injected clock only, so time-based rules are testable.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from server.audit.service import record
from server.core.db import Database
from server.core.errors import Forbidden, NotFound, Problem
from server.core.models import Membership, Organisation, Unit
from server.core.policy import allowed, require
from server.core.principal import Principal
from server.directory import export as exporter
from server.directory import fhir, fhir_query, importer, practitioners, reads, store
from server.directory import schemas as s
from server.directory.edits import Edits
from server.directory.fhir_query import SearchResult
from server.directory.models import Affiliation, Closure, DirectoryVersion, Endpoint
from server.directory.reachability import preview, reachability
from server.directory.search import Vocabulary, decode_cursor, encode_cursor
from server.directory.unit_search import search_units
from server.directory.views import organisation_out, route_out
from server.identity.service import may_manage_members

View = TypeVar("View", bound=BaseModel)
UNIT_ADMINS = "Only the unit's administrators may change it."
PUBLISHERS = (
    "Only the unit's administrators, its organisation's membership administrators or a directory administrator "
    "may publish its members."
)


@dataclass
class Saved(Generic[View]):
    """What an edit answers: the object as the API shows it and its version (the ETag)."""

    view: View
    version: int


def need_version(expected: int | None) -> int:
    if expected is None:
        raise Problem(
            "precondition_required",
            "Send If-Match with the ETag you got when you loaded this object, so no one's change is lost.",
            status=428,
        )
    return expected


def admin_version(actor: Principal, expected: int | None) -> int:
    """A directory administrator's edit of a known version."""
    require(actor, "directory.admin")
    return need_version(expected)


def endpoint_out(endpoint: Endpoint) -> s.EndpointOut:
    return s.EndpointOut.model_validate(endpoint, from_attributes=True)


def affiliation_out(affiliation: Affiliation) -> s.AffiliationOut:
    return s.AffiliationOut.model_validate(affiliation, from_attributes=True)


class DirectoryService:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    @asynccontextmanager
    async def _edits(self, actor: Principal | None) -> AsyncIterator[Edits]:
        async with self.db.transaction() as session:
            yield Edits(session, actor, self.clock())

    # ----------------------------------------------------------------------------------------- reading

    async def search_units(self, query: s.UnitQuery, *, staff: bool = True) -> s.UnitPage:
        async with self.db.transaction() as session:
            return await search_units(session, query, staff=staff, now=self.clock())

    async def unit(self, unit_id: uuid.UUID) -> Saved[s.UnitOut]:
        async with self.db.transaction() as session:
            unit = await reads.get_unit(session, unit_id)
            return Saved(await reads.unit_view(session, unit, staff=True, now=self.clock()), unit.version)

    async def reachability(self, unit_id: uuid.UUID, at: datetime | None, purpose: str | None) -> s.Reachability:
        async with self.db.transaction() as session:
            return await reachability(session, unit_id, at or self.clock(), staff=True, purpose=purpose)

    async def organisations(
        self, q: str | None, kind: str | None, municipality: str | None, limit: int, cursor: str | None
    ) -> s.OrganisationPage:
        offset = int(decode_cursor(cursor).get("o", 0))
        async with self.db.transaction() as session:
            orgs = await store.organisations(session, q, kind, municipality, offset, limit + 1)
        return s.OrganisationPage(
            items=[organisation_out(org) for org in orgs[:limit]],
            next_cursor=encode_cursor({"o": offset + limit}) if len(orgs) > limit else None,
        )

    async def organisation(self, org_id: uuid.UUID) -> Saved[s.OrganisationOut]:
        async with self.db.transaction() as session:
            org = await store.live(session, Organisation, org_id)
            if org is None:
                raise NotFound("organisation")
            return Saved(organisation_out(org), org.version)

    async def route(self, route_id: uuid.UUID) -> Saved[s.RouteOut]:
        async with self.db.transaction() as session:
            route = await reads.get_route(session, route_id)
            return Saved(route_out(route), route.version)

    async def endpoints(self, party: uuid.UUID | None) -> list[s.EndpointOut]:
        async with self.db.transaction() as session:
            return [endpoint_out(e) for e in await store.endpoints(session, party)]

    async def affiliations(self, party: uuid.UUID | None) -> list[s.AffiliationOut]:
        async with self.db.transaction() as session:
            return [affiliation_out(a) for a in await store.affiliations(session, party)]

    async def history(self, kind: str, object_id: uuid.UUID) -> s.History:
        async with self.db.transaction() as session:
            return await reads.history(session, kind, object_id)

    async def changes(self, since: int, limit: int) -> s.ChangeFeed:
        async with self.db.transaction() as session:
            rows = await store.changes(session, since, limit)
        return s.ChangeFeed(
            items=[s.ChangeOut.model_validate(v, from_attributes=True) for v in rows],
            next_since=rows[-1].seq if rows else since,
        )

    # ----------------------------------------------------------------------------------------- organisations

    async def create_organisation(self, actor: Principal, body: s.OrganisationCreate) -> Saved[s.OrganisationOut]:
        require(actor, "directory.admin")
        async with self._edits(actor) as edits:
            org = await edits.create_organisation(body)
            return Saved(organisation_out(org), org.version)

    async def update_organisation(
        self, actor: Principal, org_id: uuid.UUID, expected: int | None, body: s.OrganisationPatch
    ) -> Saved[s.OrganisationOut]:
        version = admin_version(actor, expected)
        async with self._edits(actor) as edits:
            org = await edits.update_organisation(org_id, version, body)
            return Saved(organisation_out(org), org.version)

    async def delete_organisation(self, actor: Principal, org_id: uuid.UUID, expected: int | None) -> None:
        version = admin_version(actor, expected)
        async with self._edits(actor) as edits:
            await edits.delete_organisation(org_id, version)

    # ----------------------------------------------------------------------------------------- units

    async def create_unit(self, actor: Principal, body: s.UnitCreate) -> Saved[s.UnitOut]:
        require(actor, "directory.admin")
        async with self._edits(actor) as edits:
            unit = await edits.create_unit(body)
            view = await reads.unit_view(edits.session, unit, staff=True, now=edits.now)
        Vocabulary.invalidate()
        return Saved(view, unit.version)

    async def update_unit(
        self, actor: Principal, unit_id: uuid.UUID, expected: int | None, body: s.UnitPatch
    ) -> Saved[s.UnitOut]:
        require(actor, "unit.administer", unit_id, detail=UNIT_ADMINS)
        if "organisation_id" in body.model_fields_set:
            require(actor, "directory.admin", detail="Only directory administrators may move a unit.")
        version = need_version(expected)
        async with self._edits(actor) as edits:
            unit = await edits.update_unit(unit_id, version, body)
            view = await reads.unit_view(edits.session, unit, staff=True, now=edits.now)
        Vocabulary.invalidate()
        return Saved(view, unit.version)

    async def delete_unit(self, actor: Principal, unit_id: uuid.UUID, expected: int | None) -> None:
        version = admin_version(actor, expected)
        async with self._edits(actor) as edits:
            await edits.delete_unit(unit_id, version)

    # ----------------------------------------------------------------------------------------- routes, closures

    async def create_route(self, actor: Principal, unit_id: uuid.UUID, body: s.RouteCreate) -> Saved[s.RouteOut]:
        require(actor, "unit.administer", unit_id, detail=UNIT_ADMINS)
        async with self._edits(actor) as edits:
            unit = await reads.get_unit(edits.session, unit_id)
            route = await edits.create_route(unit, body)
            return Saved(route_out(route), route.version)

    async def update_route(
        self, actor: Principal, route_id: uuid.UUID, expected: int | None, body: s.RoutePatch
    ) -> Saved[s.RouteOut]:
        async with self._edits(actor) as edits:
            route = await reads.get_route(edits.session, route_id)
            require(actor, "unit.administer", route.unit_id, detail=UNIT_ADMINS)
            route = await edits.update_route(route_id, need_version(expected), body)
            return Saved(route_out(route), route.version)

    async def delete_route(self, actor: Principal, route_id: uuid.UUID, expected: int | None) -> None:
        async with self._edits(actor) as edits:
            route = await reads.get_route(edits.session, route_id)
            require(actor, "unit.administer", route.unit_id, detail=UNIT_ADMINS)
            await edits.delete_route(route_id, need_version(expected))

    async def add_closure(self, actor: Principal, unit_id: uuid.UUID, body: s.ClosureCreate) -> s.ClosureOut:
        require(actor, "unit.administer", unit_id, detail=UNIT_ADMINS)
        async with self._edits(actor) as edits:
            unit = await reads.get_unit(edits.session, unit_id)
            closure = await edits.add_closure(unit, body)
            return s.ClosureOut.model_validate(closure, from_attributes=True)

    async def remove_closure(self, actor: Principal, closure_id: uuid.UUID) -> None:
        async with self._edits(actor) as edits:
            closure = await edits.session.get(Closure, closure_id)
            if closure is None:
                raise NotFound("closure")
            require(actor, "unit.administer", closure.unit_id, detail=UNIT_ADMINS)
            await edits.remove_closure(closure_id)

    async def hours_preview(self, actor: Principal, unit_id: uuid.UUID, body: s.HoursPreviewIn) -> s.HoursPreview:
        require(actor, "unit.administer", unit_id, detail=UNIT_ADMINS)
        now = self.clock()
        async with self.db.transaction() as session:
            unit = await reads.get_unit(session, unit_id)
            closures = (await store.closures_of(session, [unit_id], after=now - timedelta(days=1)))[unit_id]
        return preview(unit, body, closures, now)

    # ----------------------------------------------------------------------------------------- endpoints, affiliations

    async def create_endpoint(self, actor: Principal, body: s.EndpointCreate) -> Saved[s.EndpointOut]:
        if body.unit_id is not None:
            require(actor, "unit.administer", body.unit_id)
        else:
            require(actor, "directory.admin")
        async with self._edits(actor) as edits:
            endpoint = await edits.create_endpoint(body)
            return Saved(endpoint_out(endpoint), endpoint.version)

    async def _endpoint_admin(self, edits: Edits, actor: Principal, endpoint_id: uuid.UUID) -> None:
        endpoint = await store.live(edits.session, Endpoint, endpoint_id)
        if endpoint is None:
            raise NotFound("endpoint")
        if endpoint.unit_id is not None:
            require(actor, "unit.administer", endpoint.unit_id)
        else:
            require(actor, "directory.admin")

    async def update_endpoint(
        self, actor: Principal, endpoint_id: uuid.UUID, expected: int | None, body: s.EndpointPatch
    ) -> Saved[s.EndpointOut]:
        async with self._edits(actor) as edits:
            await self._endpoint_admin(edits, actor, endpoint_id)
            endpoint = await edits.update_endpoint(endpoint_id, need_version(expected), body)
            return Saved(endpoint_out(endpoint), endpoint.version)

    async def delete_endpoint(self, actor: Principal, endpoint_id: uuid.UUID, expected: int | None) -> None:
        async with self._edits(actor) as edits:
            await self._endpoint_admin(edits, actor, endpoint_id)
            await edits.delete_endpoint(endpoint_id, need_version(expected))

    async def create_affiliation(self, actor: Principal, body: s.AffiliationCreate) -> Saved[s.AffiliationOut]:
        require(actor, "directory.admin")
        async with self._edits(actor) as edits:
            affiliation = await edits.create_affiliation(body)
            return Saved(affiliation_out(affiliation), affiliation.version)

    async def update_affiliation(
        self, actor: Principal, affiliation_id: uuid.UUID, expected: int | None, body: s.AffiliationPatch
    ) -> Saved[s.AffiliationOut]:
        version = admin_version(actor, expected)
        async with self._edits(actor) as edits:
            affiliation = await edits.update_affiliation(affiliation_id, version, body)
            return Saved(affiliation_out(affiliation), affiliation.version)

    async def delete_affiliation(self, actor: Principal, affiliation_id: uuid.UUID, expected: int | None) -> None:
        version = admin_version(actor, expected)
        async with self._edits(actor) as edits:
            await edits.delete_affiliation(affiliation_id, version)

    # ----------------------------------------------------------------------------------------- published people

    async def _require_publisher(self, actor: Principal, unit_id: uuid.UUID, ip: str | None) -> None:
        """Who manages the unit's members (its administrators, the organisation's membership
        administrators) or a directory administrator; a refusal is audited."""
        async with self.db.transaction() as session:
            if allowed(actor, "directory.admin") or await may_manage_members(session, actor, unit_id):
                return
            await record(
                session,
                actor=actor,
                action="unit.member_publish",
                object_type="unit",
                object_id=unit_id,
                unit_id=unit_id,
                outcome="denied",
                ip=ip,
            )
        raise Forbidden(PUBLISHERS)

    async def set_publication(
        self, actor: Principal, unit_id: uuid.UUID, user_id: uuid.UUID, body: s.PublicationSet, *, ip: str | None
    ) -> s.PublicationOut:
        await self._require_publisher(actor, unit_id, ip)
        async with self.db.transaction() as session:
            membership = await session.get(Membership, (user_id, unit_id))
            if membership is None or await store.live(session, Unit, unit_id) is None:
                raise NotFound("membership")
            practitioners.set_publication(membership, body.public, body.role_title, body.role_code)
            await session.flush()
            await practitioners.sync(session, user_ids=[user_id], actor=actor, now=self.clock())
            await record(
                session,
                actor=actor,
                action="unit.member_publish",
                object_type="user",
                object_id=user_id,
                unit_id=unit_id,
                details=body.model_dump(),
            )
            return await practitioners.publication_out(session, membership)

    # ----------------------------------------------------------------------------------------- FHIR (read-only)

    async def fhir_search(self, resource_type: str, pairs: list[tuple[str, str]], *, staff: bool) -> SearchResult:
        async with self.db.transaction() as session:
            return await fhir_query.search(session, resource_type, pairs, staff=staff, now=self.clock())

    async def fhir_read(self, resource_type: str, object_id: uuid.UUID, *, staff: bool) -> dict[str, Any]:
        async with self.db.transaction() as session:
            return await fhir.read(session, resource_type, object_id, staff=staff, now=self.clock())

    async def fhir_vread(
        self, resource_type: str, object_id: uuid.UUID, version: int, *, staff: bool
    ) -> dict[str, Any]:
        async with self.db.transaction() as session:
            return await fhir.vread(session, resource_type, object_id, version, staff=staff)

    async def fhir_history(
        self,
        resource_type: str,
        *,
        object_id: uuid.UUID | None,
        since: str | None,
        count: int,
        offset: int,
        staff: bool,
    ) -> tuple[int, list[DirectoryVersion]]:
        async with self.db.transaction() as session:
            return await fhir_query.history(
                session, resource_type, object_id=object_id, since=since, count=count, offset=offset, staff=staff
            )

    # ----------------------------------------------------------------------------------------- import / export

    def authorise_import(self, actor: Principal) -> None:
        require(actor, "directory.admin")

    async def import_directory(
        self, actor: Principal, content: str, fmt: importer.Format, *, dry_run: bool
    ) -> importer.ImportReport:
        self.authorise_import(actor)
        report = await importer.run_import(self.db, content, fmt, dry_run=dry_run, actor=actor, now=self.clock())
        Vocabulary.invalidate()
        return report

    async def export_directory(self, actor: Principal, fmt: importer.Format) -> tuple[str, datetime]:
        """The file and the moment it was taken (for its name)."""
        require(actor, "directory.admin")
        return await exporter.export(self.db, fmt), self.clock()
