"""FHIR R4 (IHE mCSD Directory, read-only): resources rendered from directory snapshots, ITI-90 search, ITI-91 history.

Mapping: organisation → Organization; unit → Organization (partOf its parent or organisation) + Location;
contact route → HealthcareService (telecom, availableTime, notAvailable, availabilityExceptions);
endpoint → Endpoint; affiliation → OrganizationAffiliation. Every resource is rendered from the same
snapshot dict that the version history stores, so read, vread and _history agree.

Visibility: anonymous callers see public contact routes only; staff-only routes need a token or session.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.errors import Problem
from server.core.models import Organisation, Unit
from server.directory import hours as hrs
from server.directory import service as svc
from server.directory import store
from server.directory.importer import format_timespan
from server.directory.models import Affiliation, ContactRoute, DirectoryVersion, Endpoint
from server.directory.schemas import TimeSpanIn
from server.directory.text import MUNICIPALITIES, fold

FHIR_VERSION = "4.0.1"
BASE_CS = "https://brygga.se/fhir/CodeSystem"
EXT_TIMESPAN = "https://brygga.se/fhir/StructureDefinition/hsa-timespan"
OID_HSA = "urn:oid:1.2.752.29.4.19"
OID_ORGNR = "urn:oid:2.5.4.97"
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
PHYSICAL = "http://terminology.hl7.org/CodeSystem/location-physical-type"
PAYLOAD = "http://terminology.hl7.org/CodeSystem/endpoint-payload-type"
MUNICIPALITY_CS = f"{BASE_CS}/municipality"
DAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LOCATION_TYPE = {
    "ward": "HU",
    "primary_care": "PC",
    "nursing_home": "NCCF",
    "short_term_care": "NCCF",
    "home_care": "PTRES",
    "municipal_health_care": "COMM",
    "social_services": "COMM",
}
TELECOM = {
    "phone": "phone",
    "fax": "fax",
    "email": "email",
    "video": "url",
    "secure_message": "other",
    "sip_text": "other",
}
TYPES = ("Organization", "Location", "HealthcareService", "Endpoint", "OrganizationAffiliation")
HISTORY_TYPES = {
    "Organization": ("organisation", "unit"),
    "Location": ("unit",),
    "HealthcareService": ("route",),
    "Endpoint": ("endpoint",),
    "OrganizationAffiliation": ("affiliation",),
}
DEFAULT_COUNT, MAX_COUNT = 20, 100


class FhirError(Problem):
    """Rendered as an OperationOutcome by the FHIR transport."""

    def __init__(self, status: int, code: str, diagnostics: str) -> None:
        super().__init__(code, diagnostics, status=status)


def _meta(version: int, at: datetime) -> dict[str, Any]:
    return {"versionId": str(version), "lastUpdated": at.astimezone(UTC).isoformat().replace("+00:00", "Z")}


def _ref(resource_type: str, object_id: Any) -> dict[str, str]:
    return {"reference": f"{resource_type}/{object_id}"}


# --------------------------------------------------------------------------------------------- rendering


def organisation_resource(snap: dict[str, Any], version: int, at: datetime) -> dict[str, Any]:
    identifiers = []
    if snap.get("org_number"):
        identifiers.append({"use": "official", "system": OID_ORGNR, "value": snap["org_number"]})
    if snap.get("hsa_id"):
        identifiers.append({"use": "official", "system": OID_HSA, "value": snap["hsa_id"]})
    kind = snap["kind"]
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": snap["id"],
        "meta": _meta(version, at),
        "identifier": identifiers,
        "active": bool(snap["active"]),
        "type": [
            {"coding": [{"system": ORG_TYPE, "code": "govt" if kind != "private" else "prov"}]},
            {"coding": [{"system": f"{BASE_CS}/organisation-kind", "code": kind}]},
        ],
        "name": snap["name"],
    }
    if snap.get("municipality_code"):
        resource["address"] = [{"district": MUNICIPALITIES.get(snap["municipality_code"], ""), "country": "SE"}]
    if not identifiers:
        del resource["identifier"]
    return resource


def _address(snap: dict[str, Any]) -> dict[str, Any] | None:
    address = snap.get("address") or {}
    out: dict[str, Any] = {"use": "work", "type": "physical"}
    if address.get("street"):
        out["line"] = [address["street"]]
    if address.get("town"):
        out["city"] = address["town"]
    if snap.get("municipality_code"):
        out["district"] = MUNICIPALITIES.get(snap["municipality_code"], snap["municipality_code"])
    if address.get("postal_code"):
        out["postalCode"] = address["postal_code"]
    out["country"] = "SE"
    return out if len(out) > 3 else None


def unit_organization(
    snap: dict[str, Any], version: int, at: datetime, endpoints: Sequence[uuid.UUID] = ()
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": snap["id"],
        "meta": _meta(version, at),
        "active": bool(snap["active"]),
        "type": [
            {"coding": [{"system": ORG_TYPE, "code": "prov"}]},
            {"coding": [{"system": f"{BASE_CS}/unit-type", "code": snap["unit_type"]}]},
        ],
        "name": snap["name"],
        "partOf": _ref("Organization", snap.get("parent_id") or snap["organisation_id"]),
    }
    if snap.get("hsa_id"):
        resource["identifier"] = [{"use": "official", "system": OID_HSA, "value": snap["hsa_id"]}]
    if snap.get("aliases"):
        resource["alias"] = list(snap["aliases"])
    address = _address(snap)
    if address:
        resource["address"] = [address]
    if endpoints:
        resource["endpoint"] = [_ref("Endpoint", endpoint_id) for endpoint_id in endpoints]
    return resource


def unit_location(snap: dict[str, Any], version: int, at: datetime) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Location",
        "id": snap["id"],
        "meta": _meta(version, at),
        "status": "active" if snap["active"] else "inactive",
        "name": snap["name"],
        "mode": "instance",
        "type": [
            {"coding": [{"system": ROLE_CODE, "code": LOCATION_TYPE.get(snap["unit_type"], "HU")}]},
            {"coding": [{"system": f"{BASE_CS}/unit-type", "code": snap["unit_type"]}]},
        ],
        "physicalType": {"coding": [{"system": PHYSICAL, "code": "wa" if snap["unit_type"] == "ward" else "bu"}]},
        "managingOrganization": _ref("Organization", snap["id"]),
    }
    if snap.get("hsa_id"):
        resource["identifier"] = [{"use": "official", "system": OID_HSA, "value": snap["hsa_id"]}]
    if snap.get("aliases"):
        resource["alias"] = list(snap["aliases"])
    if snap.get("parent_id"):
        resource["partOf"] = _ref("Location", snap["parent_id"])
    address = _address(snap)
    if address:
        resource["address"] = address
    if snap.get("municipality_code"):
        resource["extension"] = [
            {
                "url": f"{BASE_CS}/municipality-code",
                "valueCoding": {
                    "system": MUNICIPALITY_CS,
                    "code": snap["municipality_code"],
                    "display": MUNICIPALITIES.get(snap["municipality_code"], ""),
                },
            }
        ]
    return resource


def _clock(value: time) -> str:
    return f"{value:%H:%M:%S}"


def available_times(spans: Sequence[TimeSpanIn]) -> tuple[list[dict[str, Any]], list[str]]:
    """R4 availableTime for plain weekly spans; date-bounded and holiday-only spans become exception text."""
    times: list[dict[str, Any]] = []
    exceptions: list[str] = []
    for span in spans:
        hspan = svc.to_span(span)
        if span.from_date or span.to_date or span.holiday_rule == "holidays_only":
            exceptions.append(hspan.describe())
            continue
        if span.holiday_rule == "closed_on_holidays":
            exceptions.append(f"{hspan.describe()}")
        days = [DAY_CODES[d - 1] for d in range(1, 8) if hspan.covers_weekday(d)]
        if span.all_day or span.from_time is None or span.to_time is None:
            times.append({"daysOfWeek": days, "allDay": True})
        elif span.to_time > span.from_time:
            times.append(
                {
                    "daysOfWeek": days,
                    "availableStartTime": _clock(span.from_time),
                    "availableEndTime": _clock(span.to_time),
                }
            )
        else:  # runs past midnight: split into the evening and the next morning
            times.append(
                {"daysOfWeek": days, "availableStartTime": _clock(span.from_time), "availableEndTime": "23:59:59"}
            )
            if span.to_time > time(0):
                next_days = [DAY_CODES[d % 7] for d in range(1, 8) if hspan.covers_weekday(d)]
                times.append(
                    {
                        "daysOfWeek": next_days,
                        "availableStartTime": "00:00:00",
                        "availableEndTime": _clock(span.to_time),
                    }
                )
    return times, exceptions


def route_service(
    snap: dict[str, Any], version: int, at: datetime, unit_closures: Sequence[dict[str, Any]] = ()
) -> dict[str, Any]:
    spans = [
        TimeSpanIn.model_validate({k: v for k, v in span.items() if k != "text"}) for span in snap.get("hours", [])
    ]
    resource: dict[str, Any] = {
        "resourceType": "HealthcareService",
        "id": snap["id"],
        "meta": _meta(version, at),
        "active": snap.get("deleted_at") is None,
        "providedBy": _ref("Organization", snap["unit_id"]),
        "location": [_ref("Location", snap["unit_id"])],
        "type": [
            {"coding": [{"system": f"{BASE_CS}/route-purpose", "code": snap["purpose"]}], "text": snap["purpose"]}
        ],
        "name": snap["label"],
        "telecom": [
            {
                "system": TELECOM.get(snap["channel"], "other"),
                "value": snap["value"],
                "use": "work",
                "rank": max(1, int(snap.get("rank") or 1)),
            }
        ],
        "characteristic": [
            {"coding": [{"system": f"{BASE_CS}/route-channel", "code": snap["channel"]}]},
            {"coding": [{"system": f"{BASE_CS}/route-audience", "code": snap["audience"]}]},
        ],
    }
    if snap.get("note"):
        resource["comment"] = snap["note"]
    if spans:
        times, exceptions = available_times(spans)
        if times:
            resource["availableTime"] = times
        resource["extension"] = [{"url": EXT_TIMESPAN, "valueString": format_timespan(span)} for span in spans]
    else:
        times, exceptions = [{"allDay": True, "daysOfWeek": list(DAY_CODES)}], []
        resource["availableTime"] = times
    not_available = []
    for closure in [*snap.get("closures", []), *unit_closures]:
        if closure.get("kind") != "closure":
            continue
        not_available.append(
            {"description": closure["reason"], "during": {"start": closure["starts_at"], "end": closure["ends_at"]}}
        )
    if not_available:
        resource["notAvailable"] = not_available
    if exceptions:
        resource["availabilityExceptions"] = "; ".join(exceptions) + ". Times are Europe/Stockholm."
    if snap.get("endpoint_id"):
        resource["endpoint"] = [_ref("Endpoint", snap["endpoint_id"])]
    return resource


def endpoint_resource(snap: dict[str, Any], version: int, at: datetime) -> dict[str, Any]:
    status = snap.get("status") or "active"
    resource: dict[str, Any] = {
        "resourceType": "Endpoint",
        "id": snap["id"],
        "meta": _meta(version, at),
        "status": status if status in ("active", "suspended", "off") else "off",
        "connectionType": {"system": f"{BASE_CS}/endpoint-connection-type", "code": snap["connection_type"]},
        "name": snap["name"],
        "managingOrganization": _ref("Organization", snap.get("unit_id") or snap.get("organisation_id")),
        "payloadType": [
            {"coding": [{"system": f"{BASE_CS}/payload-type", "code": p}], "text": p}
            for p in snap.get("payload_types") or []
        ]
        or [{"coding": [{"system": PAYLOAD, "code": "any"}]}],
        "address": snap["address"],
    }
    return resource


def affiliation_resource(snap: dict[str, Any], version: int, at: datetime) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "OrganizationAffiliation",
        "id": snap["id"],
        "meta": _meta(version, at),
        "active": bool(snap["active"]),
        "organization": _ref("Organization", snap["primary_id"]),
        "participatingOrganization": _ref("Organization", snap["participating_id"]),
        "code": [{"coding": [{"system": f"{BASE_CS}/affiliation-role", "code": snap["role"]}], "text": snap["role"]}],
    }
    period = {k: v for k, v in (("start", snap.get("period_start")), ("end", snap.get("period_end"))) if v}
    if period:
        resource["period"] = period
    return resource


def render(resource_type: str, kind: str, snap: dict[str, Any], version: int, at: datetime) -> dict[str, Any]:
    if resource_type == "Organization":
        return (
            organisation_resource(snap, version, at) if kind == "organisation" else unit_organization(snap, version, at)
        )
    if resource_type == "Location":
        return unit_location(snap, version, at)
    if resource_type == "HealthcareService":
        return route_service(snap, version, at)
    if resource_type == "Endpoint":
        return endpoint_resource(snap, version, at)
    return affiliation_resource(snap, version, at)


# --------------------------------------------------------------------------------------------- current state


@dataclass
class Found:
    resource: dict[str, Any]
    deleted: bool = False


async def _unit_closure_snaps(
    session: AsyncSession, unit_ids: Sequence[uuid.UUID], now: datetime
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    closures = await store.closures_of(session, unit_ids, after=now)
    return {
        unit_id: [
            {"kind": c.kind, "reason": c.reason, "starts_at": c.starts_at.isoformat(), "ends_at": c.ends_at.isoformat()}
            for c in items
            if c.route_id is None
        ]
        for unit_id, items in closures.items()
    }


async def current(
    session: AsyncSession, resource_type: str, objects: Sequence[Any], now: datetime
) -> list[dict[str, Any]]:
    """Render live ORM objects of one FHIR type."""
    if not objects:
        return []
    if resource_type == "HealthcareService":
        unit_ids = list({route.unit_id for route in objects})
        unit_closures = await _unit_closure_snaps(session, unit_ids, now)
        route_closures = await store.closures_of(session, unit_ids, after=now)
        out = []
        for route in objects:
            own = [c for c in route_closures[route.unit_id] if c.route_id == route.id]
            out.append(
                route_service(svc.snapshot(route, own), route.version, route.updated_at, unit_closures[route.unit_id])
            )
        return out
    if resource_type == "Organization":
        unit_ids = [obj.id for obj in objects if isinstance(obj, Unit)]
        endpoints: dict[uuid.UUID, list[uuid.UUID]] = {}
        if unit_ids:
            rows = await session.execute(
                select(Endpoint.unit_id, Endpoint.id).where(
                    Endpoint.unit_id.in_(unit_ids), Endpoint.deleted_at.is_(None)
                )
            )
            for unit_id, endpoint_id in rows.all():
                if unit_id is not None:
                    endpoints.setdefault(unit_id, []).append(endpoint_id)
        return [
            unit_organization(svc.snapshot(obj), obj.version, obj.updated_at, endpoints.get(obj.id, []))
            if isinstance(obj, Unit)
            else organisation_resource(svc.snapshot(obj), obj.version, obj.updated_at)
            for obj in objects
        ]
    return [render(resource_type, "", svc.snapshot(obj), obj.version, obj.updated_at) for obj in objects]


MODELS: dict[str, Any] = {
    "Location": Unit,
    "HealthcareService": ContactRoute,
    "Endpoint": Endpoint,
    "OrganizationAffiliation": Affiliation,
}


async def read(
    session: AsyncSession, resource_type: str, object_id: uuid.UUID, *, staff: bool, now: datetime
) -> dict[str, Any]:
    candidates = [Organisation, Unit] if resource_type == "Organization" else [MODELS[resource_type]]
    for model in candidates:
        obj = await session.get(model, object_id)
        if obj is None:
            continue
        if isinstance(obj, ContactRoute):
            unit = await session.get(Unit, obj.unit_id)
            if not staff and obj.audience != "public":
                break
            if unit is None or unit.deleted_at is not None:
                raise FhirError(410, "deleted", f"{resource_type}/{object_id} has been deleted.")
        if obj.deleted_at is not None:
            raise FhirError(410, "deleted", f"{resource_type}/{object_id} has been deleted.")
        return (await current(session, resource_type, [obj], now))[0]
    raise FhirError(404, "not-found", f"{resource_type}/{object_id} is not known.")


async def vread(
    session: AsyncSession, resource_type: str, object_id: uuid.UUID, version_id: int, *, staff: bool
) -> dict[str, Any]:
    for kind in HISTORY_TYPES[resource_type]:
        version = await store.version(session, kind, object_id, version_id)
        if version is None:
            continue
        if not staff and kind == "route" and version.snapshot.get("audience") != "public":
            break
        if version.operation == "delete":
            raise FhirError(410, "deleted", f"Version {version_id} of {resource_type}/{object_id} is a deletion.")
        return render(resource_type, kind, version.snapshot, version.version, version.at)
    raise FhirError(404, "not-found", f"{resource_type}/{object_id}/_history/{version_id} is not known.")


# --------------------------------------------------------------------------------------------- search (ITI-90)

DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
COMMON = {"_id", "_lastUpdated", "_count", "_include", "_offset", "_total", "_format", "_summary", "_elements"}
SEARCH_PARAMS: dict[str, set[str]] = {
    "Organization": {"name", "identifier", "partof", "type", "active"},
    "Location": {"name", "identifier", "organization", "partof", "type", "status"},
    "HealthcareService": {"name", "organization", "location", "service-type", "type", "active", "identifier"},
    "Endpoint": {"name", "organization", "connection-type", "status", "identifier"},
    "OrganizationAffiliation": {"active", "participating-organization", "primary-organization", "role", "identifier"},
}
INCLUDES: dict[str, dict[str, tuple[str, str]]] = {
    # _include value -> (target type, attribute on the rendered resource)
    "Organization": {
        "Organization:partof": ("Organization", "partOf"),
        "Organization:endpoint": ("Endpoint", "endpoint"),
    },
    "Location": {
        "Location:organization": ("Organization", "managingOrganization"),
        "Location:partof": ("Location", "partOf"),
    },
    "HealthcareService": {
        "HealthcareService:organization": ("Organization", "providedBy"),
        "HealthcareService:location": ("Location", "location"),
        "HealthcareService:endpoint": ("Endpoint", "endpoint"),
    },
    "Endpoint": {"Endpoint:organization": ("Organization", "managingOrganization")},
    "OrganizationAffiliation": {
        "OrganizationAffiliation:primary-organization": ("Organization", "organization"),
        "OrganizationAffiliation:participating-organization": ("Organization", "participatingOrganization"),
    },
}


@dataclass
class SearchResult:
    total: int
    matches: list[dict[str, Any]]
    included: list[dict[str, Any]] = field(default_factory=list)
    offset: int = 0
    count: int = DEFAULT_COUNT


def _bad(diagnostics: str) -> FhirError:
    return FhirError(400, "invalid", diagnostics)


def parse_date(value: str) -> tuple[str, datetime]:
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    raw = value[2:] if value[:2] in DATE_PREFIXES else value
    try:
        if len(raw) == 10:
            parsed = datetime.fromisoformat(raw).replace(tzinfo=hrs.TZ)
        else:
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
    except ValueError:
        raise _bad(f"'{value}' is not a FHIR date/dateTime (e.g. ge2026-06-01 or gt2026-06-01T10:00:00Z).") from None
    return prefix, parsed.astimezone(UTC)


def date_clause(column: Any, value: str) -> ColumnElement[bool]:
    prefix, moment = parse_date(value)
    if prefix in ("gt", "sa"):
        return column > moment  # type: ignore[no-any-return]
    if prefix in ("lt", "eb"):
        return column < moment  # type: ignore[no-any-return]
    if prefix == "ge":
        return column >= moment  # type: ignore[no-any-return]
    if prefix == "le":
        return column <= moment  # type: ignore[no-any-return]
    precision = timedelta(days=1) if len(value.removeprefix(prefix)) == 10 else timedelta(seconds=1)
    inside = and_(column >= moment, column < moment + precision)
    return ~inside if prefix == "ne" else inside


def _ids(value: str, prefix: str) -> list[uuid.UUID]:
    out = []
    for part in value.split(","):
        part = part.strip().rsplit("/", 1)[-1] if "/" in part else part.strip()
        try:
            out.append(uuid.UUID(part))
        except ValueError:
            out.append(uuid.UUID(int=0))  # matches nothing
    return out


def _bool(value: str) -> bool:
    if value not in ("true", "false"):
        raise _bad(f"'{value}' must be true or false.")
    return value == "true"


def _token(value: str) -> tuple[str | None, str]:
    system, bar, code = value.partition("|")
    return (system or None, code) if bar else (None, value)


def string_clause(
    columns: Sequence[Any], folded_columns: Sequence[Any], modifier: str, value: str
) -> ColumnElement[bool]:
    """FHIR string search: default = case/accent-insensitive starts-with (of any word here); :contains; :exact."""
    if modifier == "exact":
        return or_(*[column == value for column in columns])
    needle = fold(value)
    if modifier == "contains":
        return or_(*[column.like(f"%{needle}%") for column in folded_columns])
    return or_(*[or_(column.like(f"{needle}%"), column.like(f"% {needle}%")) for column in folded_columns])


class Params:
    """Query parameters as (name, modifier, values) with checks against what the type supports."""

    def __init__(self, resource_type: str, query: list[tuple[str, str]]) -> None:
        self.items: list[tuple[str, str, str]] = []
        supported = SEARCH_PARAMS[resource_type] | COMMON
        for key, value in query:
            name, _, modifier = key.partition(":")
            if name not in supported:
                raise _bad(f"Search parameter '{name}' is not supported on {resource_type}; see /fhir/metadata.")
            if modifier and name not in ("name", "_include") and modifier not in ("exact", "contains", "missing"):
                raise _bad(f"Modifier ':{modifier}' is not supported for '{name}'.")
            if modifier and name == "name" and modifier not in ("exact", "contains"):
                raise _bad(f"Modifier ':{modifier}' is not supported for 'name' (use :exact or :contains).")
            self.items.append((name, modifier, value))

    def get(self, name: str) -> list[tuple[str, str]]:
        return [(modifier, value) for key, modifier, value in self.items if key == name]

    def first(self, name: str) -> str | None:
        values = self.get(name)
        return values[0][1] if values else None


def _common_clauses(model: Any, params: Params) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [model.deleted_at.is_(None)]
    for _modifier, value in params.get("_id"):
        clauses.append(model.id.in_(_ids(value, "")))
    for _modifier, value in params.get("_lastUpdated"):
        clauses.append(date_clause(model.updated_at, value))
    return clauses


def _paging(params: Params) -> tuple[int, int]:
    try:
        count = int(params.first("_count") or DEFAULT_COUNT)
        offset = int(params.first("_offset") or 0)
    except ValueError:
        raise _bad("_count and _offset are whole numbers.") from None
    return max(0, min(count, MAX_COUNT)), max(0, offset)


async def _run(
    session: AsyncSession, model: Any, clauses: list[ColumnElement[bool]], order: Sequence[Any], offset: int, count: int
) -> tuple[int, list[Any]]:
    total = int(await session.scalar(select(func.count()).select_from(model).where(*clauses)) or 0)
    if count == 0:
        return total, []
    rows = await session.execute(select(model).where(*clauses).order_by(*order).offset(offset).limit(count))
    return total, list(rows.scalars())


def _unit_clauses(params: Params, resource_type: str) -> list[ColumnElement[bool]]:
    clauses = _common_clauses(Unit, params)
    for modifier, value in params.get("name"):
        clauses.append(string_clause([Unit.name], [Unit.search_name, Unit.search_text], modifier, value))
    for _modifier, value in params.get("identifier"):
        _system, code = _token(value)
        clauses.append(Unit.hsa_id.in_(code.split(",")))
    for _modifier, value in params.get("partof"):
        ids = _ids(value, "")
        clauses.append(
            Unit.parent_id.in_(ids)
            if resource_type == "Location"
            else or_(Unit.parent_id.in_(ids), and_(Unit.parent_id.is_(None), Unit.organisation_id.in_(ids)))
        )
    for _modifier, value in params.get("organization"):
        clauses.append(Unit.id.in_(_ids(value, "")))
    for _modifier, value in params.get("type"):
        codes = [_token(part)[1] for part in value.split(",")]
        location_codes = [t for t, code in LOCATION_TYPE.items() if code in codes]
        clauses.append(
            Unit.unit_type.in_(codes + location_codes + (["__prov__"] if "prov" in codes else []))
            if "prov" not in codes
            else Unit.id.is_not(None)
        )
    for _modifier, value in params.get("active"):
        clauses.append(Unit.active.is_(_bool(value)))
    for _modifier, value in params.get("status"):
        clauses.append(Unit.active.is_(value == "active"))
    return clauses


def _org_matches(org: Organisation, params: Params) -> bool:
    if org.deleted_at is not None:
        return False
    for _modifier, value in params.get("_id"):
        if org.id not in _ids(value, ""):
            return False
    for _modifier, value in params.get("_lastUpdated"):
        prefix, moment = parse_date(value)
        checks = {
            "gt": org.updated_at > moment,
            "sa": org.updated_at > moment,
            "lt": org.updated_at < moment,
            "eb": org.updated_at < moment,
            "ge": org.updated_at >= moment,
            "le": org.updated_at <= moment,
        }
        if prefix in checks and not checks[prefix]:
            return False
    for modifier, value in params.get("name"):
        if modifier == "exact":
            if org.name != value:
                return False
        elif modifier == "contains":
            if fold(value) not in fold(org.name):
                return False
        elif not any(word.startswith(fold(value)) for word in [fold(org.name), *fold(org.name).split()]):
            return False
    for _modifier, value in params.get("identifier"):
        _system, code = _token(value)
        if not {org.org_number, org.hsa_id} & set(code.split(",")):
            return False
    if params.get("partof"):
        return False
    for _modifier, value in params.get("type"):
        codes = {_token(part)[1] for part in value.split(",")}
        if not codes & {org.kind, "govt" if org.kind != "private" else "prov"}:
            return False
    return all(org.active is _bool(value) for _modifier, value in params.get("active"))


async def search(
    session: AsyncSession, resource_type: str, query: list[tuple[str, str]], *, staff: bool, now: datetime
) -> SearchResult:
    params = Params(resource_type, query)
    count, offset = _paging(params)
    objects: list[Any]
    if resource_type == "Organization":
        orgs = [
            org
            for org in (await session.execute(select(Organisation).order_by(Organisation.name))).scalars()
            if _org_matches(org, params)
        ]
        unit_total, units = await _run(
            session,
            Unit,
            _unit_clauses(params, resource_type),
            [Unit.search_name, Unit.id],
            max(0, offset - len(orgs)),
            max(0, count - max(0, len(orgs) - offset)),
        )
        total = len(orgs) + unit_total
        objects = [*orgs[offset : offset + count], *units]
    elif resource_type == "Location":
        total, objects = await _run(
            session, Unit, _unit_clauses(params, resource_type), [Unit.search_name, Unit.id], offset, count
        )
    elif resource_type == "HealthcareService":
        clauses = _common_clauses(ContactRoute, params)
        live_units = select(Unit.id).where(Unit.deleted_at.is_(None))
        clauses.append(ContactRoute.unit_id.in_(live_units))
        if not staff:
            clauses.append(ContactRoute.audience == "public")
        for modifier, value in params.get("name"):
            clauses.append(string_clause([ContactRoute.label], [func.lower(ContactRoute.label)], modifier, value))
        for _modifier, value in [*params.get("organization"), *params.get("location")]:
            clauses.append(ContactRoute.unit_id.in_(_ids(value, "")))
        for _modifier, value in [*params.get("service-type"), *params.get("type")]:
            clauses.append(ContactRoute.purpose.in_([_token(part)[1] for part in value.split(",")]))
        for _modifier, value in params.get("active"):
            clauses.append(ContactRoute.deleted_at.is_(None) if _bool(value) else false())
        if params.get("identifier"):
            clauses.append(false())
        total, objects = await _run(
            session, ContactRoute, clauses, [ContactRoute.unit_id, ContactRoute.rank, ContactRoute.id], offset, count
        )
    elif resource_type == "Endpoint":
        clauses = _common_clauses(Endpoint, params)
        for modifier, value in params.get("name"):
            clauses.append(string_clause([Endpoint.name], [func.lower(Endpoint.name)], modifier, value))
        for _modifier, value in params.get("organization"):
            ids = _ids(value, "")
            clauses.append(or_(Endpoint.unit_id.in_(ids), Endpoint.organisation_id.in_(ids)))
        for _modifier, value in params.get("connection-type"):
            clauses.append(Endpoint.connection_type.in_([_token(part)[1] for part in value.split(",")]))
        for _modifier, value in params.get("status"):
            clauses.append(Endpoint.status.in_(value.split(",")))
        if params.get("identifier"):
            clauses.append(false())
        total, objects = await _run(session, Endpoint, clauses, [Endpoint.name, Endpoint.id], offset, count)
    else:
        clauses = _common_clauses(Affiliation, params)
        for _modifier, value in params.get("active"):
            clauses.append(Affiliation.active.is_(_bool(value)))
        for _modifier, value in params.get("primary-organization"):
            clauses.append(Affiliation.primary_id.in_(_ids(value, "")))
        for _modifier, value in params.get("participating-organization"):
            clauses.append(Affiliation.participating_id.in_(_ids(value, "")))
        for _modifier, value in params.get("role"):
            clauses.append(Affiliation.role.in_([_token(part)[1] for part in value.split(",")]))
        if params.get("identifier"):
            clauses.append(false())
        total, objects = await _run(
            session, Affiliation, clauses, [Affiliation.created_at, Affiliation.id], offset, count
        )
    matches = await current(session, resource_type, objects, now)
    included = await _includes(session, resource_type, params, matches, staff=staff, now=now)
    return SearchResult(total=total, matches=matches, included=included, offset=offset, count=count)


async def _includes(
    session: AsyncSession,
    resource_type: str,
    params: Params,
    matches: list[dict[str, Any]],
    *,
    staff: bool,
    now: datetime,
) -> list[dict[str, Any]]:
    wanted = [value for _modifier, value in params.get("_include")]
    out: list[dict[str, Any]] = []
    seen: set[str] = {f"{m['resourceType']}/{m['id']}" for m in matches}
    for include in wanted:
        if include not in INCLUDES[resource_type]:
            raise _bad(f"_include={include} is not supported; supported: {sorted(INCLUDES[resource_type])}.")
        target, attribute = INCLUDES[resource_type][include]
        refs: list[str] = []
        for match in matches:
            value = match.get(attribute)
            for ref in value if isinstance(value, list) else [value] if value else []:
                refs.append(ref["reference"])
        for ref in dict.fromkeys(refs):
            if ref in seen or not ref.startswith(f"{target}/"):
                continue
            seen.add(ref)
            try:
                out.append(await read(session, target, uuid.UUID(ref.split("/", 1)[1]), staff=staff, now=now))
            except FhirError:
                continue
    return out


# --------------------------------------------------------------------------------------------- history (ITI-91)


async def history(
    session: AsyncSession,
    resource_type: str,
    *,
    object_id: uuid.UUID | None,
    since: str | None,
    count: int,
    offset: int,
    staff: bool,
) -> tuple[int, list[DirectoryVersion]]:
    kinds = HISTORY_TYPES[resource_type]
    clauses: list[ColumnElement[bool]] = [DirectoryVersion.resource_type.in_(kinds)]
    if object_id is not None:
        clauses.append(DirectoryVersion.resource_id == object_id)
    if since:
        _prefix, moment = parse_date(since)
        clauses.append(DirectoryVersion.at >= moment)
    if not staff and "route" in kinds:
        audience = DirectoryVersion.snapshot["audience"].as_string()
        clauses.append(audience == "public")
    total = int(await session.scalar(select(func.count()).select_from(DirectoryVersion).where(*clauses)) or 0)
    rows = await session.execute(
        select(DirectoryVersion)
        .where(*clauses)
        .order_by(DirectoryVersion.at.desc(), DirectoryVersion.seq.desc())
        .offset(offset)
        .limit(count)
    )
    return total, list(rows.scalars())
