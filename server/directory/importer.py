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

import csv
import io
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time
from types import SimpleNamespace
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from sqlalchemy import insert, select

from server.audit.service import record
from server.core.context import AppContext
from server.core.models import Organisation, Unit
from server.directory import schemas as s
from server.directory import service as svc
from server.directory import store
from server.directory.models import ContactRoute, DirectoryVersion, TimeSpan, search_columns, table_of
from server.directory.search import Vocabulary, optimize_index
from server.identity.principal import Principal

Format = Literal["csv", "json"]
Progress = Callable[[str], None]

CSV_COLUMNS = [
    "organisation_number",
    "organisation_name",
    "organisation_kind",
    "unit_hsa_id",
    "unit_name",
    "unit_type",
    "parent_hsa_id",
    "municipality_code",
    "street",
    "postal_code",
    "town",
    "aliases",
    "active",
    "route_purpose",
    "route_channel",
    "route_label",
    "route_value",
    "route_audience",
    "route_rank",
    "route_hours",
]
PROGRESS_EVERY = 1000
BULK = 2000  # rows per executemany
DROPPED = ("id", "organisation_id", "parent_id", "closures")  # snapshot keys export leaves out


class RowError(BaseModel):
    line: int = Field(description="1-based line in the file where the record starts.")
    record: str = Field(description="e.g. 'unit SE2321000016-7AV52' or 'row 12'.")
    reason: str


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


# --------------------------------------------------------------------------------------------- TimeSpan strings


def _clock(text: str) -> time | None:
    hours, _, minutes = text.strip().partition(":")
    if not (hours.isdigit() and minutes[:2].isdigit()):
        raise ValueError(f"'{text}' is not a time like 08:00")
    if int(hours) == 24 and int(minutes[:2]) == 0:
        return None  # end of day
    return time(int(hours), int(minutes[:2]))


def parse_timespan(text: str) -> s.TimeSpanIn:
    """`fromDay#toDay#fromTime#toTime[#comment[#fromDate[#toDate[#holidayRule]]]]` → TimeSpanIn."""
    parts = text.strip().split("#")
    if not 4 <= len(parts) <= 8:
        raise ValueError(f"TimeSpan '{text}' needs 4 to 8 '#'-separated parts (fromDay#toDay#fromTime#toTime...)")
    from_day, to_day = parts[0].strip(), parts[1].strip()
    if not (from_day.isdigit() and to_day.isdigit()):
        raise ValueError(f"TimeSpan '{text}': days are numbers 1 (Monday) to 7 (Sunday)")
    start, end = _clock(parts[2]), _clock(parts[3])
    if start is None:
        raise ValueError(f"TimeSpan '{text}': fromTime cannot be 24:00")
    all_day = start == time(0) and end is None
    values: dict[str, Any] = {
        "from_day": int(from_day),
        "to_day": int(to_day),
        "all_day": all_day,
        "from_time": None if all_day else start,
        "to_time": None if all_day else (end or time(0)),
    }
    if len(parts) > 4 and parts[4].strip():
        values["comment"] = parts[4].strip()
    if len(parts) > 5 and parts[5].strip():
        values["from_date"] = date.fromisoformat(parts[5].strip())
    if len(parts) > 6 and parts[6].strip():
        values["to_date"] = date.fromisoformat(parts[6].strip())
    if len(parts) > 7 and parts[7].strip():
        values["holiday_rule"] = parts[7].strip()
    try:
        return s.TimeSpanIn.model_validate(values)
    except ValidationError as exc:
        raise ValueError(f"TimeSpan '{text}': {_first_error(exc)}") from None


def format_timespan(span: s.TimeSpanIn | TimeSpan) -> str:
    if span.all_day or span.from_time is None or span.to_time is None:
        start, end = "00:00", "24:00"
    else:
        start, end = f"{span.from_time:%H:%M}", f"{span.to_time:%H:%M}"
    parts = [str(span.from_day), str(span.to_day), start, end, (span.comment or "").replace("#", " ").replace(";", ",")]
    parts += [span.from_date.isoformat() if span.from_date else "", span.to_date.isoformat() if span.to_date else ""]
    parts.append(span.holiday_rule if span.holiday_rule != "normal" else "")
    while len(parts) > 4 and not parts[-1]:
        parts.pop()
    return "#".join(parts)


def _route_signature(routes: list[Any]) -> list[tuple[Any, ...]]:
    """What makes two lists of routes the same for an import (ids and versions aside)."""
    signatures = [
        (
            r.purpose,
            r.channel,
            r.label,
            r.value,
            r.audience,
            r.rank,
            r.note or None,
            r.valid_from,
            r.valid_to,
            tuple(format_timespan(span) for span in r.hours),
        )
        for r in routes
    ]
    return sorted(signatures, key=repr)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


# --------------------------------------------------------------------------------------------- records


class ImportRoute(s.RouteCreate):
    @field_validator("hours", mode="before")
    @classmethod
    def _hsa_strings(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.split(";") if part.strip()]
        if isinstance(value, list):
            return [parse_timespan(item) if isinstance(item, str) else item for item in value]
        return value


class ImportUnit(s.Strict):
    hsa_id: s.HsaId
    organisation_number: s.OrgNumber
    name: s.Name
    unit_type: s.UnitType
    parent_hsa_id: s.HsaId | None = None
    municipality_code: s.MunicipalityCode | None = None
    address: s.Address | None = None
    aliases: list[str] = Field(default_factory=list, max_length=20)
    description: str | None = Field(default=None, max_length=1000)
    active: bool = True
    valid_from: date | None = None
    valid_to: date | None = None
    routes: list[ImportRoute] = Field(default_factory=list)


class ImportOrganisation(s.OrganisationCreate):
    org_number: s.OrgNumber


class Parsed(BaseModel):
    organisations: list[tuple[int, ImportOrganisation]] = Field(default_factory=list)
    units: list[tuple[int, ImportUnit]] = Field(default_factory=list)
    records: int = 0
    errors: list[RowError] = Field(default_factory=list)


def _blank(row: dict[str, str], keys: list[str]) -> bool:
    return not any((row.get(key) or "").strip() for key in keys)


def parse_csv(content: str, progress: Progress | None = None) -> Parsed:
    parsed = Parsed()
    reader = csv.DictReader(io.StringIO(content))
    missing = [column for column in ("unit_hsa_id",) if column not in (reader.fieldnames or [])]
    if missing:
        parsed.errors.append(RowError(line=1, record="header", reason=f"missing column(s) {missing}; see the docs"))
        return parsed
    units: dict[str, tuple[int, dict[str, Any]]] = {}
    unit_errors: set[str] = set()
    orgs: dict[str, tuple[int, dict[str, Any]]] = {}
    for row in reader:
        line = reader.line_num
        parsed.records += 1
        if progress and parsed.records % PROGRESS_EVERY == 0:
            progress(f"checked {parsed.records} rows")
        row = {key: (value or "").strip() for key, value in row.items() if key}
        hsa_id = row.get("unit_hsa_id", "")
        label = f"row {parsed.records} ({hsa_id or 'no HSA-id'})"
        if not hsa_id:
            parsed.errors.append(RowError(line=line, record=label, reason="unit_hsa_id is empty"))
            continue
        number = row.get("organisation_number", "").replace("-", "")
        if row.get("organisation_name") and number and number not in orgs:
            orgs[number] = (
                line,
                {
                    "name": row["organisation_name"],
                    "kind": row.get("organisation_kind") or "private",
                    "org_number": number,
                },
            )
        if hsa_id not in units:
            unit = {
                "hsa_id": hsa_id,
                "organisation_number": number,
                "name": row.get("unit_name", ""),
                "unit_type": row.get("unit_type", ""),
                "parent_hsa_id": row.get("parent_hsa_id") or None,
                "municipality_code": row.get("municipality_code") or None,
                "address": {
                    "street": row.get("street") or None,
                    "postal_code": row.get("postal_code") or None,
                    "town": row.get("town") or None,
                },
                "aliases": [alias.strip() for alias in row.get("aliases", "").split("|") if alias.strip()],
                "active": (row.get("active") or "true").lower() not in ("false", "0", "no", "nej"),
                "routes": [],
            }
            units[hsa_id] = (line, unit)
        route_keys = ["route_purpose", "route_channel", "route_label", "route_value", "route_hours"]
        if _blank(row, route_keys):
            continue
        route = {
            "purpose": row.get("route_purpose") or "general",
            "channel": row.get("route_channel", ""),
            "label": row.get("route_label", ""),
            "value": row.get("route_value", ""),
            "audience": row.get("route_audience") or "staff",
            "rank": row.get("route_rank") or 100,
            "hours": row.get("route_hours", ""),
        }
        try:
            checked = ImportRoute.model_validate(route)
        except (ValidationError, ValueError) as exc:
            reason = _first_error(exc) if isinstance(exc, ValidationError) else str(exc)
            parsed.errors.append(RowError(line=line, record=label, reason=f"route: {reason}"))
            unit_errors.add(hsa_id)
            continue
        units[hsa_id][1]["routes"].append(checked)
    for number, (line, data) in orgs.items():
        try:
            parsed.organisations.append((line, ImportOrganisation.model_validate(data)))
        except ValidationError as exc:
            parsed.errors.append(RowError(line=line, record=f"organisation {number}", reason=_first_error(exc)))
    for hsa_id, (line, data) in units.items():
        try:
            parsed.units.append((line, ImportUnit.model_validate(data)))
        except ValidationError as exc:
            if hsa_id not in unit_errors:
                parsed.errors.append(RowError(line=line, record=f"row for unit {hsa_id}", reason=_first_error(exc)))
    return parsed


def _json_record_lines(content: str) -> dict[str, list[int]]:
    """Line numbers where each element of the top-level arrays starts: {"units": [3, 17, ...], ...}."""
    lines: dict[str, list[int]] = {}
    depth, line, in_string, escaped, key, last_string = 0, 1, False, False, "", ""
    string_start = 0
    for index, char in enumerate(content):
        if char == "\n":
            line += 1
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
                last_string = content[string_start:index]
            continue
        if char == '"':
            in_string, string_start = True, index + 1
        elif char == ":" and depth == 1:
            key = last_string
        elif char in "{[":
            if depth == 2 and char == "{":
                lines.setdefault(key, []).append(line)
            depth += 1
        elif char in "}]":
            depth -= 1
    return lines


def parse_json(content: str, progress: Progress | None = None) -> Parsed:
    parsed = Parsed()
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        parsed.errors.append(RowError(line=exc.lineno, record="file", reason=f"not valid JSON: {exc.msg}"))
        return parsed
    if isinstance(data, list):
        data = {"units": data}
        content = '{"units":' + content + "}"
    if not isinstance(data, dict):
        parsed.errors.append(
            RowError(line=1, record="file", reason='expected {"organisations": [...], "units": [...]}')
        )
        return parsed
    starts = _json_record_lines(content)
    for key, model in (("organisations", ImportOrganisation), ("units", ImportUnit)):
        items = data.get(key) or []
        if not isinstance(items, list):
            parsed.errors.append(RowError(line=1, record=key, reason=f"'{key}' must be a list"))
            continue
        for index, item in enumerate(items):
            parsed.records += 1
            if progress and parsed.records % PROGRESS_EVERY == 0:
                progress(f"checked {parsed.records} records")
            line = starts.get(key, [])[index] if index < len(starts.get(key, [])) else 1
            name = item.get("hsa_id") or item.get("org_number") if isinstance(item, dict) else None
            label = f"{key}[{index}]" + (f" ({name})" if name else "")
            try:
                checked = model.model_validate(item)
            except (ValidationError, ValueError) as exc:
                reason = _first_error(exc) if isinstance(exc, ValidationError) else str(exc)
                parsed.errors.append(RowError(line=line, record=label, reason=reason))
                continue
            if isinstance(checked, ImportOrganisation):
                parsed.organisations.append((line, checked))
            else:
                parsed.units.append((line, checked))
    return parsed


# --------------------------------------------------------------------------------------------- applying


async def run_import(
    ctx: AppContext,
    content: str,
    fmt: Format,
    *,
    dry_run: bool = False,
    actor: Principal | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    parsed = parse_csv(content, progress) if fmt == "csv" else parse_json(content, progress)
    report = ImportReport(format=fmt, dry_run=dry_run, committed=False, records=parsed.records)
    async with ctx.db.transaction() as session:
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
        if report.errors or dry_run:
            _count(report, parsed, known_orgs, existing)
            await session.rollback()
            return report
        await _apply(session, parsed, known_orgs, existing, actor, report, progress)
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
    """What a commit would do (dry run, or the numbers behind a rejected file)."""
    report.organisations_updated = sum(1 for _l, org in parsed.organisations if org.org_number in known_orgs)
    report.organisations_created = len(parsed.organisations) - report.organisations_updated
    report.units_updated = sum(1 for _l, unit in parsed.units if unit.hsa_id in existing)
    report.units_created = len(parsed.units) - report.units_updated
    report.routes_written = sum(len(unit.routes) for _l, unit in parsed.units)


async def _apply(
    session: Any,
    parsed: Parsed,
    orgs: dict[str, Organisation],
    existing: dict[str, Unit],
    actor: Principal | None,
    report: ImportReport,
    progress: Progress | None,
) -> None:
    """Write everything in the caller's transaction; new rows go in with bulk (executemany) inserts."""
    now = datetime.now(UTC)
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
            versions.append(svc.version_row(actor, "organisation", org.id, 1, "create", {}, svc.snapshot(org), now))
        else:
            before = svc.snapshot(org)
            for key, value in org_data.model_dump().items():
                setattr(org, key, value)
            after = svc.snapshot(org)
            if after != before:
                org.version += 1
                report.organisations_updated += 1
                versions.append(
                    svc.version_row(actor, "organisation", org.id, org.version, "update", before, after, now)
                )
    await session.flush()

    ids = {
        data.hsa_id: existing[data.hsa_id].id if data.hsa_id in existing else uuid.uuid4() for _l, data in parsed.units
    }
    parents = [data.parent_hsa_id for _l, data in parsed.units if data.parent_hsa_id and data.parent_hsa_id not in ids]
    if parents:
        rows = await session.execute(select(Unit.hsa_id, Unit.id).where(Unit.hsa_id.in_(parents)))
        ids.update({hsa_id: unit_id for hsa_id, unit_id in rows.all() if hsa_id})
    new_units: list[dict[str, Any]] = []
    replaced: list[uuid.UUID] = []
    skip: set[uuid.UUID] = set()  # existing units whose routes stay as they are
    current_routes: dict[uuid.UUID, list[ContactRoute]] = {}
    existing_ids = [unit.id for unit in existing.values()]
    for chunk in range(0, len(existing_ids), 500):
        current_routes.update(await store.routes_of(session, existing_ids[chunk : chunk + 500]))
    for index, (_line, data) in enumerate(parsed.units, start=1):
        address = data.address or s.Address()
        unit_id = ids[data.hsa_id]
        values: dict[str, Any] = {
            "organisation_id": orgs[data.organisation_number].id,
            "parent_id": ids[data.parent_hsa_id] if data.parent_hsa_id else None,
            "name": data.name,
            "unit_type": data.unit_type,
            "hsa_id": data.hsa_id,
            "municipality_code": data.municipality_code,
            "street": address.street,
            "postal_code": address.postal_code,
            "town": address.town,
            "aliases": data.aliases,
            "description": data.description,
            "active": data.active,
            "valid_from": data.valid_from,
            "valid_to": data.valid_to,
        }
        unit = existing.get(data.hsa_id)
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
                svc.version_row(actor, "unit", unit_id, 1, "create", {}, svc.unit_snapshot(SimpleNamespace(**row)), now)
            )
        else:
            before = svc.snapshot(unit)
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
                    svc.version_row(actor, "unit", unit.id, unit.version, "update", before, svc.snapshot(unit), now)
                )
            if not same_routes:
                replaced.append(unit.id)
            else:
                skip.add(unit.id)
        if progress and index % PROGRESS_EVERY == 0:
            progress(f"wrote {index} of {len(parsed.units)} units")
    for chunk in range(0, len(new_units), BULK):
        await session.execute(insert(table_of(Unit)), new_units[chunk : chunk + BULK])
    await session.flush()

    if replaced:
        old_routes = (
            await session.execute(
                select(ContactRoute).where(ContactRoute.unit_id.in_(replaced), ContactRoute.deleted_at.is_(None))
            )
        ).scalars()
        for route in old_routes:
            before = svc.snapshot(route)
            route.deleted_at = now
            route.version += 1
            versions.append(
                svc.version_row(actor, "route", route.id, route.version, "delete", before, svc.snapshot(route), now)
            )
        await session.flush()

    routes: list[dict[str, Any]] = []
    spans: list[dict[str, Any]] = []
    for _line, data in parsed.units:
        if ids[data.hsa_id] in skip:
            continue
        for route_in in data.routes:
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
                for position, span in enumerate(route_in.hours)
            ]
            routes.append(route_row)
            spans.extend(span_rows)
            snap = svc.route_snapshot(SimpleNamespace(**route_row, hours=[SimpleNamespace(**x) for x in span_rows]))
            versions.append(svc.version_row(actor, "route", route_id, 1, "create", {}, snap, now))
            report.routes_written += 1
    if progress:
        progress(f"writing {len(routes)} routes and {len(versions)} history entries")
    for model, rows in ((ContactRoute, routes), (TimeSpan, spans), (DirectoryVersion, versions)):
        for chunk in range(0, len(rows), BULK):
            await session.execute(insert(table_of(model)), rows[chunk : chunk + BULK])
    if len(new_units) >= BULK:
        await optimize_index(session)


# --------------------------------------------------------------------------------------------- export


async def export(ctx: AppContext, fmt: Format) -> str:
    from server.directory import store

    async with ctx.db.transaction() as session:
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
        "hours": [format_timespan(span) for span in route.hours],
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
                    **{key: value for key, value in svc.unit_snapshot(unit).items() if key not in DROPPED},
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
                    ";".join(format_timespan(span) for span in route.hours),
                ]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
