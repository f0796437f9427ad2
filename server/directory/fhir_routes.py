"""FHIR R4 transport under /fhir (application/fhir+json). Every error, including unknown paths, is an
OperationOutcome. Authentication is optional: anonymous callers see public contact routes only; a bearer
token or session shows staff routes too. The server is read-only (writes answer 405).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from server import __version__
from server.core.api import body_deadline
from server.core.context import ctx_of
from server.core.errors import Problem
from server.directory import fhir, fhir_query
from server.directory.routes import service_of
from server.identity.authn import SESSION_COOKIE, authenticate

FHIR_JSON = "application/fhir+json"
MCSD_DIRECTORY = "https://profiles.ihe.net/ITI/mCSD/CapabilityStatement/IHE.mCSD.Directory"
PARAM_TYPES = {
    "name": "string",
    "identifier": "token",
    "partof": "reference",
    "type": "token",
    "active": "token",
    "organization": "reference",
    "location": "reference",
    "status": "token",
    "service-type": "token",
    "connection-type": "token",
    "participating-organization": "reference",
    "primary-organization": "reference",
    "role": "token",
    "practitioner": "reference",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fhir_response(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(body, ensure_ascii=False),
        status=status,
        content_type=FHIR_JSON,
        charset="utf-8",
        headers=headers or {},
    )


def outcome(status: int, code: str, diagnostics: str) -> web.Response:
    severity = "error" if status < 500 else "fatal"
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }
    return fhir_response(body, status)


ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    410: "deleted",
    412: "conflict",
    415: "not-supported",
}


def fhir_endpoint(handler: Handler) -> Handler:
    """Turn every error into an OperationOutcome (the app middleware would render problem JSON)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            fmt = request.query.get("_format", "json")
            accept = request.headers.get("Accept", "")
            only_xml = "xml" in accept and not any(kind in accept for kind in ("json", "*/*"))
            if fmt not in ("json", "application/json", "application/fhir+json") or only_xml:
                return outcome(
                    406, "not-supported", "Only JSON is supported (_format=json, Accept: application/fhir+json)."
                )
            return await handler(request)
        except fhir.FhirError as error:
            return outcome(error.status, error.code, error.detail)
        except Problem as problem:
            return outcome(problem.status, ISSUE_CODES.get(problem.status, "processing"), problem.detail)

    wrapped.__name__ = handler.__name__
    return wrapped


async def is_staff(request: web.Request) -> bool:
    if request.headers.get("Authorization") or request.cookies.get(SESSION_COOKIE):
        await authenticate(request)  # raises 401 on a bad token
        return True
    return False


def base_url(request: web.Request) -> str:
    return ctx_of(request).settings.public_base_url.rstrip("/") + "/fhir"


def resource_type_of(request: web.Request) -> str:
    resource_type = request.match_info["type"]
    if resource_type not in fhir.TYPES:
        raise fhir.FhirError(
            404, "not-supported", f"Resource type '{resource_type}' is not served here; see /fhir/metadata."
        )
    return resource_type


def object_id_of(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise fhir.FhirError(404, "not-found", "No such resource id.") from None


def read_only(request: web.Request) -> None:
    if request.method not in ("GET", "HEAD"):
        raise fhir.FhirError(405, "not-supported", "This FHIR server is read-only; change the directory in Brygga.")


# --------------------------------------------------------------------------------------------- handlers


@fhir_endpoint
async def metadata(request: web.Request) -> web.StreamResponse:
    read_only(request)
    resources = []
    for resource_type in fhir.TYPES:
        params = [
            {"name": name, "type": PARAM_TYPES.get(name, "string")}
            for name in sorted(fhir_query.SEARCH_PARAMS[resource_type])
        ]
        params += [
            {"name": "_id", "type": "token"},
            {"name": "_lastUpdated", "type": "date"},
            {"name": "_summary", "type": "token", "documentation": "count: the total only"},
        ]
        resource: dict[str, Any] = {
            "type": resource_type,
            "interaction": [
                {"code": code} for code in ("read", "vread", "search-type", "history-instance", "history-type")
            ],
            "versioning": "versioned",
            "readHistory": True,
            "profile": fhir.MCSD_PROFILE.format(resource_type),
            "searchParam": params,
        }
        if fhir_query.INCLUDES[resource_type]:
            resource["searchInclude"] = sorted(fhir_query.INCLUDES[resource_type])
        if fhir_query.REVINCLUDES[resource_type]:
            resource["searchRevInclude"] = sorted(fhir_query.REVINCLUDES[resource_type])
        resources.append(resource)
    body = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "publisher": "Brygga",
        "kind": "instance",
        "instantiates": [MCSD_DIRECTORY],
        "software": {"name": "Brygga", "version": __version__},
        "implementation": {
            "description": "Brygga contact directory (IHE mCSD Directory, read-only)",
            "url": base_url(request),
        },
        "fhirVersion": fhir.FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Anonymous access shows public contact routes only; send a Brygga bearer token "
                "to see staff routes. Practitioners and their roles are the unit memberships marked public, "
                "for every caller. Times are Europe/Stockholm.",
                "security": {"cors": False, "description": "Optional bearer token (personal access token) or session."},
                "resource": resources,
            }
        ],
    }
    return fhir_response(body)


def _page_link(request: web.Request, pairs: list[tuple[str, str]], offset: int, count: int) -> str:
    """A GET link with the search's parameters (a POST _search's body ones too) at another page."""
    pairs = [(k, v) for k, v in pairs if k not in ("_offset", "_count")]
    pairs += [("_count", str(count)), ("_offset", str(offset))]
    return f"{base_url(request)}/{request.match_info['type']}?{urlencode(pairs)}"


async def _query_pairs(request: web.Request) -> list[tuple[str, str]]:
    pairs = list(request.query.items())
    if request.method == "POST":
        async with body_deadline(request):
            form = await request.post()
        pairs += [(key, str(value)) for key, value in form.items()]
    return pairs


@fhir_endpoint
async def search_type(request: web.Request) -> web.StreamResponse:
    read_only(request)
    return await _search(request, list(request.query.items()))


@fhir_endpoint
async def search_post(request: web.Request) -> web.StreamResponse:
    if request.method != "POST":
        raise fhir.FhirError(405, "not-supported", "Use POST for _search, or GET on the type.")
    return await _search(request, await _query_pairs(request))


async def _search(request: web.Request, pairs: list[tuple[str, str]]) -> web.StreamResponse:
    resource_type = resource_type_of(request)
    staff = await is_staff(request)
    if "handling=lenient" in request.headers.get("Prefer", "").replace(" ", ""):
        pairs = fhir_query.supported(resource_type, pairs)  # ignore what is not understood (FHIR lenient handling)
    result = await service_of(request).fhir_search(resource_type, pairs, staff=staff)
    base = base_url(request)
    links = [{"relation": "self", "url": _page_link(request, pairs, result.offset, result.count)}]
    if result.offset + result.count < result.total and result.count > 0:
        links.append(
            {"relation": "next", "url": _page_link(request, pairs, result.offset + result.count, result.count)}
        )
    if result.offset > 0:
        previous = max(0, result.offset - result.count)
        links.append({"relation": "previous", "url": _page_link(request, pairs, previous, result.count)})
    entries = [
        {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "match"}}
        for r in result.matches
    ] + [
        {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "include"}}
        for r in result.included
    ]
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": _now(request)},
        "type": "searchset",
        "total": result.total,
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return fhir_response(bundle)


def _now(request: web.Request) -> str:
    return ctx_of(request).clock().astimezone(UTC).isoformat().replace("+00:00", "Z")


@fhir_endpoint
async def read(request: web.Request) -> web.StreamResponse:
    read_only(request)
    resource_type = resource_type_of(request)
    object_id = object_id_of(request)
    staff = await is_staff(request)
    resource = await service_of(request).fhir_read(resource_type, object_id, staff=staff)
    return _versioned(resource)


def _versioned(resource: dict[str, Any]) -> web.Response:
    meta = resource["meta"]
    modified = datetime.fromisoformat(meta["lastUpdated"].replace("Z", "+00:00"))
    return fhir_response(
        resource,
        headers={
            "ETag": f'W/"{meta["versionId"]}"',
            "Last-Modified": modified.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        },
    )


@fhir_endpoint
async def vread(request: web.Request) -> web.StreamResponse:
    read_only(request)
    resource_type = resource_type_of(request)
    object_id = object_id_of(request)
    version = request.match_info["vid"]
    if not version.isdigit():
        raise fhir.FhirError(404, "not-found", "Version ids are whole numbers.")
    staff = await is_staff(request)
    resource = await service_of(request).fhir_vread(resource_type, object_id, int(version), staff=staff)
    return _versioned(resource)


@fhir_endpoint
async def history_type(request: web.Request) -> web.StreamResponse:
    read_only(request)
    return await _history(request, None)


@fhir_endpoint
async def history_instance(request: web.Request) -> web.StreamResponse:
    read_only(request)
    return await _history(request, object_id_of(request))


async def _history(request: web.Request, object_id: uuid.UUID | None) -> web.StreamResponse:
    resource_type = resource_type_of(request)
    staff = await is_staff(request)
    unknown = set(request.query) - {"_since", "_count", "_offset", "_format", "_at"}
    if unknown:
        raise fhir.FhirError(400, "invalid", f"Unsupported history parameter(s): {sorted(unknown)}.")
    try:
        count = max(0, min(int(request.query.get("_count", fhir.DEFAULT_COUNT)), fhir.MAX_COUNT))
        offset = max(0, int(request.query.get("_offset", 0)))
    except ValueError:
        raise fhir.FhirError(400, "invalid", "_count and _offset are whole numbers.") from None
    total, versions = await service_of(request).fhir_history(
        resource_type,
        object_id=object_id,
        since=request.query.get("_since"),
        count=count,
        offset=offset,
        staff=staff,
    )
    base = base_url(request)
    path = f"{base}/{resource_type}" + (f"/{object_id}" if object_id else "") + "/_history"
    entries = []
    for version in versions:
        url = f"{resource_type}/{version.resource_id}"
        entry: dict[str, Any] = {"fullUrl": f"{base}/{url}"}
        operation = "delete" if fhir_query.hidden_from(version, staff=staff) else version.operation
        method, status = {
            "create": ("POST", "201 Created"),
            "update": ("PUT", "200 OK"),
            "delete": ("DELETE", "204 No Content"),
        }[operation]
        if operation != "delete":
            entry["resource"] = fhir.render(
                resource_type, version.resource_type, version.snapshot, version.version, version.at
            )
        entry["request"] = {"method": method, "url": url if method == "POST" else f"{url}"}
        entry["response"] = {
            "status": status,
            "etag": f'W/"{version.version}"',
            "lastModified": version.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        }
        entries.append(entry)

    def link(at: int) -> str:
        pairs = [(k, v) for k, v in request.query.items() if k not in ("_offset", "_count")]
        return f"{path}?{urlencode([*pairs, ('_count', str(count)), ('_offset', str(at))])}"

    links = [{"relation": "self", "url": link(offset)}]
    if offset + count < total and count > 0:
        links.append({"relation": "next", "url": link(offset + count)})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": _now(request)},
        "type": "history",
        "total": total,
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return fhir_response(bundle)


@fhir_endpoint
async def unknown(request: web.Request) -> web.StreamResponse:
    raise fhir.FhirError(404, "not-found", "There is no such FHIR endpoint; see /fhir/metadata.")


def setup_fhir(app: web.Application) -> None:
    router = app.router
    router.add_route("*", "/fhir/metadata", metadata)
    router.add_route("*", "/fhir/{type}/_history", history_type)
    router.add_route("*", "/fhir/{type}/_search", search_post)
    router.add_route("*", "/fhir/{type}/{id}/_history/{vid}", vread)
    router.add_route("*", "/fhir/{type}/{id}/_history", history_instance)
    router.add_route("*", "/fhir/{type}/{id}", read)
    router.add_route("*", "/fhir/{type}", search_type)
    router.add_route("*", "/fhir", unknown)
    router.add_route("*", "/fhir/{tail:.*}", unknown)
