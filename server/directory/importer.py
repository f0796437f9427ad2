"""Directory import and export (CSV and JSON), all or nothing, with a report of every rejected row.

CSV: one row per contact route (a unit without routes has one row with empty route columns); the unit
columns may be left empty on the unit's later rows. Columns: see CSV_COLUMNS. `aliases` are separated by
`|`, `route_hours` holds HSA TimeSpans separated by `;`:
    fromDay#toDay#fromTime#toTime[#comment[#fromDate[#toDate[#holidayRule]]]]
e.g. `1#5#08:00#16:00` or `6#7#09:00#15:00##2026-06-01#2026-08-31#closed_on_holidays`. The eighth part
(holiday rule: normal | holidays_only | closed_on_holidays) is Brygga's extension; `00:00#24:00` is all day.

JSON: {"organisations": [...], "units": [{..., "routes": [{..., "hours": ["1#5#08:00#16:00", ...]}]}]}
(hours may also be objects as in the API). Line numbers in the report are where each record starts.

Units are matched by HSA-id and organisations by organisation number: existing ones are updated and an
imported unit's routes replace its current routes. Every object written gets a version-history entry;
the import as a whole is one audit event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import insert, select

from server.audit.service import record
from server.core.db import Database
from server.core.models import Organisation, Unit
from server.core.principal import Principal
from server.directory import schemas as s
from server.directory import store
from server.directory.import_parse import CSV_COLUMNS as CSV_COLUMNS
from server.directory.import_parse import (
    PROGRESS_EVERY,
    ImportRoute,
    ImportUnit,
    Parsed,
    Progress,
    RowError,
    parse_csv,
    parse_json,
)
from server.directory.import_parse import Format as Format
from server.directory.models import Closure, ContactRoute, DirectoryVersion, TimeSpan, search_columns, table_of
from server.directory.search import Vocabulary, optimize_index
from server.directory.timespans import format_timespan
from server.directory.versioning import version_row
from server.directory.views import route_snapshot, snapshot, unit_snapshot

BULK = 2000  # rows per executemany


class ImportReport(BaseModel):
    format: str
    dry_run: bool
    committed: bool
    records: int = Field(description="Data rows (CSV) or organisations + units (JSON) read.")
    organisations_created: int = 0
    organisations_updated: int = 0
    units_created: int = 0
    units_updated: int = 0
    routes_written: int = 0
    errors: list[RowError] = Field(default_factory=list, description="Every rejected record; empty on success.")
    warnings: list[RowError] = Field(
        default_factory=list, description="Accepted, but worth a look (e.g. a removed route took its closures)."
    )


def _signature(r: Any) -> tuple[Any, ...]:
    """What makes two routes the same for an import (ids and versions aside)."""
    return (
        r.purpose,
        r.channel,
        r.label,
        r.value,
        r.audience,
        r.rank,
        r.note or None,
        r.valid_from,
        r.valid_to,
        tuple(format_timespan(span) for span in s.spans_of(r.hours)),
    )


def _route_signature(routes: list[Any]) -> list[tuple[Any, ...]]:
    return sorted((_signature(r) for r in routes), key=repr)


# --------------------------------------------------------------------------------------------- applying


async def run_import(
    db: Database,
    content: str,
    fmt: Format,
    *,
    dry_run: bool = False,
    actor: Principal | None = None,
    progress: Progress | None = None,
    now: datetime,
) -> ImportReport:
    parsed = parse_csv(content, progress) if fmt == "csv" else parse_json(content, progress)
    report = ImportReport(format=fmt, dry_run=dry_run, committed=False, records=parsed.records)
    async with db.transaction() as session:
        known_orgs = {
            org.org_number: org
            for org in (await session.execute(select(Organisation).where(Organisation.deleted_at.is_(None)))).scalars()
            if org.org_number
        }
        file_orgs = {org.org_number for _line, org in parsed.organisations}
        hsa_ids = [unit.hsa_id for _line, unit in parsed.units]
        existing: dict[str, Unit] = {}
        for chunk in range(0, len(hsa_ids), 500):
            rows = await session.execute(select(Unit).where(Unit.hsa_id.in_(hsa_ids[chunk : chunk + 500])))
            existing.update({unit.hsa_id: unit for unit in rows.scalars() if unit.hsa_id})
        seen: dict[str, int] = {}
        file_units = set(hsa_ids)
        for line, unit in parsed.units:
            if unit.hsa_id in seen:
                report.errors.append(
                    RowError(
                        line=line,
                        record=f"unit {unit.hsa_id}",
                        reason=f"the HSA-id also appears on line {seen[unit.hsa_id]}",
                    )
                )
            seen[unit.hsa_id] = line
            if unit.organisation_number not in known_orgs and unit.organisation_number not in file_orgs:
                report.errors.append(
                    RowError(
                        line=line,
                        record=f"unit {unit.hsa_id}",
                        reason="unknown organisation_number; add the organisation first",
                    )
                )
            if unit.parent_hsa_id and unit.parent_hsa_id not in existing and unit.parent_hsa_id not in file_units:
                parent_known = await session.scalar(select(Unit.id).where(Unit.hsa_id == unit.parent_hsa_id))
                if parent_known is None:
                    report.errors.append(
                        RowError(line=line, record=f"unit {unit.hsa_id}", reason="parent_hsa_id is not a known unit")
                    )
        report.errors = sorted(parsed.errors + report.errors, key=lambda error: error.line)
        if report.errors:
            _count(report, parsed, known_orgs, existing)
            await session.rollback()
            return report
        await _apply(session, parsed, known_orgs, existing, actor, report, progress, now)
        if dry_run:  # the same work as a commit, so the same counts, then nothing is kept
            await session.rollback()
            return report
        await record(
            session,
            actor=actor,
            action="directory.import",
            object_type="directory",
            details={
                key: getattr(report, key)
                for key in (
                    "format",
                    "records",
                    "organisations_created",
                    "organisations_updated",
                    "units_created",
                    "units_updated",
                    "routes_written",
                )
            },
        )
    Vocabulary.invalidate()
    report.committed = True
    return report


def _count(
    report: ImportReport, parsed: Parsed, known_orgs: dict[str, Organisation], existing: dict[str, Unit]
) -> None:
    """Roughly what a commit would do: the numbers behind a rejected file."""
    report.organisations_updated = sum(1 for _l, org in parsed.organisations if org.org_number in known_orgs)
    report.organisations_created = len(parsed.organisations) - report.organisations_updated
    report.units_updated = sum(1 for _l, unit in parsed.units if unit.hsa_id in existing)
    report.units_created = len(parsed.units) - report.units_updated
    report.routes_written = sum(len(unit.routes) for _l, unit in parsed.units)


class _Reconcile:
    """Bring an existing unit's routes in line with the file, in place: a route keeps its id, version history
    and closures. Matched first by identical content, then by (purpose, channel, label), then by (purpose,
    channel, value); unmatched file routes are created, unmatched current routes deleted (with a warning when
    a closure that has not ended yet goes with them)."""

    def __init__(
        self,
        actor: Principal | None,
        now: datetime,
        report: ImportReport,
        versions: list[dict[str, Any]],
        closures: list[Closure],
        line: int,
    ) -> None:
        self.actor, self.now, self.report, self.versions, self.closures, self.line = (
            actor,
            now,
            report,
            versions,
            closures,
            line,
        )

    def run(self, current: list[ContactRoute], incoming: list[ImportRoute]) -> list[ImportRoute]:
        remaining, unmatched = list(current), list(incoming)
        keys: list[Callable[[Any], Any]] = [
            _signature,
            lambda r: (r.purpose, r.channel, r.label),
            lambda r: (r.purpose, r.channel, r.value),
        ]
        for key in keys:
            for route_in in list(unmatched):
                match = next((route for route in remaining if key(route) == key(route_in)), None)
                if match is None:
                    continue
                remaining.remove(match)
                unmatched.remove(route_in)
                if _signature(match) != _signature(route_in):
                    self._update(match, route_in)
        for route in remaining:
            self._delete(route)
        self.report.routes_written += len(unmatched)
        return unmatched

    def _own(self, route: ContactRoute) -> list[Closure]:
        return [closure for closure in self.closures if closure.route_id == route.id]

    def _shown(self, route: ContactRoute) -> list[Closure]:
        return [closure for closure in self.closures if closure.route_id in (None, route.id)]

    def _update(self, route: ContactRoute, route_in: ImportRoute) -> None:
        before = route_snapshot(route, self._shown(route))
        for key, value in route_in.model_dump(exclude={"hours"}).items():
            setattr(route, key, value)
        route.hours = [
            TimeSpan(id=uuid.uuid4(), position=position, **span.model_dump())
            for position, span in enumerate(s.spans_of(route_in.hours))
        ]
        self._bump(route, "update", before)
        self.report.routes_written += 1

    def _delete(self, route: ContactRoute) -> None:
        before = route_snapshot(route, self._shown(route))
        route.deleted_at = self.now
        self._bump(route, "delete", before)
        if any(closure.ends_at > self.now for closure in self._own(route)):
            self.report.warnings.append(
                RowError(
                    line=self.line,
                    record=f"route {route.label}",
                    reason="the file no longer has this route; its closures were removed with it",
                )
            )

    def _bump(self, route: ContactRoute, operation: str, before: dict[str, Any]) -> None:
        route.version += 1
        route.updated_at = self.now
        route.updated_by = self.actor.user_id if self.actor else None
        after = route_snapshot(route, self._shown(route))
        self.versions.append(
            version_row(self.actor, "route", route.id, route.version, operation, before, after, self.now)
        )


def _unit_columns(data: ImportUnit, org_id: uuid.UUID, ids: dict[str, uuid.UUID], *, partial: bool) -> dict[str, Any]:
    """Unit column values; for an existing unit (`partial`) only those the record carries."""
    given = data.model_fields_set if partial else set(ImportUnit.model_fields)
    address = data.address or s.Address()
    address_given = address.model_fields_set if partial else set(s.Address.model_fields)
    values: dict[str, Any] = {
        "organisation_id": org_id,
        "name": data.name,
        "unit_type": data.unit_type,
        "hsa_id": data.hsa_id,
    }
    if "parent_hsa_id" in given:
        values["parent_id"] = ids[data.parent_hsa_id] if data.parent_hsa_id else None
    for key in ("municipality_code", "aliases", "description", "active", "valid_from", "valid_to"):
        if key in given:
            values[key] = getattr(data, key)
    if "address" in given:
        values.update({key: getattr(address, key) for key in ("street", "postal_code", "town") if key in address_given})
    return values


async def _apply(
    session: Any,
    parsed: Parsed,
    orgs: dict[str, Organisation],
    existing: dict[str, Unit],
    actor: Principal | None,
    report: ImportReport,
    progress: Progress | None,
    now: datetime,
) -> None:
    """Write everything in the caller's transaction; new rows go in with bulk (executemany) inserts."""
    actor_id = actor.user_id if actor else None
    versions: list[dict[str, Any]] = []

    for _line, org_data in parsed.organisations:
        org = orgs.get(org_data.org_number)
        if org is None:
            org = Organisation(
                id=uuid.uuid4(),
                version=1,
                source="import",
                updated_by=actor_id,
                created_at=now,
                updated_at=now,
                **org_data.model_dump(),
            )
            session.add(org)
            orgs[org_data.org_number] = org
            report.organisations_created += 1
            versions.append(version_row(actor, "organisation", org.id, 1, "create", {}, snapshot(org), now))
        else:
            before = snapshot(org)
            for key, value in org_data.model_dump(include=org_data.model_fields_set).items():
                setattr(org, key, value)
            after = snapshot(org)
            if after != before:
                org.version += 1
                report.organisations_updated += 1
                versions.append(version_row(actor, "organisation", org.id, org.version, "update", before, after, now))
    await session.flush()

    ids = {
        data.hsa_id: existing[data.hsa_id].id if data.hsa_id in existing else uuid.uuid4() for _l, data in parsed.units
    }
    parents = [data.parent_hsa_id for _l, data in parsed.units if data.parent_hsa_id and data.parent_hsa_id not in ids]
    if parents:
        rows = await session.execute(select(Unit.hsa_id, Unit.id).where(Unit.hsa_id.in_(parents)))
        ids.update({hsa_id: unit_id for hsa_id, unit_id in rows.all() if hsa_id})
    new_units: list[dict[str, Any]] = []
    replaced: dict[uuid.UUID, tuple[int, list[ImportRoute]]] = {}  # existing units whose routes change
    skip: set[uuid.UUID] = set()  # existing units whose routes stay as they are
    current_routes: dict[uuid.UUID, list[ContactRoute]] = {}
    existing_ids = [unit.id for unit in existing.values()]
    for chunk in range(0, len(existing_ids), 500):
        current_routes.update(await store.routes_of(session, existing_ids[chunk : chunk + 500]))
    for index, (_line, data) in enumerate(parsed.units, start=1):
        address = data.address or s.Address()
        unit_id = ids[data.hsa_id]
        unit = existing.get(data.hsa_id)
        values = _unit_columns(data, orgs[data.organisation_number].id, ids, partial=unit is not None)
        if unit is None:
            row = {
                "id": unit_id,
                "version": 1,
                "source": "import",
                "updated_by": actor_id,
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
                **values,
                **search_columns(unit_id, data.name, data.aliases, address.town, data.hsa_id),
            }
            new_units.append(row)
            report.units_created += 1
            versions.append(
                version_row(actor, "unit", unit_id, 1, "create", {}, unit_snapshot(SimpleNamespace(**row)), now)
            )
        else:
            before = snapshot(unit)
            same_routes = _route_signature(data.routes) == _route_signature(current_routes.get(unit.id, []))
            if all(getattr(unit, key) == value for key, value in values.items()) and unit.deleted_at is None:
                if same_routes:
                    skip.add(unit.id)  # unchanged: no new version (re-running a seed changes nothing)
                    continue
            else:
                for key, value in values.items():
                    setattr(unit, key, value)
                unit.deleted_at = None
                unit.version += 1
                unit.updated_by = actor_id
                report.units_updated += 1
                versions.append(
                    version_row(actor, "unit", unit.id, unit.version, "update", before, snapshot(unit), now)
                )
            if not same_routes:
                replaced[unit.id] = (_line, data.routes)
            else:
                skip.add(unit.id)
        if progress and index % PROGRESS_EVERY == 0:
            progress(f"wrote {index} of {len(parsed.units)} units")
    for chunk in range(0, len(new_units), BULK):
        await session.execute(insert(table_of(Unit)), new_units[chunk : chunk + BULK])
    await session.flush()

    to_insert: dict[uuid.UUID, list[ImportRoute]] = {}
    if replaced:
        unit_ids = list(replaced)
        closures: dict[uuid.UUID, list[Closure]] = {}
        for chunk in range(0, len(unit_ids), 500):
            closures.update(await store.closures_of(session, unit_ids[chunk : chunk + 500]))
        for unit_id, (line, incoming) in replaced.items():
            reconcile = _Reconcile(actor, now, report, versions, closures[unit_id], line)
            to_insert[unit_id] = reconcile.run(current_routes.get(unit_id, []), incoming)
        await session.flush()

    routes: list[dict[str, Any]] = []
    spans: list[dict[str, Any]] = []
    for _line, data in parsed.units:
        if ids[data.hsa_id] in skip:
            continue
        for route_in in to_insert.get(ids[data.hsa_id], data.routes):
            route_id = uuid.uuid4()
            route_row = {
                "id": route_id,
                "unit_id": ids[data.hsa_id],
                "version": 1,
                "updated_by": actor_id,
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
                **route_in.model_dump(exclude={"hours"}),
            }
            span_rows = [
                {"id": uuid.uuid4(), "route_id": route_id, "position": position, **span.model_dump()}
                for position, span in enumerate(s.spans_of(route_in.hours))
            ]
            routes.append(route_row)
            spans.extend(span_rows)
            snap = route_snapshot(SimpleNamespace(**route_row, hours=[SimpleNamespace(**x) for x in span_rows]))
            versions.append(version_row(actor, "route", route_id, 1, "create", {}, snap, now))
            report.routes_written += 1
    if progress:
        progress(f"writing {len(routes)} routes and {len(versions)} history entries")
    for model, rows in ((ContactRoute, routes), (TimeSpan, spans), (DirectoryVersion, versions)):
        for chunk in range(0, len(rows), BULK):
            await session.execute(insert(table_of(model)), rows[chunk : chunk + BULK])
    if len(new_units) >= BULK:
        await optimize_index(session)
