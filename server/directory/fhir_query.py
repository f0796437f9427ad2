"""FHIR R4 queries: ITI-90 search (Find Matching Care Services) and ITI-91 history (Care Services Updates)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.models import Organisation, Unit
from server.directory import hours as hrs
from server.directory import store
from server.directory.fhir import (
    DEFAULT_COUNT,
    HISTORY_TYPES,
    LOCATION_TYPE,
    LOGGED,
    MAX_COUNT,
    OID_HSA,
    OID_ORGNR,
    URI_SYSTEM,
    FhirError,
    current,
    read,
    render,
)
from server.directory.models import Affiliation, ContactRoute, DirectoryVersion, Endpoint
from server.directory.text import fold

# --------------------------------------------------------------------------------------------- search (ITI-90)

DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
COMMON = {
    "_id", "_lastUpdated", "_count", "_include", "_revinclude", "_offset", "_total", "_format", "_summary", "_elements",
}  # fmt: skip
SEARCH_PARAMS: dict[str, set[str]] = {
    "Organization": {"name", "identifier", "partof", "type", "active"},
    "Location": {"name", "identifier", "organization", "partof", "type", "status"},
    "HealthcareService": {"name", "organization", "location", "service-type", "type", "active", "identifier"},
    "Endpoint": {"name", "organization", "connection-type", "status", "identifier"},
    "OrganizationAffiliation": {"active", "participating-organization", "primary-organization", "role", "identifier"},
    "Practitioner": {"name", "identifier", "active"},
    "PractitionerRole": {"practitioner", "organization", "location", "role", "active", "identifier"},
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
    "Practitioner": {},
    "PractitionerRole": {
        "PractitionerRole:practitioner": ("Practitioner", "practitioner"),
        "PractitionerRole:organization": ("Organization", "organization"),
        "PractitionerRole:location": ("Location", "location"),
    },
}


# _revinclude value -> (referring type, its search parameter that points at the matches)
REVINCLUDES: dict[str, dict[str, tuple[str, str]]] = {
    "Organization": {
        "Location:organization": ("Location", "organization"),
        "HealthcareService:organization": ("HealthcareService", "organization"),
        "Endpoint:organization": ("Endpoint", "organization"),
        "OrganizationAffiliation:primary-organization": ("OrganizationAffiliation", "primary-organization"),
        "OrganizationAffiliation:participating-organization": ("OrganizationAffiliation", "participating-organization"),
        "PractitionerRole:organization": ("PractitionerRole", "organization"),
    },
    "Location": {
        "HealthcareService:location": ("HealthcareService", "location"),
        "Location:partof": ("Location", "partof"),
        "PractitionerRole:location": ("PractitionerRole", "location"),
    },
    "HealthcareService": {},
    "Endpoint": {},
    "OrganizationAffiliation": {},
    "Practitioner": {"PractitionerRole:practitioner": ("PractitionerRole", "practitioner")},
    "PractitionerRole": {},
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


def parse_date(value: str) -> tuple[str, datetime, datetime]:
    """A FHIR date search value: its prefix and the range [low, high) its precision covers (year to seconds)."""
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    raw = value[2:] if value[:2] in DATE_PREFIXES else value
    try:
        if len(raw) == 4 and raw.isdigit():
            low = datetime(int(raw), 1, 1, tzinfo=hrs.TZ)
            high = datetime(int(raw) + 1, 1, 1, tzinfo=hrs.TZ)
        elif len(raw) == 7 and raw[4] == "-":
            year, month = int(raw[:4]), int(raw[5:])
            low = datetime(year, month, 1, tzinfo=hrs.TZ)
            high = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=hrs.TZ)
        elif len(raw) == 10:
            low = datetime.fromisoformat(raw).replace(tzinfo=hrs.TZ)
            high = low + timedelta(days=1)
        else:
            low = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if low.tzinfo is None:
                low = low.replace(tzinfo=UTC)
            seconds = raw.split("T", 1)[1][:8].count(":") == 2
            high = low + (timedelta(seconds=1) if seconds else timedelta(minutes=1))
    except (ValueError, IndexError):
        raise _bad(
            f"'{value}' is not a FHIR date/dateTime (e.g. ge2026, 2026-06, ge2026-06-01 or gt2026-06-01T10:00:00Z)."
        ) from None
    return prefix, low.astimezone(UTC), high.astimezone(UTC)


def date_clause(column: Any, value: str) -> ColumnElement[bool]:
    """`column` (a UTC instant) against a date search value, for SQL columns and plain datetimes alike."""
    prefix, low, high = parse_date(value)
    if prefix in ("gt", "sa"):
        return column >= high  # type: ignore[no-any-return]
    if prefix in ("lt", "eb"):
        return column < low  # type: ignore[no-any-return]
    if prefix == "ge":
        return column >= low  # type: ignore[no-any-return]
    if prefix == "le":
        return column < high  # type: ignore[no-any-return]
    if prefix == "ne":
        return or_(column < low, column >= high)
    return and_(column >= low, column < high)


def date_matches(moment: datetime, value: str) -> bool:
    prefix, low, high = parse_date(value)
    inside = low <= moment < high
    return {
        "gt": moment >= high,
        "sa": moment >= high,
        "lt": moment < low,
        "eb": moment < low,
        "ge": moment >= low,
        "le": moment < high,
        "ne": not inside,
    }.get(prefix, inside)


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


def token_clause(value: str, systems: dict[str, Any]) -> ColumnElement[bool]:
    """FHIR token search on identifiers: `value`, `system|value`, `|value` (no system) and `system|`, OR-ed by commas.

    `systems` maps each identifier system to its column; every identifier here has a system.
    """
    clauses: list[ColumnElement[bool]] = []
    for part in value.split(","):
        system, bar, code = part.partition("|")
        if not bar:
            clauses.extend(column == part for column in systems.values())
        elif system in systems:
            column = systems[system]
            clauses.append(column == code if code else column.is_not(None))
    return or_(*clauses) if clauses else false()


def uuid_token_clause(column: Any, value: str) -> ColumnElement[bool]:
    """token_clause for the `urn:uuid:` identifiers of objects without an HSA-id (see fhir.uuid_identifier)."""
    wanted: list[uuid.UUID] = []
    any_id = False
    for part in value.split(","):
        system, bar, code = part.partition("|")
        if bar and system != URI_SYSTEM:
            continue
        if bar and not code:
            any_id = True
        elif code.startswith("urn:uuid:") or (not bar and part.startswith("urn:uuid:")):
            try:
                wanted.append(uuid.UUID((code if bar else part).removeprefix("urn:uuid:")))
            except ValueError:
                continue
    if any_id:
        return column.is_not(None)  # type: ignore[no-any-return]
    return column.in_(wanted) if wanted else false()


def token_matches(value: str, identifiers: dict[str, str | None]) -> bool:
    """token_clause for an object in memory: `identifiers` maps system → value."""
    for part in value.split(","):
        system, bar, code = part.partition("|")
        if not bar and part in identifiers.values():
            return True
        if bar and system in identifiers and identifiers[system] is not None and code in ("", identifiers[system]):
            return True
    return False


LETTERS = (("Å", "å", "a"), ("Ä", "ä", "a"), ("Ö", "ö", "o"), ("É", "é", "e"), ("Ü", "ü", "u"))


def sql_fold(column: Any) -> Any:
    """text.fold for the letters that matter here, in SQL (SQLite's lower() leaves å/ä/ö alone).

    Punctuation stays ("Brygga-inkorg"): search values for such columns are folded by `light_fold`."""
    for upper, lower, plain in LETTERS:
        column = func.replace(func.replace(column, upper, plain), lower, plain)
    return func.lower(column)


def light_fold(text: str) -> str:
    """`sql_fold` in Python, for the search value compared with a `sql_fold` column."""
    for upper, lower, plain in LETTERS:
        text = text.replace(upper, plain).replace(lower, plain)
    return text.lower()


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def alternatives(value: str) -> list[str]:
    """A search value's comma-separated alternatives; `\\,` is a literal comma (FHIR escaping)."""
    return [part.replace("\\,", ",") for part in re.split(r"(?<!\\),", value) if part]


def string_clause(
    columns: Sequence[Any],
    folded_columns: Sequence[Any],
    modifier: str,
    value: str,
    fold_value: Callable[[str], str] = fold,
) -> ColumnElement[bool]:
    """FHIR string search: default = case/accent-insensitive starts-with (of any word here); :contains; :exact.

    Comma-separated values are alternatives; `%` and `_` are literal characters.
    """
    parts = alternatives(value)
    if modifier == "exact":
        return or_(*[column == part for part in parts for column in columns])
    clauses: list[ColumnElement[bool]] = []
    for part in parts:
        needle = _like(fold_value(part))
        for column in folded_columns:
            if modifier == "contains":
                clauses.append(column.like(f"%{needle}%", escape="\\"))
            else:
                clauses.append(or_(column.like(f"{needle}%", escape="\\"), column.like(f"% {needle}%", escape="\\")))
    return or_(*clauses) if clauses else false()


def string_matches(text: str, modifier: str, value: str) -> bool:
    """string_clause for an object in memory."""
    parts = alternatives(value)
    if modifier == "exact":
        return text in parts
    folded = fold(text)
    if modifier == "contains":
        return any(fold(part) in folded for part in parts)
    return any(folded.startswith(fold(part)) or f" {fold(part)}" in folded for part in parts)


def supported(resource_type: str, query: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The parameters this server understands on the type (for `Prefer: handling=lenient`)."""
    names = SEARCH_PARAMS[resource_type] | COMMON
    return [(key, value) for key, value in query if key.partition(":")[0] in names]


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
    if params.first("_summary") == "count":
        count = 0  # the total only
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
        clauses.append(token_clause(value, {OID_HSA: Unit.hsa_id}))
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
        if not date_matches(org.updated_at, value):
            return False
    for modifier, value in params.get("name"):
        if not string_matches(org.name, modifier, value):
            return False
    for _modifier, value in params.get("identifier"):
        if not token_matches(value, {OID_ORGNR: org.org_number, OID_HSA: org.hsa_id}):
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
    if resource_type in LOGGED:
        total, matches = await _search_log(session, resource_type, params, offset, count)
    else:
        total, objects = await _search_tables(session, resource_type, params, offset, count, staff=staff)
        matches = await current(session, resource_type, objects, now)
    included = await _includes(session, resource_type, params, matches, staff=staff, now=now)
    included += await _revincludes(session, resource_type, params, [*matches, *included], staff=staff, now=now)
    return SearchResult(total=total, matches=matches, included=included, offset=offset, count=count)


def _snap(key: str) -> Any:
    return DirectoryVersion.snapshot[key].as_string()


def _log_clauses(resource_type: str, params: Params) -> list[ColumnElement[bool]]:
    """Practitioner/PractitionerRole search over their newest versions (what read shows)."""
    clauses: list[ColumnElement[bool]] = [DirectoryVersion.operation != "delete"]
    for _modifier, value in params.get("_id"):
        clauses.append(DirectoryVersion.resource_id.in_(_ids(value, "")))
    for _modifier, value in params.get("_lastUpdated"):
        clauses.append(date_clause(DirectoryVersion.at, value))
    for _modifier, value in params.get("active"):
        clauses.append(true() if _bool(value) else false())  # unpublished ones are deleted, not inactive
    for modifier, value in params.get("name"):
        clauses.append(string_clause([_snap("name")], [sql_fold(_snap("name"))], modifier, value, light_fold))
    for _modifier, value in params.get("identifier"):
        clauses.append(
            token_clause(value, {OID_HSA: _snap("hsa_id")})
            if resource_type == "Practitioner"
            else uuid_token_clause(DirectoryVersion.resource_id, value)
        )
    for _modifier, value in params.get("practitioner"):
        clauses.append(_snap("practitioner_id").in_([str(i) for i in _ids(value, "")]))
    for _modifier, value in [*params.get("organization"), *params.get("location")]:
        clauses.append(_snap("unit_id").in_([str(i) for i in _ids(value, "")]))
    for _modifier, value in params.get("role"):
        clauses.append(_snap("code").in_([_token(part)[1] for part in value.split(",")]))
    return clauses


async def _search_log(
    session: AsyncSession, resource_type: str, params: Params, offset: int, count: int
) -> tuple[int, list[dict[str, Any]]]:
    query = store.latest_of(LOGGED[resource_type]).where(*_log_clauses(resource_type, params))
    total = int(await session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    if count == 0:
        return total, []
    order = [sql_fold(_snap("name"))] if resource_type == "Practitioner" else []
    rows = await session.execute(query.order_by(*order, DirectoryVersion.resource_id).offset(offset).limit(count))
    return total, [render(resource_type, v.resource_type, v.snapshot, v.version, v.at) for v in rows.scalars()]


async def _search_tables(
    session: AsyncSession, resource_type: str, params: Params, offset: int, count: int, *, staff: bool
) -> tuple[int, list[Any]]:
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
            label = sql_fold(ContactRoute.label)
            clauses.append(string_clause([ContactRoute.label], [label], modifier, value, light_fold))
        for _modifier, value in [*params.get("organization"), *params.get("location")]:
            clauses.append(ContactRoute.unit_id.in_(_ids(value, "")))
        for _modifier, value in [*params.get("service-type"), *params.get("type")]:
            clauses.append(ContactRoute.purpose.in_([_token(part)[1] for part in value.split(",")]))
        for _modifier, value in params.get("active"):
            clauses.append(ContactRoute.deleted_at.is_(None) if _bool(value) else false())
        for _modifier, value in params.get("identifier"):
            clauses.append(uuid_token_clause(ContactRoute.id, value))
        total, objects = await _run(
            session, ContactRoute, clauses, [ContactRoute.unit_id, ContactRoute.rank, ContactRoute.id], offset, count
        )
    elif resource_type == "Endpoint":
        clauses = _common_clauses(Endpoint, params)
        for modifier, value in params.get("name"):
            clauses.append(string_clause([Endpoint.name], [sql_fold(Endpoint.name)], modifier, value, light_fold))
        for _modifier, value in params.get("organization"):
            ids = _ids(value, "")
            clauses.append(or_(Endpoint.unit_id.in_(ids), Endpoint.organisation_id.in_(ids)))
        for _modifier, value in params.get("connection-type"):
            clauses.append(Endpoint.connection_type.in_([_token(part)[1] for part in value.split(",")]))
        for _modifier, value in params.get("status"):
            clauses.append(Endpoint.status.in_(value.split(",")))
        for _modifier, value in params.get("identifier"):
            clauses.append(uuid_token_clause(Endpoint.id, value))
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
        for _modifier, value in params.get("identifier"):
            clauses.append(uuid_token_clause(Affiliation.id, value))
        total, objects = await _run(
            session, Affiliation, clauses, [Affiliation.created_at, Affiliation.id], offset, count
        )
    return total, objects


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


async def _revincludes(
    session: AsyncSession,
    resource_type: str,
    params: Params,
    shown: list[dict[str, Any]],
    *,
    staff: bool,
    now: datetime,
) -> list[dict[str, Any]]:
    """Resources that refer to the matches (up to MAX_COUNT per `_revinclude`), e.g. Location:organization."""
    ids = ",".join(m["id"] for m in shown if m["resourceType"] == resource_type)
    seen: set[str] = {f"{m['resourceType']}/{m['id']}" for m in shown}
    out: list[dict[str, Any]] = []
    for _modifier, value in params.get("_revinclude"):
        if value not in REVINCLUDES[resource_type]:
            raise _bad(f"_revinclude={value} is not supported; supported: {sorted(REVINCLUDES[resource_type])}.")
        if not ids:
            continue
        source, parameter = REVINCLUDES[resource_type][value]
        found = await search(session, source, [(parameter, ids), ("_count", str(MAX_COUNT))], staff=staff, now=now)
        for resource in found.matches:
            key = f"{resource['resourceType']}/{resource['id']}"
            if key not in seen:
                seen.add(key)
                out.append(resource)
    return out


# --------------------------------------------------------------------------------------------- history (ITI-91)


def hidden_from(version: DirectoryVersion, *, staff: bool) -> bool:
    """A route version the caller may not see: anonymous and not public (shown as a deletion)."""
    return not staff and version.resource_type == "route" and version.snapshot.get("audience") != "public"


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
        _prefix, moment, _end = parse_date(since)
        clauses.append(DirectoryVersion.at >= moment)
    if not staff and "route" in kinds:
        # Anonymous callers see public versions, and the change that took a route out of public view
        # (rendered as a deletion from their point of view, so mirrors stop publishing it).
        audience = DirectoryVersion.snapshot["audience"].as_string()
        was = DirectoryVersion.diff[("audience", 0)].as_string()
        clauses.append(or_(audience == "public", was == "public"))
    total = int(await session.scalar(select(func.count()).select_from(DirectoryVersion).where(*clauses)) or 0)
    rows = await session.execute(
        select(DirectoryVersion)
        .where(*clauses)
        .order_by(DirectoryVersion.at.desc(), DirectoryVersion.seq.desc())
        .offset(offset)
        .limit(count)
    )
    return total, list(rows.scalars())
