"""Directory REST API (/api/v1): search, unit pages, reachability, admin editing with ETag/If-Match, history.

Thin: parse, call `DirectoryService`, shape the answer. Authorisation, transactions and audit are the service's.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

from server.core.api import ApiRouter, body_chunks, path_uuid
from server.core.context import ctx_of
from server.core.errors import Problem
from server.core.http import client_address
from server.core.principal import Principal
from server.directory import importer, versioning
from server.directory import schemas as s
from server.directory.hours import TZ
from server.directory.service import DirectoryService, Saved
from server.identity.authn import principal_of

api = ApiRouter()
TAGS = ["directory"]
ADMIN = ["directory admin"]
EDIT_ERRORS = (404, 409, 412, 428)


def service_of(request: web.Request) -> DirectoryService:
    ctx = ctx_of(request)
    return DirectoryService(ctx.db, ctx.clock)


def with_etag(model: BaseModel, version: int, status: int = 200) -> web.Response:
    return web.Response(
        text=model.model_dump_json(),
        status=status,
        content_type="application/json",
        headers={"ETag": versioning.etag(version)},
    )


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
    return await service_of(request).search_units(query)


@api.route(
    "GET",
    "/api/v1/units/{unit_id}",
    summary="A unit with its contact routes",
    tags=TAGS,
    response=s.UnitOut,
    errors=(404,),
)
async def get_unit(request: web.Request) -> web.Response:
    saved = await service_of(request).unit(path_uuid(request, "unit_id", "unit"))
    return with_etag(saved.view, saved.version)


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
    return await service_of(request).reachability(unit_id, query.at, query.purpose)


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
    return await service_of(request).organisations(query.q, query.kind, query.municipality, query.limit, query.cursor)


@api.route(
    "GET",
    "/api/v1/organisations/{org_id}",
    summary="An organisation",
    tags=TAGS,
    response=s.OrganisationOut,
    errors=(404,),
)
async def get_organisation(request: web.Request) -> web.Response:
    saved = await service_of(request).organisation(path_uuid(request, "org_id", "organisation"))
    return with_etag(saved.view, saved.version)


@api.route("GET", "/api/v1/routes/{route_id}", summary="A contact route", tags=TAGS, response=s.RouteOut, errors=(404,))
async def get_route(request: web.Request) -> web.Response:
    saved = await service_of(request).route(path_uuid(request, "route_id", "contact route"))
    return with_etag(saved.view, saved.version)


class EndpointList(BaseModel):
    items: list[s.EndpointOut]


class AffiliationList(BaseModel):
    items: list[s.AffiliationOut]


class PartyQuery(BaseModel):
    party: uuid.UUID | None = Field(default=None, description="Organisation or unit id (either side / owner).")


@api.route("GET", "/api/v1/endpoints", summary="List endpoints", tags=TAGS, query=PartyQuery, response=EndpointList)
async def list_endpoints(request: web.Request, query: PartyQuery) -> EndpointList:
    return EndpointList(items=await service_of(request).endpoints(query.party))


@api.route(
    "GET", "/api/v1/affiliations", summary="List affiliations", tags=TAGS, query=PartyQuery, response=AffiliationList
)
async def list_affiliations(request: web.Request, query: PartyQuery) -> AffiliationList:
    return AffiliationList(items=await service_of(request).affiliations(query.party))


for _kind, _segment in (
    ("organisation", "organisations"),
    ("unit", "units"),
    ("route", "routes"),
    ("endpoint", "endpoints"),
    ("affiliation", "affiliations"),
):

    def _history_handler(kind: str) -> Callable[[web.Request], Awaitable[s.History]]:
        async def handler(request: web.Request) -> s.History:
            return await service_of(request).history(kind, path_uuid(request, "object_id", kind))

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
    return await service_of(request).changes(query.since, query.limit)


# --------------------------------------------------------------------------------------------- admin editing


@dataclass(frozen=True)
class Editable:
    """One kind of versioned object the admin API creates, changes (If-Match) and deletes (If-Match)."""

    kind: str
    what: str  # the noun a 404 names
    collection: str  # POST here creates
    item: str  # PATCH/DELETE here; its one path parameter is the id
    create_body: type[BaseModel]
    patch_body: type[BaseModel]
    response: type[BaseModel]
    create_summary: str
    patch_summary: str
    delete_summary: str
    create_errors: tuple[int, ...]
    create: Callable[[DirectoryService, Principal, web.Request, Any], Awaitable[Saved[Any]]]
    update: Callable[[DirectoryService, Principal, uuid.UUID, int | None, Any], Awaitable[Saved[Any]]]
    delete: Callable[[DirectoryService, Principal, uuid.UUID, int | None], Awaitable[None]]


def versioned_crud(spec: Editable) -> None:
    """Register create/patch/delete for one kind: ETag on answers, If-Match on changes."""
    id_name = spec.item.rsplit("{", 1)[1].rstrip("}")

    async def create(request: web.Request, body: BaseModel) -> web.Response:
        saved = await spec.create(service_of(request), principal_of(request), request, body)
        return with_etag(saved.view, saved.version, 201)

    async def update(request: web.Request, body: BaseModel) -> web.Response:
        object_id = path_uuid(request, id_name, spec.what)
        expected = versioning.parse_if_match(request.headers.get("If-Match"))
        saved = await spec.update(service_of(request), principal_of(request), object_id, expected, body)
        return with_etag(saved.view, saved.version)

    async def delete(request: web.Request) -> None:
        object_id = path_uuid(request, id_name, spec.what)
        expected = versioning.parse_if_match(request.headers.get("If-Match"))
        await spec.delete(service_of(request), principal_of(request), object_id, expected)

    for handler, verb in ((create, "create"), (update, "update"), (delete, "delete")):
        handler.__name__ = f"{verb}_{spec.kind}"
    api.route(
        "POST",
        spec.collection,
        summary=spec.create_summary,
        tags=ADMIN,
        body=spec.create_body,
        response=spec.response,
        status=201,
        errors=spec.create_errors,
    )(create)
    api.route(
        "PATCH",
        spec.item,
        summary=spec.patch_summary,
        tags=ADMIN,
        body=spec.patch_body,
        response=spec.response,
        errors=EDIT_ERRORS,
    )(update)
    api.route("DELETE", spec.item, summary=spec.delete_summary, tags=ADMIN, status=204, errors=EDIT_ERRORS)(delete)


for _spec in (
    Editable(
        kind="organisation",
        what="organisation",
        collection="/api/v1/organisations",
        item="/api/v1/organisations/{org_id}",
        create_body=s.OrganisationCreate,
        patch_body=s.OrganisationPatch,
        response=s.OrganisationOut,
        create_summary="Create an organisation",
        patch_summary="Change an organisation (If-Match)",
        delete_summary="Delete an organisation (If-Match)",
        create_errors=(409,),
        create=lambda service, actor, _request, body: service.create_organisation(actor, body),
        update=DirectoryService.update_organisation,
        delete=DirectoryService.delete_organisation,
    ),
    Editable(
        kind="unit",
        what="unit",
        collection="/api/v1/units",
        item="/api/v1/units/{unit_id}",
        create_body=s.UnitCreate,
        patch_body=s.UnitPatch,
        response=s.UnitOut,
        create_summary="Create a unit (optionally with routes)",
        patch_summary="Change a unit (If-Match)",
        delete_summary="Delete a unit and its routes (If-Match)",
        create_errors=(409,),
        create=lambda service, actor, _request, body: service.create_unit(actor, body),
        update=DirectoryService.update_unit,
        delete=DirectoryService.delete_unit,
    ),
    Editable(
        kind="route",
        what="contact route",
        collection="/api/v1/units/{unit_id}/routes",
        item="/api/v1/routes/{route_id}",
        create_body=s.RouteCreate,
        patch_body=s.RoutePatch,
        response=s.RouteOut,
        create_summary="Add a contact route to a unit",
        patch_summary="Change a contact route and its hours (If-Match)",
        delete_summary="Delete a contact route (If-Match)",
        create_errors=(404,),
        create=lambda service, actor, request, body: service.create_route(
            actor, path_uuid(request, "unit_id", "unit"), body
        ),
        update=DirectoryService.update_route,
        delete=DirectoryService.delete_route,
    ),
    Editable(
        kind="endpoint",
        what="endpoint",
        collection="/api/v1/endpoints",
        item="/api/v1/endpoints/{endpoint_id}",
        create_body=s.EndpointCreate,
        patch_body=s.EndpointPatch,
        response=s.EndpointOut,
        create_summary="Create an endpoint",
        patch_summary="Change an endpoint (If-Match)",
        delete_summary="Delete an endpoint (If-Match)",
        create_errors=(404,),
        create=lambda service, actor, _request, body: service.create_endpoint(actor, body),
        update=DirectoryService.update_endpoint,
        delete=DirectoryService.delete_endpoint,
    ),
    Editable(
        kind="affiliation",
        what="affiliation",
        collection="/api/v1/affiliations",
        item="/api/v1/affiliations/{affiliation_id}",
        create_body=s.AffiliationCreate,
        patch_body=s.AffiliationPatch,
        response=s.AffiliationOut,
        create_summary="Create an affiliation",
        patch_summary="Change an affiliation (If-Match)",
        delete_summary="Delete an affiliation (If-Match)",
        create_errors=(422,),
        create=lambda service, actor, _request, body: service.create_affiliation(actor, body),
        update=DirectoryService.update_affiliation,
        delete=DirectoryService.delete_affiliation,
    ),
):
    versioned_crud(_spec)


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
    unit_id = path_uuid(request, "unit_id", "unit")
    return await service_of(request).add_closure(principal_of(request), unit_id, body)


@api.route(
    "PUT",
    "/api/v1/units/{unit_id}/members/{user_id}/publication",
    summary="Publish a unit member in the directory (FHIR Practitioner/PractitionerRole) with a role title, or not",
    tags=ADMIN,
    body=s.PublicationSet,
    response=s.PublicationOut,
    errors=(404,),
    description="Unit administrators, the organisation's membership administrators and directory administrators. "
    "Every change is a new FHIR version; unpublishing shows the PractitionerRole as deleted in `_history`.",
)
async def put_publication(request: web.Request, body: s.PublicationSet) -> s.PublicationOut:
    unit_id = path_uuid(request, "unit_id", "unit")
    user_id = path_uuid(request, "user_id", "user")
    return await service_of(request).set_publication(
        principal_of(request), unit_id, user_id, body, ip=client_address(request)
    )


@api.route(
    "DELETE",
    "/api/v1/closures/{closure_id}",
    summary="Remove a closure or notice",
    tags=ADMIN,
    status=204,
    errors=(404,),
)
async def delete_closure(request: web.Request) -> None:
    closure_id = path_uuid(request, "closure_id", "closure")
    await service_of(request).remove_closure(principal_of(request), closure_id)


@api.route(
    "POST",
    "/api/v1/units/{unit_id}/hours-preview",
    summary="Preview unsaved opening hours of a route over the next 14 days",
    tags=ADMIN,
    body=s.HoursPreviewIn,
    response=s.HoursPreview,
    errors=(404,),
    description="Nothing is saved. Counts Swedish holidays, the unit's closures (and the route's, with `route_id`) "
    "and validity; answers whether the route would be usable now and when it next opens.",
)
async def hours_preview(request: web.Request, body: s.HoursPreviewIn) -> s.HoursPreview:
    unit_id = path_uuid(request, "unit_id", "unit")
    return await service_of(request).hours_preview(principal_of(request), unit_id, body)


# --------------------------------------------------------------------------------------------- import / export


async def read_upload(request: web.Request) -> bytes:
    """The request body up to BRYGGA_MAX_UPLOAD_BYTES (directory files outgrow the 1 MiB JSON body limit)."""
    limit = ctx_of(request).settings.max_upload_bytes
    chunks: list[bytes] = []
    size = 0
    async for chunk in body_chunks(request, 65536):
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
    service = service_of(request)
    service.authorise_import(principal)  # before reading a large body
    fmt = query.format or ("json" if request.content_type == "application/json" else "csv")
    raw = await read_upload(request)
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Problem("not_utf8", "Save the file as UTF-8 and upload it again.", status=415) from None
    return await service.import_directory(principal, content, fmt, dry_run=query.dry_run)


class ExportQuery(BaseModel):
    format: importer.Format = "json"


@api.route(
    "GET", "/api/v1/directory/export", summary="Export the directory (CSV or JSON)", tags=ADMIN, query=ExportQuery
)
async def export_directory(request: web.Request, query: ExportQuery) -> web.Response:
    body, taken = await service_of(request).export_directory(principal_of(request), query.format)
    content_type = "text/csv" if query.format == "csv" else "application/json"
    stamp = taken.astimezone(TZ).strftime("%Y%m%d")
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
