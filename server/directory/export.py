"""Directory export (CSV and JSON) in the format the importer reads back."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from server.core.db import Database
from server.core.models import Organisation, Unit
from server.directory import store
from server.directory.import_parse import CSV_COLUMNS, Format
from server.directory.models import ContactRoute
from server.directory.timespans import ALWAYS, format_timespan
from server.directory.views import unit_snapshot

DROPPED = ("id", "organisation_id", "parent_id", "closures")  # snapshot keys export leaves out


async def export(db: Database, fmt: Format) -> str:
    async with db.transaction() as session:
        orgs = list(
            (
                await session.execute(
                    select(Organisation).where(Organisation.deleted_at.is_(None)).order_by(Organisation.name)
                )
            ).scalars()
        )
        units = list(
            (
                await session.execute(
                    select(Unit).where(Unit.deleted_at.is_(None), Unit.hsa_id.is_not(None)).order_by(Unit.search_name)
                )
            ).scalars()
        )
        routes = await store.routes_of(session, [unit.id for unit in units])
    org_by_id = {org.id: org for org in orgs}
    hsa_by_id = {unit.id: unit.hsa_id for unit in units}
    if fmt == "json":
        return _export_json(orgs, units, routes, org_by_id, hsa_by_id)
    return "".join(_export_csv(units, routes, org_by_id, hsa_by_id))


def _route_json(route: ContactRoute) -> dict[str, Any]:
    return {
        "purpose": route.purpose,
        "channel": route.channel,
        "label": route.label,
        "value": route.value,
        "audience": route.audience,
        "rank": route.rank,
        "note": route.note,
        "valid_from": route.valid_from.isoformat() if route.valid_from else None,
        "valid_to": route.valid_to.isoformat() if route.valid_to else None,
        "hours": [format_timespan(span) for span in route.hours] or ALWAYS[0],
    }


def _export_json(
    orgs: list[Organisation],
    units: list[Unit],
    routes: dict[uuid.UUID, list[ContactRoute]],
    org_by_id: dict[uuid.UUID, Organisation],
    hsa_by_id: dict[uuid.UUID, str | None],
) -> str:
    lines = ['{"organisations": [']
    org_items = [
        json.dumps(
            {
                "name": o.name,
                "kind": o.kind,
                "org_number": o.org_number,
                "hsa_id": o.hsa_id,
                "municipality_code": o.municipality_code,
                "active": o.active,
            },
            ensure_ascii=False,
        )
        for o in orgs
        if o.org_number
    ]
    lines.append(",\n".join(org_items))
    lines.append('],\n"units": [')
    unit_items = []
    for unit in units:
        org = org_by_id.get(unit.organisation_id)
        if org is None or not org.org_number:
            continue
        unit_items.append(
            json.dumps(
                {
                    **{key: value for key, value in unit_snapshot(unit).items() if key not in DROPPED},
                    "organisation_number": org.org_number,
                    "parent_hsa_id": hsa_by_id.get(unit.parent_id) if unit.parent_id else None,
                    "routes": [_route_json(route) for route in routes.get(unit.id, [])],
                },
                ensure_ascii=False,
            )
        )
    lines.append(",\n".join(unit_items))
    lines.append("]}\n")
    return "\n".join(lines)


def _export_csv(
    units: list[Unit],
    routes: dict[uuid.UUID, list[ContactRoute]],
    org_by_id: dict[uuid.UUID, Organisation],
    hsa_by_id: dict[uuid.UUID, str | None],
) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for unit in units:
        org = org_by_id.get(unit.organisation_id)
        if org is None or not org.org_number:
            continue
        unit_cells = [
            org.org_number,
            org.name,
            org.kind,
            unit.hsa_id,
            unit.name,
            unit.unit_type,
            hsa_by_id.get(unit.parent_id) if unit.parent_id else "",
            unit.municipality_code or "",
            unit.street or "",
            unit.postal_code or "",
            unit.town or "",
            "|".join(unit.aliases or []),
            "true" if unit.active else "false",
        ]
        unit_routes = routes.get(unit.id, [])
        if not unit_routes:
            writer.writerow([*unit_cells, "", "", "", "", "", "", ""])
        for route in unit_routes:
            writer.writerow(
                [
                    *unit_cells,
                    route.purpose,
                    route.channel,
                    route.label,
                    route.value,
                    route.audience,
                    route.rank,
                    ";".join(format_timespan(span) for span in route.hours) or ALWAYS[0],
                ]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
