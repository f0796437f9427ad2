"""Directory REST API (/api/v1): search, unit pages, reachability, admin editing with ETag/If-Match, history."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.api import ApiRouter, path_uuid
from server.core.context import ctx_of
from server.core.errors import NotFound, Problem
from server.core.models import Organisation, Unit
from server.directory import importer, store
from server.directory import schemas as s
from server.directory import service as svc
from server.directory.models import Affiliation, ContactRoute, Endpoint
from server.directory.search import Vocabulary, decode_cursor, encode_cursor
from server.identity.authn import principal_of
from server.identity.policy import require
from server.identity.principal import Principal

api = ApiRouter()
TAGS = ["directory"]
ADMIN = ["directory admin"]
EDIT_ERRORS = (404, 409, 412, 428)


def with_etag(model: BaseModel, version: int, status: int = 200) -> web.Response:
    return web.Response(
        text=model.model_dump_json(),
        status=status,
        content_type="application/json",
        headers={"ETag": svc.etag(version)},
    )


def expected_version(request: web.Request) -> int:
    version = svc.parse_if_match(request.headers.get("If-Match"))
    if version is None:
        raise Problem(
            "precondition_required",
            "Send If-Match with the ETag you got when you loaded this object, so no one's change is lost.",
            status=428,
        )
    return version


async def _unit_for_edit(session: AsyncSession, principal: Principal, unit_id: uuid.UUID) -> Unit:
    require(principal, "unit.administer", unit_id, detail="Only the unit's administrators may change it.")
    return await svc.get_unit(session, unit_id)


# --------------------------------------------------------------------------------------------- reading


@api.route(
    "GET",
    "/api/v1/units",
    summary="Search units (name, alias, town, HSA-id; open at a time)",
    tags=TAGS,
    query=s.UnitQuery,
    response=s.UnitPage,
    description="Case- and accent-insensitive prefix search with typo tolerance; exact and prefix hits first. "
    "`open_at` (+ `purpose`) keeps units with a usable route then. Paginate with `next_cursor`.",
)
async def search_units(request: web.Request, query: s.UnitQuery) -> s.UnitPage:
    async with ctx_of(request).db.transaction() as session:
        return await svc.search_units(session, query, staff=True)


@api.route(
    "GET",
    "/api/v1/units/{unit_id}",
    summary="A unit with its contact routes",
    tags=TAGS,
    response=s.UnitOut,
    errors=(404,),
)
async def get_unit(request: web.Request) -> web.Response:
    unit_id = path_uuid(request, "unit_id", "unit")
    ctx = ctx_of(request)
    async with ctx.db.transaction() as session:
        unit = await svc.get_unit(session, unit_id)
        view = await svc.unit_view(session, unit, staff=True, now=ctx.clock())
        return with_etag(view, unit.version)


@api.route(
    "GET",
    "/api/v1/units/{unit_id}/reachability",
    summary="Which routes are usable at a time",
    tags=TAGS,
    query=s.ReachabilityQuery,
    response=s.Reachability,
    errors=(404,),
    description="Routes usable at `at` (default now) in rank order; when none is, `next_opening`.",
)
async def unit_reachability(request: web.Request, query: s.ReachabilityQuery) -> s.Reachability:
    unit_id = path_uuid(request, "unit_id", "unit")
    ctx = ctx_of(request)
    async with ctx.db.transaction() as session:
        return await svc.reachability(session, unit_id, query.at or ctx.clock(), staff=True, purpose=query.purpose)


class OrganisationQuery(BaseModel):
    q: str | None = Field(default=None, max_length=200)
    kind: s.OrgKind | None = None
    municipality: str | None = Field(default=None, pattern=r"^\d{4}$")
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=200)


@api.route(
    "GET",
    "/api/v1/organisations",
    summary="List organisations",
    tags=TAGS,
    query=OrganisationQuery,
    response=s.OrganisationPage,
)
async def list_organisations(request: web.Request, query: OrganisationQuery) -> s.OrganisationPage:
    offset = int(decode_cursor(query.cursor).get("o", 0))
    async with ctx_of(request).db.transaction() as session:
        rows = await session.execute(
            store.organisations_query(query.q, query.kind, query.municipality)
            .order_by(Organisation.name, Organisation.id)
            .offset(offset)
            .limit(query.limit + 1)
        )
        orgs = list(rows.scalars())
    more = len(orgs) > query.limit
    return s.OrganisationPage(
        items=[svc.organisation_out(org) for org in orgs[: query.limit]],
        next_cursor=encode_cursor({"o": offset + query.limit}) if more else None,
    )


@api.route(
    "GET",
    "/api/v1/organisations/{org_id}",
    summary="An organisation",
    tags=TAGS,
    response=s.OrganisationOut,
    errors=(404,),
)
async def get_organisation(request: web.Request) -> web.Response:
    org_id = path_uuid(request, "org_id", "organisation")
    async with ctx_of(request).db.transaction() as session:
        org = await store.live(session, Organisation, org_id)
        if org is None:
            raise NotFound("organisation")
        return with_etag(svc.organisation_out(org), org.version)


@api.route("GET", "/api/v1/routes/{route_id}", summary="A contact route", tags=TAGS, response=s.RouteOut, errors=(404,))
async def get_route(request: web.Request) -> web.Response:
    route_id = path_uuid(request, "route_id", "contact route")
    async with ctx_of(request).db.transaction() as session:
        route = await svc.get_route(session, route_id)
        return with_etag(svc.route_out(route), route.version)


class EndpointList(BaseModel):
    items: list[s.EndpointOut]


class AffiliationList(BaseModel):
    items: list[s.AffiliationOut]


class PartyQuery(BaseModel):
    party: uuid.UUID | None = Field(default=None, description="Organisation or unit id (either side / owner).")


@api.route("GET", "/api/v1/endpoints", summary="List endpoints", tags=TAGS, query=PartyQuery, response=EndpointList)
async def list_endpoints(request: web.Request, query: PartyQuery) -> EndpointList:
    from sqlalchemy import or_, select

    async with ctx_of(request).db.transaction() as session:
        stmt = select(Endpoint).where(Endpoint.deleted_at.is_(None)).order_by(Endpoint.name).limit(1000)
        if query.party:
            stmt = stmt.where(or_(Endpoint.unit_id == query.party, Endpoint.organisation_id == query.party))
        rows = (await session.execute(stmt)).scalars()
        return EndpointList(items=[s.EndpointOut.model_validate(e, from_attributes=True) for e in rows])


@api.route(
    "GET", "/api/v1/affiliations", summary="List affiliations", tags=TAGS, query=PartyQuery, response=AffiliationList
)
async def list_affiliations(request: web.Request, query: PartyQuery) -> AffiliationList:
    from sqlalchemy import or_, select

    async with ctx_of(request).db.transaction() as session:
        stmt = select(Affiliation).where(Affiliation.deleted_at.is_(None)).order_by(Affiliation.created_at).limit(1000)
        if query.party:
            stmt = stmt.where(or_(Affiliation.primary_id == query.party, Affiliation.participating_id == query.party))
        rows = (await session.execute(stmt)).scalars()
        return AffiliationList(items=[s.AffiliationOut.model_validate(a, from_attributes=True) for a in rows])


for _kind, _segment in (
    ("organisation", "organisations"),
    ("unit", "units"),
    ("route", "routes"),
    ("endpoint", "endpoints"),
    ("affiliation", "affiliations"),
):

    def _history_handler(kind: str) -> Callable[[web.Request], Awaitable[s.History]]:
        async def handler(request: web.Request) -> s.History:
            object_id = path_uuid(request, "object_id", kind)
            async with ctx_of(request).db.transaction() as session:
                return await svc.history(session, kind, object_id)

        handler.__name__ = f"{kind}_history"
        return handler

    api.route(
        "GET",
        f"/api/v1/{_segment}/{{object_id}}/history",
        summary=f"Version history of a {_kind} (with diffs)",
        tags=TAGS,
        response=s.History,
        errors=(404,),
    )(_history_handler(_kind))


@api.route(
    "GET",
    "/api/v1/directory/changes",
    summary="Directory change feed (all objects, in order)",
    tags=TAGS,
    query=s.ChangeQuery,
    response=s.ChangeFeed,
)
async def directory_changes(request: web.Request, query: s.ChangeQuery) -> s.ChangeFeed:
    async with ctx_of(request).db.transaction() as session:
        rows = await store.changes(session, query.since, query.limit)
    return s.ChangeFeed(
        items=[s.ChangeOut.model_validate(v, from_attributes=True) for v in rows],
        next_since=rows[-1].seq if rows else query.since,
    )


# --------------------------------------------------------------------------------------------- organisations (admin)


@api.route(
    "POST",
    "/api/v1/organisations",
    summary="Create an organisation",
    tags=ADMIN,
    body=s.OrganisationCreate,
    response=s.OrganisationOut,
    status=201,
    errors=(409,),
)
async def create_organisation(request: web.Request, body: s.OrganisationCreate) -> web.Response:
    principal = principal_of(request)
    require(principal, "directory.admin")
    async with ctx_of(request).db.transaction() as session:
        org = await svc.create_organisation(session, principal, body)
        return with_etag(svc.organisation_out(org), org.version, 201)


@api.route(
    "PATCH",
    "/api/v1/organisations/{org_id}",
    summary="Change an organisation (If-Match)",
    tags=ADMIN,
    body=s.OrganisationPatch,
    response=s.OrganisationOut,
    errors=EDIT_ERRORS,
)
async def update_organisation(request: web.Request, body: s.OrganisationPatch) -> web.Response:
    principal = principal_of(request)
    require(principal, "directory.admin")
    org_id = path_uuid(request, "org_id", "organisation")
    expected = expected_version(request)
    async with ctx_of(request).db.transaction() as session:
        org = await svc.update_organisation(session, principal, org_id, expected, body)
        return with_etag(svc.organisation_out(org), org.version)


@api.route(
    "DELETE",
    "/api/v1/organisations/{org_id}",
    summary="Delete an organisation (If-Match)",
    tags=ADMIN,
    status=204,
    errors=EDIT_ERRORS,
)
async def delete_organisation(request: web.Request) -> None:
    principal = principal_of(request)
    require(principal, "directory.admin")
    org_id = path_uuid(request, "org_id", "organisation")
    expected = expected_version(request)
    async with ctx_of(request).db.transaction() as session:
        await svc.delete_organisation(session, principal, org_id, expected)


# --------------------------------------------------------------------------------------------- units (admin)


@api.route(
    "POST",
    "/api/v1/units",
    summary="Create a unit (optionally with routes)",
    tags=ADMIN,
    body=s.UnitCreate,
    response=s.UnitOut,
    status=201,
    errors=(409,),
)
async def create_unit(request: web.Request, body: s.UnitCreate) -> web.Response:
    principal = principal_of(request)
    require(principal, "directory.admin")
    ctx = ctx_of(request)
    async with ctx.db.transaction() as session:
        unit = await svc.create_unit(session, principal, body)
        view = await svc.unit_view(session, unit, staff=True, now=ctx.clock())
    Vocabulary.invalidate()
    return with_etag(view, unit.version, 201)


@api.route(
    "PATCH",
    "/api/v1/units/{unit_id}",
    summary="Change a unit (If-Match)",
    tags=ADMIN,
    body=s.UnitPatch,
    response=s.UnitOut,
    errors=EDIT_ERRORS,
)
async def update_unit(request: web.Request, body: s.UnitPatch) -> web.Response:
    principal = principal_of(request)
    unit_id = path_uuid(request, "unit_id", "unit")
    require(principal, "unit.administer", unit_id, detail="Only the unit's administrators may change it.")
    if "organisation_id" in body.model_fields_set:
        require(principal, "directory.admin", detail="Only directory administrators may move a unit.")
    expected = expected_version(request)
    ctx = ctx_of(request)
    async with ctx.db.transaction() as session:
        unit = await svc.update_unit(session, principal, unit_id, expected, body)
        view = await svc.unit_view(session, unit, staff=True, now=ctx.clock())
    Vocabulary.invalidate()
    return with_etag(view, unit.version)


@api.route(
    "DELETE",
    "/api/v1/units/{unit_id}",
    summary="Delete a unit and its routes (If-Match)",
    tags=ADMIN,
    status=204,
    errors=EDIT_ERRORS,
)
async def delete_unit(request: web.Request) -> None:
    principal = principal_of(request)
    require(principal, "directory.admin")
    unit_id = path_uuid(request, "unit_id", "unit")
    expected = expected_version(request)
    async with ctx_of(request).db.transaction() as session:
        await svc.delete_unit(session, principal, unit_id, expected)


# --------------------------------------------------------------------------------------------- routes and closures


@api.route(
    "POST",
    "/api/v1/units/{unit_id}/routes",
    summary="Add a contact route to a unit",
    tags=ADMIN,
    body=s.RouteCreate,
    response=s.RouteOut,
    status=201,
    errors=(404,),
)
async def create_route(request: web.Request, body: s.RouteCreate) -> web.Response:
    principal = principal_of(request)
    unit_id = path_uuid(request, "unit_id", "unit")
    async with ctx_of(request).db.transaction() as session:
        unit = await _unit_for_edit(session, principal, unit_id)
        route = await svc.create_route(session, principal, unit, body)
        return with_etag(svc.route_out(route), route.version, 201)


async def _route_unit(session: AsyncSession, principal: Principal, route_id: uuid.UUID) -> ContactRoute:
    route = await svc.get_route(session, route_id)
    require(principal, "unit.administer", route.unit_id, detail="Only the unit's administrators may change it.")
    return route


@api.route(
    "PATCH",
    "/api/v1/routes/{route_id}",
    summary="Change a contact route and its hours (If-Match)",
    tags=ADMIN,
    body=s.RoutePatch,
    response=s.RouteOut,
    errors=EDIT_ERRORS,
)
async def update_route(request: web.Request, body: s.RoutePatch) -> web.Response:
    principal = principal_of(request)
    route_id = path_uuid(request, "route_id", "contact route")
    expected = expected_version(request)
    async with ctx_of(request).db.transaction() as session:
        await _route_unit(session, principal, route_id)
        route = await svc.update_route(session, principal, route_id, expected, body)
        return with_etag(svc.route_out(route), route.version)


@api.route(
    "DELETE",
    "/api/v1/routes/{route_id}",
    summary="Delete a contact route (If-Match)",
    tags=ADMIN,
    status=204,
    errors=EDIT_ERRORS,
)
async def delete_route(request: web.Request) -> None:
    principal = principal_of(request)
    route_id = path_uuid(request, "route_id", "contact route")
    expected = expected_version(request)
    async with ctx_of(request).db.transaction() as session:
        await _route_unit(session, principal, route_id)
        await svc.delete_route(session, principal, route_id, expected)


@api.route(
    "POST",
    "/api/v1/units/{unit_id}/closures",
    summary="Add a closure or notice to a unit (or one route)",
    tags=ADMIN,
    body=s.ClosureCreate,
    response=s.ClosureOut,
    status=201,
    errors=(404,),
)
async def create_closure(request: web.Request, body: s.ClosureCreate) -> s.ClosureOut:
    principal = principal_of(request)
    unit_id = path_uuid(request, "unit_id", "unit")
    async with ctx_of(request).db.transaction() as session:
        unit = await _unit_for_edit(session, principal, unit_id)
        closure = await svc.add_closure(session, principal, unit, body)
        return s.ClosureOut.model_validate(closure, from_attributes=True)


@api.route(
    "DELETE",
    "/api/v1/closures/{closure_id}",
    summary="Remove a closure or notice",
    tags=ADMIN,
    status=204,
    errors=(404,),
)
async def delete_closure(request: web.Request) -> None:
    principal = principal_of(request)
    closure_id = path_uuid(request, "closure_id", "closure")
    async with ctx_of(request).db.transaction() as session:
        from server.directory.models import Closure

        closure = await session.get(Closure, closure_id)
        if closure is None:
            raise NotFound("closure")
        require(principal, "unit.administer", closure.unit_id, detail="Only the unit's administrators may change it.")
        await svc.remove_closure(session, principal, closure_id)


# --------------------------------------------------------------------------------------------- endpoints, affiliations


@api.route(
    "POST",
    "/api/v1/endpoints",
    summary="Create an endpoint",
    tags=ADMIN,
    body=s.EndpointCreate,
    response=s.EndpointOut,
    status=201,
    errors=(404,),
)
async def create_endpoint(request: web.Request, body: s.EndpointCreate) -> web.Response:
    principal = principal_of(request)
    if body.unit_id is not None:
        require(principal, "unit.administer", body.unit_id)
    else:
        require(principal, "directory.admin")
    async with ctx_of(request).db.transaction() as session:
        endpoint = await svc.create_endpoint(session, principal, body)
        return with_etag(s.EndpointOut.model_validate(endpoint, from_attributes=True), endpoint.version, 201)


async def _endpoint_admin(session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID) -> None:
    endpoint = await store.live(session, Endpoint, endpoint_id)
    if endpoint is None:
        raise NotFound("endpoint")
    if endpoint.unit_id is not None:
        require(principal, "unit.administer", endpoint.unit_id)
    else:
        require(principal, "directory.admin")


@api.route(
    "PATCH",
    "/api/v1/endpoints/{endpoint_id}",
    summary="Change an endpoint (If-Match)",
    tags=ADMIN,
    body=s.EndpointPatch,
    response=s.EndpointOut,
    errors=EDIT_ERRORS,
)
async def update_endpoint(request: web.Request, body: s.EndpointPatch) -> web.Response:
    principal = principal_of(request)
    endpoint_id = path_uuid(request, "endpoint_id", "endpoint")
    expected = expected_version(request)
    async with ctx_of(request).db.transaction() as session:
        await _endpoint_admin(session, principal, endpoint_id)
        endpoint = await svc.update_endpoint(session, principal, endpoint_id, expected, body)
        return with_etag(s.EndpointOut.model_validate(endpoint, from_attributes=True), endpoint.version)


@api.route(
    "DELETE",
    "/api/v1/endpoints/{endpoint_id}",
    summary="Delete an endpoint (If-Match)",
    tags=ADMIN,
    status=204,
    errors=EDIT_ERRORS,
)
async def delete_endpoint(request: web.Request) -> None:
    principal = principal_of(request)
    endpoint_id = path_uuid(request, "endpoint_id", "endpoint")
    expected = expected_version(request)
    async with ctx_of(request).db.transaction() as session:
        await _endpoint_admin(session, principal, endpoint_id)
        await svc.delete_endpoint(session, principal, endpoint_id, expected)


@api.route(
    "POST",
    "/api/v1/affiliations",
    summary="Create an affiliation",
    tags=ADMIN,
    body=s.AffiliationCreate,
    response=s.AffiliationOut,
    status=201,
    errors=(422,),
)
async def create_affiliation(request: web.Request, body: s.AffiliationCreate) -> web.Response:
    principal = principal_of(request)
    require(principal, "directory.admin")
    async with ctx_of(request).db.transaction() as session:
        affiliation = await svc.create_affiliation(session, principal, body)
        return with_etag(s.AffiliationOut.model_validate(affiliation, from_attributes=True), affiliation.version, 201)


@api.route(
    "PATCH",
    "/api/v1/affiliations/{affiliation_id}",
    summary="Change an affiliation (If-Match)",
    tags=ADMIN,
    body=s.AffiliationPatch,
    response=s.AffiliationOut,
    errors=EDIT_ERRORS,
)
async def update_affiliation(request: web.Request, body: s.AffiliationPatch) -> web.Response:
    principal = principal_of(request)
    require(principal, "directory.admin")
    affiliation_id = path_uuid(request, "affiliation_id", "affiliation")
    expected = expected_version(request)
    async with ctx_of(request).db.transaction() as session:
        affiliation = await svc.update_affiliation(session, principal, affiliation_id, expected, body)
        return with_etag(s.AffiliationOut.model_validate(affiliation, from_attributes=True), affiliation.version)


@api.route(
    "DELETE",
    "/api/v1/affiliations/{affiliation_id}",
    summary="Delete an affiliation (If-Match)",
    tags=ADMIN,
    status=204,
    errors=EDIT_ERRORS,
)
async def delete_affiliation(request: web.Request) -> None:
    principal = principal_of(request)
    require(principal, "directory.admin")
    affiliation_id = path_uuid(request, "affiliation_id", "affiliation")
    expected = expected_version(request)
    async with ctx_of(request).db.transaction() as session:
        await svc.delete_affiliation(session, principal, affiliation_id, expected)


# --------------------------------------------------------------------------------------------- import / export


async def read_upload(request: web.Request) -> bytes:
    """The request body up to BRYGGA_MAX_UPLOAD_BYTES (directory files outgrow the 1 MiB JSON body limit)."""
    limit = ctx_of(request).settings.max_upload_bytes
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise Problem(
                "payload_too_large",
                f"The file is larger than {limit // 1048576} MiB; split it or use `brygga directory import`.",
                status=413,
            )
        chunks.append(chunk)
    return b"".join(chunks)


class ImportQuery(BaseModel):
    format: importer.Format | None = Field(default=None, description="csv or json; default from Content-Type.")
    dry_run: bool = Field(default=False, description="Validate and report only; commit nothing.")


@api.route(
    "POST",
    "/api/v1/directory/import",
    summary="Import units and routes (CSV or JSON, all or nothing)",
    tags=ADMIN,
    query=ImportQuery,
    response=importer.ImportReport,
    raw_body="text/csv",
    errors=(413, 415),
    description="Body: CSV (text/csv) or JSON (application/json) in the export format. Answers 200 with a report "
    "of every rejected row (line number and reason); `committed` is true only when every row was valid.",
)
async def import_directory(request: web.Request, query: ImportQuery) -> importer.ImportReport:
    principal = principal_of(request)
    require(principal, "directory.admin")
    fmt = query.format or ("json" if request.content_type == "application/json" else "csv")
    raw = await read_upload(request)
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem("not_utf8", "Save the file as UTF-8 and upload it again.", status=415) from None
    report = await importer.run_import(ctx_of(request), content, fmt, dry_run=query.dry_run, actor=principal)
    Vocabulary.invalidate()
    return report


class ExportQuery(BaseModel):
    format: importer.Format = "json"


@api.route(
    "GET", "/api/v1/directory/export", summary="Export the directory (CSV or JSON)", tags=ADMIN, query=ExportQuery
)
async def export_directory(request: web.Request, query: ExportQuery) -> web.Response:
    principal = principal_of(request)
    require(principal, "directory.admin")
    body = await importer.export(ctx_of(request), query.format)
    content_type = "text/csv" if query.format == "csv" else "application/json"
    stamp = datetime.now().strftime("%Y%m%d")
    return web.Response(
        text=body,
        content_type=content_type,
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="brygga-directory-{stamp}.{query.format}"'},
    )


class Municipality(BaseModel):
    code: str
    name: str


class DirectoryVocabulary(BaseModel):
    org_kinds: list[str]
    unit_types: list[str]
    purposes: list[str]
    channels: list[str]
    audiences: list[str]
    holiday_rules: list[str]
    municipalities: list[Municipality] = Field(description="The 26 Stockholm County municipalities (SCB codes).")


@api.route(
    "GET",
    "/api/v1/directory/vocabulary",
    summary="Codes for forms and filters (unit types, purposes, channels, municipalities)",
    tags=TAGS,
    response=DirectoryVocabulary,
)
async def directory_vocabulary(request: web.Request) -> DirectoryVocabulary:
    from server.directory import text

    return DirectoryVocabulary(
        org_kinds=list(text.ORG_KINDS),
        unit_types=list(text.UNIT_TYPES),
        purposes=list(text.PURPOSES),
        channels=list(text.CHANNELS),
        audiences=list(text.AUDIENCES),
        holiday_rules=list(text.HOLIDAY_RULES),
        municipalities=[Municipality(code=code, name=name) for code, name in text.MUNICIPALITIES.items()],
    )
