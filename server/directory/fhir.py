"""FHIR R4 (IHE mCSD Directory, read-only): resources rendered from directory snapshots, ITI-90 search, ITI-91 history.

Mapping: organisation → Organization; unit → Organization (partOf its parent or organisation) + Location;
contact route → HealthcareService (telecom, availableTime, notAvailable, availabilityExceptions);
endpoint → Endpoint; affiliation → OrganizationAffiliation; a user with a public unit membership →
Practitioner, the public membership → PractitionerRole (server/directory/practitioners.py). Every
resource is rendered from the same snapshot dict that the version history stores, so read, vread and
_history agree.

Visibility: anonymous callers see public contact routes only; staff-only routes need a token or session.
Practitioners and their roles are the public memberships only, for every caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.errors import Problem
from server.core.models import Organisation, Unit
from server.directory import store
from server.directory.models import Affiliation, ContactRoute, Endpoint
from server.directory.practitioners import PERSON, ROLE
from server.directory.schemas import TimeSpanIn
from server.directory.text import MUNICIPALITIES
from server.directory.timespans import format_timespan
from server.directory.views import snapshot, to_span

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
TYPES = (
    "Organization", "Location", "HealthcareService", "Endpoint", "OrganizationAffiliation", "Practitioner",
    "PractitionerRole",
)  # fmt: skip
HISTORY_TYPES = {
    "Organization": ("organisation", "unit"),
    "Location": ("unit",),
    "HealthcareService": ("route",),
    "Endpoint": ("endpoint",),
    "OrganizationAffiliation": ("affiliation",),
    "Practitioner": (PERSON,),
    "PractitionerRole": (ROLE,),
}
# Types read from the version log only (derived views without a table of their own).
LOGGED = {"Practitioner": PERSON, "PractitionerRole": ROLE}
DEFAULT_COUNT, MAX_COUNT = 20, 100
MCSD_PROFILE = "https://profiles.ihe.net/ITI/mCSD/StructureDefinition/IHE.mCSD.{}"
# Connection types that HL7's code system has; the others (e.g. brygga-secure-message) are Brygga's own.
CONNECTION_TYPE = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
HL7_CONNECTION_TYPES = {
    "hl7-fhir-rest", "hl7-fhir-msg", "hl7v2-mllp", "secure-email", "direct-project", "ihe-xcpd", "ihe-xca",
    "ihe-xdr", "ihe-xds", "ihe-iid", "dicom-wado-rs", "dicom-qido-rs", "dicom-stow-rs", "dicom-wado-uri",
}  # fmt: skip
PRACTITIONER_ROLE = "http://terminology.hl7.org/CodeSystem/practitioner-role"
HL7_PRACTITIONER_ROLES = {"doctor", "nurse", "pharmacist", "researcher", "teacher", "ict"}


class FhirError(Problem):
    """Rendered as an OperationOutcome by the FHIR transport."""

    def __init__(self, status: int, code: str, diagnostics: str) -> None:
        super().__init__(code, diagnostics, status=status)


def _meta(resource_type: str, version: int, at: datetime) -> dict[str, Any]:
    return {
        "versionId": str(version),
        "lastUpdated": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "profile": [MCSD_PROFILE.format(resource_type)],
    }


URI_SYSTEM = "urn:ietf:rfc:3986"


def uuid_identifier(object_id: Any) -> list[dict[str, str]]:
    """The business identifier of objects that have no HSA-id: their UUID as a URN (searchable with `identifier`)."""
    return [{"use": "official", "system": URI_SYSTEM, "value": f"urn:uuid:{object_id}"}]


def _ref(resource_type: str, object_id: Any) -> dict[str, str]:
    return {"reference": f"{resource_type}/{object_id}"}


def _coding(code: str, hl7_system: str, hl7_codes: set[str], own: str) -> dict[str, str]:
    """A code in HL7's code system where it has the code, else in Brygga's own (`own`)."""
    return {"system": hl7_system if code in hl7_codes else f"{BASE_CS}/{own}", "code": code}


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
        "meta": _meta("Organization", version, at),
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
        "meta": _meta("Organization", version, at),
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
        "meta": _meta("Location", version, at),
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
        hspan = to_span(span)
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


def route_service(snap: dict[str, Any], version: int, at: datetime) -> dict[str, Any]:
    spans = [
        TimeSpanIn.model_validate({k: v for k, v in span.items() if k != "text"}) for span in snap.get("hours", [])
    ]
    resource: dict[str, Any] = {
        "resourceType": "HealthcareService",
        "id": snap["id"],
        "meta": _meta("HealthcareService", version, at),
        "identifier": uuid_identifier(snap["id"]),
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
    for closure in snap.get("closures", []):
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
        "meta": _meta("Endpoint", version, at),
        "identifier": uuid_identifier(snap["id"]),
        "status": status if status in ("active", "suspended", "off") else "off",
        "connectionType": _coding(
            snap["connection_type"], CONNECTION_TYPE, HL7_CONNECTION_TYPES, "endpoint-connection-type"
        ),
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
        "meta": _meta("OrganizationAffiliation", version, at),
        "identifier": uuid_identifier(snap["id"]),
        "active": bool(snap["active"]),
        "organization": _ref("Organization", snap["primary_id"]),
        "participatingOrganization": _ref("Organization", snap["participating_id"]),
        "code": [{"coding": [{"system": f"{BASE_CS}/affiliation-role", "code": snap["role"]}], "text": snap["role"]}],
    }
    period = {k: v for k, v in (("start", snap.get("period_start")), ("end", snap.get("period_end"))) if v}
    if period:
        resource["period"] = period
    return resource


def practitioner_resource(snap: dict[str, Any], version: int, at: datetime) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": snap["id"],
        "meta": _meta("Practitioner", version, at),
        "active": True,
        "name": [{"use": "official", "text": snap["name"]}],
    }
    if snap.get("hsa_id"):
        resource["identifier"] = [{"use": "official", "system": OID_HSA, "value": snap["hsa_id"]}]
    return resource


def practitioner_role_resource(snap: dict[str, Any], version: int, at: datetime) -> dict[str, Any]:
    code: dict[str, Any] = {"text": snap.get("title") or snap.get("code") or "Medarbetare"}
    if snap.get("code"):
        code["coding"] = [_coding(snap["code"], PRACTITIONER_ROLE, HL7_PRACTITIONER_ROLES, "practitioner-role")]
    return {
        "resourceType": "PractitionerRole",
        "id": snap["id"],
        "meta": _meta("PractitionerRole", version, at),
        "identifier": uuid_identifier(snap["id"]),
        "active": True,
        "practitioner": _ref("Practitioner", snap["practitioner_id"]),
        "organization": _ref("Organization", snap["unit_id"]),
        "location": [_ref("Location", snap["unit_id"])],
        "code": [code],
    }


def render(resource_type: str, kind: str, snap: dict[str, Any], version: int, at: datetime) -> dict[str, Any]:
    if resource_type == "Practitioner":
        return practitioner_resource(snap, version, at)
    if resource_type == "PractitionerRole":
        return practitioner_role_resource(snap, version, at)
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


async def current(
    session: AsyncSession, resource_type: str, objects: Sequence[Any], now: datetime
) -> list[dict[str, Any]]:
    """Render live ORM objects of one FHIR type."""
    if not objects:
        return []
    if resource_type == "HealthcareService":
        unit_ids = list({route.unit_id for route in objects})
        closures = await store.closures_of(session, unit_ids, after=now)
        return [
            route_service(snapshot(route, closures[route.unit_id]), route.version, route.updated_at)
            for route in objects
        ]
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
            unit_organization(snapshot(obj), obj.version, obj.updated_at, endpoints.get(obj.id, []))
            if isinstance(obj, Unit)
            else organisation_resource(snapshot(obj), obj.version, obj.updated_at)
            for obj in objects
        ]
    return [render(resource_type, "", snapshot(obj), obj.version, obj.updated_at) for obj in objects]


MODELS: dict[str, Any] = {
    "Location": Unit,
    "HealthcareService": ContactRoute,
    "Endpoint": Endpoint,
    "OrganizationAffiliation": Affiliation,
}


async def logged(session: AsyncSession, resource_type: str, object_id: uuid.UUID) -> dict[str, Any]:
    """A derived view's current state: its newest version (410 if that is a deletion)."""
    last = (await store.latest_versions(session, LOGGED[resource_type], [object_id])).get(object_id)
    if last is None:
        raise FhirError(404, "not-found", f"{resource_type}/{object_id} is not known.")
    if last.operation == "delete":
        raise FhirError(410, "deleted", f"{resource_type}/{object_id} is no longer published.")
    return render(resource_type, last.resource_type, last.snapshot, last.version, last.at)


async def read(
    session: AsyncSession, resource_type: str, object_id: uuid.UUID, *, staff: bool, now: datetime
) -> dict[str, Any]:
    if resource_type in LOGGED:
        return await logged(session, resource_type, object_id)
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
    if resource_type in LOGGED:
        await logged(session, resource_type, object_id)  # old versions of someone unpublished are gone too
    for kind in HISTORY_TYPES[resource_type]:
        version = await store.version(session, kind, object_id, version_id)
        if version is None:
            continue
        if not staff and kind == "route":
            route = await session.get(ContactRoute, object_id)
            if version.snapshot.get("audience") != "public":
                break
            if route is None or route.deleted_at is not None or route.audience != "public":
                # an old public version must not outlive the route's leaving public view
                raise FhirError(410, "deleted", f"{resource_type}/{object_id} is no longer published.")
        if version.operation == "delete":
            raise FhirError(410, "deleted", f"Version {version_id} of {resource_type}/{object_id} is a deletion.")
        return render(resource_type, kind, version.snapshot, version.version, version.at)
    raise FhirError(404, "not-found", f"{resource_type}/{object_id}/_history/{version_id} is not known.")
