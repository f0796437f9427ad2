"""Reading a directory import file (CSV or JSON) into checked records, with every rejected row reported.

The formats are described in importer.py, which applies what this module reads.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from server.directory import schemas as s
from server.directory.timespans import ALWAYS, first_error, parse_timespan

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
ROUTE_COLUMNS = [name for name in CSV_COLUMNS if name.startswith("route_")]
REQUIRED_ROUTE_COLUMNS = ("route_channel", "route_label", "route_value", "route_hours")
PROGRESS_EVERY = 1000


class RowError(BaseModel):
    line: int = Field(description="1-based line in the file where the record starts.")
    record: str = Field(description="e.g. 'unit SE2321000016-7AV52' or 'row 12'.")
    reason: str


class ImportRoute(s.RouteCreate):
    """A route in a file: HSA TimeSpan strings too; `always` (or `alltid`) is the explicit word for round the clock."""

    @field_validator("hours", mode="before")
    @classmethod
    def _hsa_strings(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.strip().lower() in ALWAYS:
                return s.ALWAYS_OPEN
            value = [part for part in value.split(";") if part.strip()]
        if isinstance(value, list):
            if len(value) == 1 and isinstance(value[0], str) and value[0].strip().lower() in ALWAYS:
                return s.ALWAYS_OPEN
            return [_span(item, index, len(value)) for index, item in enumerate(value, start=1)]
        return value


def _span(item: Any, index: int, total: int) -> Any:
    if not isinstance(item, str):
        return item
    try:
        return parse_timespan(item)
    except ValueError as exc:
        raise ValueError(f"TimeSpan {index} of {total}: {exc}") from None


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
    """Only the fields a record carries change an existing organisation (`model_fields_set`)."""

    org_number: s.OrgNumber
    kind: s.OrgKind = "private"


class Parsed(BaseModel):
    organisations: list[tuple[int, ImportOrganisation]] = Field(default_factory=list)
    units: list[tuple[int, ImportUnit]] = Field(default_factory=list)
    records: int = 0
    errors: list[RowError] = Field(default_factory=list)


def _blank(row: dict[str, str], keys: list[str]) -> bool:
    return not any((row.get(key) or "").strip() for key in keys)


def _csv_unit(row: dict[str, str], hsa_id: str, number: str, columns: set[str]) -> dict[str, Any]:
    """A unit record from its first row, with only the columns the file has (a missing column changes nothing)."""
    unit: dict[str, Any] = {
        "hsa_id": hsa_id,
        "organisation_number": number,
        "name": row.get("unit_name", ""),
        "unit_type": row.get("unit_type", ""),
        "routes": [],
    }
    for column in ("parent_hsa_id", "municipality_code"):
        if column in columns:
            unit[column] = row.get(column) or None
    address = {key: row.get(key) or None for key in ("street", "postal_code", "town") if key in columns}
    if address:
        unit["address"] = address
    if "aliases" in columns:
        unit["aliases"] = [alias.strip() for alias in row.get("aliases", "").split("|") if alias.strip()]
    if "active" in columns:
        unit["active"] = (row.get("active") or "true").lower() not in ("false", "0", "no", "nej")
    return unit


def parse_csv(content: str, progress: Progress | None = None) -> Parsed:
    parsed = Parsed()
    header = content.split("\n", 1)[0]
    delimiter = ";" if header.count(";") > header.count(",") else ","  # Swedish Excel saves with semicolons
    reader = csv.DictReader(io.StringIO(content), delimiter=delimiter)
    fields = [name.strip() for name in reader.fieldnames or []]
    reader.fieldnames = fields
    unknown = [name for name in fields if name not in CSV_COLUMNS]
    missing = [name for name in ("unit_hsa_id", "unit_name", "unit_type", "organisation_number") if name not in fields]
    if set(fields) & set(ROUTE_COLUMNS):
        missing += [name for name in ROUTE_COLUMNS if name not in fields and name in REQUIRED_ROUTE_COLUMNS]
    if unknown or missing:
        problems = ([f"unknown column(s) {unknown}"] if unknown else []) + (
            [f"missing column(s) {missing}"] if missing else []
        )
        parsed.errors.append(
            RowError(line=1, record="header", reason="; ".join(problems) + f"; the columns are {CSV_COLUMNS}")
        )
        return parsed
    columns = set(reader.fieldnames or [])
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
            org = {"name": row["organisation_name"], "org_number": number}
            if row.get("organisation_kind"):
                org["kind"] = row["organisation_kind"]
            orgs[number] = (line, org)
        if hsa_id not in units:
            units[hsa_id] = (line, _csv_unit(row, hsa_id, number, columns))
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
            reason = first_error(exc) if isinstance(exc, ValidationError) else str(exc)
            parsed.errors.append(RowError(line=line, record=label, reason=f"route: {reason}"))
            unit_errors.add(hsa_id)
            continue
        units[hsa_id][1]["routes"].append(checked)
    for number, (line, data) in orgs.items():
        try:
            parsed.organisations.append((line, ImportOrganisation.model_validate(data)))
        except ValidationError as exc:
            parsed.errors.append(RowError(line=line, record=f"organisation {number}", reason=first_error(exc)))
    for hsa_id, (line, data) in units.items():
        try:
            parsed.units.append((line, ImportUnit.model_validate(data)))
        except ValidationError as exc:
            if hsa_id not in unit_errors:
                parsed.errors.append(RowError(line=line, record=f"row for unit {hsa_id}", reason=first_error(exc)))
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
    except (ValueError, RecursionError):  # an integer over 4,300 digits, nesting deeper than Python recurses
        parsed.errors.append(RowError(line=1, record="file", reason="not valid JSON: too deeply nested or too large"))
        return parsed
    if isinstance(data, list):
        data = {"units": data}
        content = '{"units":' + content + "}"
    if not isinstance(data, dict):
        parsed.errors.append(
            RowError(line=1, record="file", reason='expected {"organisations": [...], "units": [...]}')
        )
        return parsed
    unknown = sorted(set(data) - {"organisations", "units"})
    if unknown:
        parsed.errors.append(
            RowError(line=1, record="file", reason=f"unknown field(s) {unknown}; expected organisations and units")
        )
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
                reason = first_error(exc) if isinstance(exc, ValidationError) else str(exc)
                parsed.errors.append(RowError(line=line, record=label, reason=reason))
                continue
            if isinstance(checked, ImportOrganisation):
                parsed.organisations.append((line, checked))
            else:
                parsed.units.append((line, checked))
    return parsed
