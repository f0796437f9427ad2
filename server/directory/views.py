"""How directory objects look in the API and in version snapshots (pure functions, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.core.models import Organisation, Unit
from server.directory import hours as hrs
from server.directory import schemas as s
from server.directory.models import Closure, ContactRoute, Endpoint, TimeSpan
from server.directory.text import MUNICIPALITIES


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
    """Snapshot of a route (an ORM object or anything with the same attributes, e.g. during bulk import).

    `closures` may be all of the unit's: those of this route and those of the whole unit are what it shows
    (FHIR renders both as notAvailable), so both belong to its versioned state.
    """
    data = route_out(route).model_dump(mode="json")
    data["closures"] = [
        s.ClosureOut.model_validate(closure, from_attributes=True).model_dump(mode="json")
        for closure in closures
        if closure.route_id is None or closure.route_id == route.id
    ]
    for volatile in ("version", "updated_at"):
        data.pop(volatile, None)
    return data
