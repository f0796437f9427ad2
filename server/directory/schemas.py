"""Pydantic models of the directory API: what the web client sends and receives (also used by import)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from server.core.api import MAX_SQL_INT, Instant
from server.directory import text

OrgKind = Literal["region", "municipality", "private"]
UnitType = Literal[
    "ward", "primary_care", "home_care", "nursing_home", "short_term_care", "municipal_health_care", "social_services"
]
Purpose = Literal["general", "discharge_planning", "weekend_discharge", "on_call", "switchboard", "medication", "other"]
Channel = Literal["phone", "secure_message", "video", "email", "fax", "sip_text"]
Audience = Literal["public", "staff"]
HolidayRule = Literal["normal", "holidays_only", "closed_on_holidays"]
ClosureKind = Literal["closure", "notice"]
EndpointStatus = Literal["active", "suspended", "off"]


def _hsa_id(value: str) -> str:
    problem = text.hsa_id_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _org_number(value: str) -> str:
    value = value.replace("-", "")
    problem = text.org_number_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _municipality(value: str) -> str:
    if value not in text.MUNICIPALITIES:
        raise ValueError("use one of the 26 Stockholm County municipality codes, e.g. 0182 (Nacka)")
    return value


def _postal_code(value: str) -> str:
    value = value.replace(" ", "")
    if not text.POSTAL_CODE.match(value):
        raise ValueError("a postal code has 5 digits, e.g. 118 83")
    return value


HsaId = Annotated[str, AfterValidator(_hsa_id)]
OrgNumber = Annotated[str, AfterValidator(_org_number)]
MunicipalityCode = Annotated[str, AfterValidator(_municipality)]
PostalCode = Annotated[str, AfterValidator(_postal_code)]
Name = Annotated[str, Field(min_length=1, max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# --------------------------------------------------------------------------------------------- hours


def wall_clock(value: time) -> time:
    if value.tzinfo is not None or value.microsecond:
        raise ValueError("give Stockholm local time as HH:MM or HH:MM:SS, without an offset")
    return value


# Opening hours are Stockholm wall-clock times ("08:00"), not RFC 3339 times: those need an offset
# (JSON Schema's "time" format), which a local time that follows daylight saving cannot have.
WallClock = Annotated[
    time,
    AfterValidator(wall_clock),
    WithJsonSchema({"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$", "examples": ["08:00"]}),
]


class TimeSpanIn(Strict):
    from_day: int = Field(ge=1, le=7, description="1 = Monday ... 7 = Sunday")
    to_day: int = Field(ge=1, le=7)
    all_day: bool = False
    from_time: WallClock | None = Field(default=None, description="HH:MM, Stockholm local time")
    to_time: WallClock | None = Field(default=None, description="HH:MM; before from_time = past midnight")
    from_date: date | None = None
    to_date: date | None = None
    holiday_rule: HolidayRule = "normal"
    comment: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _times(self) -> TimeSpanIn:
        if not self.all_day and (self.from_time is None or self.to_time is None):
            raise ValueError("give from_time and to_time, or all_day: true")
        if self.all_day:
            self.from_time = self.to_time = None
        elif self.from_time == self.to_time:
            raise ValueError("from_time and to_time are equal; use all_day for round-the-clock")
        if self.from_date and self.to_date and self.to_date < self.from_date:
            raise ValueError("to_date is before from_date")
        return self


ALWAYS_OPEN = "always"
NO_HOURS = 'no opening hours: give time spans (e.g. Monday-Friday 08:00-16:00), or "always" for round the clock'


def hours_given(value: Any) -> Any:
    """An empty list (or nothing) is not "always"."""
    if value is None or value == []:
        raise ValueError(NO_HOURS)
    return value


# A route's hours: time spans, or the explicit word "always". Never empty: a route is not open round the
# clock by omission (issue 14 item 2).
RouteHoursIn = Annotated[list[TimeSpanIn] | Literal["always"], BeforeValidator(hours_given)]


def spans_of(hours: RouteHoursIn) -> list[TimeSpanIn]:
    """The time spans to store; "always" is stored as none (see server/directory/hours.py)."""
    return [] if isinstance(hours, str) else hours


class TimeSpanOut(TimeSpanIn):
    model_config = ConfigDict(extra="ignore", from_attributes=True)

    text: str = Field(default="", description="Readable English summary, e.g. 'mon-fri 08:00-16:00'.")


# --------------------------------------------------------------------------------------------- organisations


class OrganisationCreate(Strict):
    name: Name
    kind: OrgKind
    org_number: OrgNumber | None = None
    hsa_id: HsaId | None = None
    municipality_code: MunicipalityCode | None = None
    active: bool = True


class OrganisationPatch(Strict):
    name: Name | None = None
    kind: OrgKind | None = None
    org_number: OrgNumber | None = None
    hsa_id: HsaId | None = None
    municipality_code: MunicipalityCode | None = None
    active: bool | None = None


class OrganisationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: str
    org_number: str | None
    hsa_id: str | None
    municipality_code: str | None
    municipality_name: str | None = None
    active: bool
    version: int
    updated_at: datetime

    @model_validator(mode="after")
    def _municipality_name(self) -> OrganisationOut:
        self.municipality_name = text.MUNICIPALITIES.get(self.municipality_code or "")
        return self


class OrganisationPage(BaseModel):
    items: list[OrganisationOut]
    next_cursor: str | None = None


# --------------------------------------------------------------------------------------------- routes


class RouteCreate(Strict):
    purpose: Purpose = "general"
    channel: Channel
    label: Name
    value: str = Field(min_length=1, max_length=300, description="Phone (E.164), e-mail, inbox or video address.")
    audience: Audience = "staff"
    rank: int = Field(default=100, ge=0, le=10000, description="Lower is tried first.")
    note: str | None = Field(default=None, max_length=1000)
    endpoint_id: uuid.UUID | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    hours: RouteHoursIn = Field(
        description='Opening hours: time spans, or "always" for round the clock. Required, never empty.'
    )

    @model_validator(mode="after")
    def _value(self) -> RouteCreate:
        check_route_value(self.channel, self.value)
        return self


class RoutePatch(Strict):
    purpose: Purpose | None = None
    channel: Channel | None = None
    label: Name | None = None
    value: str | None = Field(default=None, min_length=1, max_length=300)
    audience: Audience | None = None
    rank: int | None = Field(default=None, ge=0, le=10000)
    note: str | None = Field(default=None, max_length=1000)
    endpoint_id: uuid.UUID | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    hours: RouteHoursIn | None = Field(default=None, description='Time spans or "always"; never empty.')


def check_route_value(channel: str, value: str) -> None:
    if channel in ("phone", "fax"):
        digits = value.replace(" ", "").replace("-", "")
        if not (digits.startswith(("+", "0")) and digits.lstrip("+").isdigit() and 6 <= len(digits) <= 16):
            raise ValueError("a phone number looks like +46 8 123 456 78 or 08-123 456 78")
    elif channel == "email" and ("@" not in value or " " in value):
        raise ValueError("an e-mail address looks like name@example.se")


class RouteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    unit_id: uuid.UUID
    purpose: str
    channel: str
    label: str
    value: str
    audience: str
    rank: int
    note: str | None
    endpoint_id: uuid.UUID | None
    valid_from: date | None
    valid_to: date | None
    hours: list[TimeSpanOut]
    version: int
    updated_at: datetime


class ClosureCreate(Strict):
    kind: ClosureKind = "closure"
    route_id: uuid.UUID | None = Field(default=None, description="Only this route; omit for the whole unit.")
    starts_at: Instant
    ends_at: Instant
    reason: str = Field(min_length=1, max_length=500)

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a time zone, e.g. 2026-06-19T00:00:00+02:00")
        return value

    @model_validator(mode="after")
    def _order(self) -> ClosureCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class ClosureOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    unit_id: uuid.UUID
    route_id: uuid.UUID | None
    kind: str
    starts_at: datetime
    ends_at: datetime
    reason: str


# --------------------------------------------------------------------------------------------- units


class Address(Strict):
    street: str | None = Field(default=None, max_length=200)
    postal_code: PostalCode | None = None
    town: str | None = Field(default=None, max_length=100)


class UnitCreate(Strict):
    organisation_id: uuid.UUID
    parent_id: uuid.UUID | None = None
    name: Name
    unit_type: UnitType
    hsa_id: HsaId | None = None
    municipality_code: MunicipalityCode | None = None
    address: Address | None = None
    aliases: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(default_factory=list, max_length=20)
    description: str | None = Field(default=None, max_length=1000)
    active: bool = True
    valid_from: date | None = None
    valid_to: date | None = None
    routes: list[RouteCreate] = Field(default_factory=list, description="Contact routes created with the unit.")


class UnitPatch(Strict):
    organisation_id: uuid.UUID | None = None
    parent_id: uuid.UUID | None = None
    name: Name | None = None
    unit_type: UnitType | None = None
    hsa_id: HsaId | None = None
    municipality_code: MunicipalityCode | None = None
    address: Address | None = None
    aliases: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(default=None, max_length=20)
    description: str | None = Field(default=None, max_length=1000)
    active: bool | None = None
    valid_from: date | None = None
    valid_to: date | None = None


class OrganisationRef(BaseModel):
    id: uuid.UUID
    name: str
    kind: str


class UnitOut(BaseModel):
    id: uuid.UUID
    organisation: OrganisationRef
    parent_id: uuid.UUID | None
    name: str
    unit_type: str
    hsa_id: str | None
    municipality_code: str | None
    municipality_name: str | None
    address: Address
    aliases: list[str]
    description: str | None
    active: bool
    valid_from: date | None
    valid_to: date | None
    version: int
    updated_at: datetime
    routes: list[RouteOut] = Field(description="Routes the caller may see, in rank order.")
    closures: list[ClosureOut] = Field(description="Current and upcoming closures and notices.")


class UnitSummary(BaseModel):
    id: uuid.UUID
    name: str
    unit_type: str
    hsa_id: str | None
    municipality_code: str | None
    municipality_name: str | None
    town: str | None
    organisation_id: uuid.UUID
    organisation_name: str
    match: Literal["exact", "prefix", "words", "fuzzy"] | None = Field(
        default=None, description="How the query matched (search only)."
    )
    open_routes: list[RouteOut] | None = Field(default=None, description="With open_at: the routes usable then.")


class UnitPage(BaseModel):
    items: list[UnitSummary]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` for the next page.")
    corrected_query: str | None = Field(default=None, description="Typo-corrected query used for fuzzy hits.")


class UnitQuery(BaseModel):
    q: str | None = Field(default=None, max_length=200, description="Name, alias, town or HSA-id; prefix, typos ok.")
    type: UnitType | None = None
    municipality: str | None = Field(default=None, pattern=r"^\d{4}$")
    organisation: uuid.UUID | None = None
    purpose: Purpose | None = Field(default=None, description="With open_at: a route of this purpose must be open.")
    open_at: Instant | None = Field(default=None, description="ISO time; only units with a route usable then.")
    include_inactive: bool = False
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=500)


class ReachabilityQuery(BaseModel):
    at: Instant | None = Field(default=None, description="ISO time (default now); naive = Stockholm local time.")
    purpose: Purpose | None = None


class ReachableRoute(RouteOut):
    until: datetime | None = Field(description="When this route stops being usable (within three weeks).")


class NextOpening(BaseModel):
    at: datetime
    route_id: uuid.UUID
    purpose: str
    channel: str
    label: str


class Reachability(BaseModel):
    unit_id: uuid.UUID
    unit_name: str
    at: datetime
    local_time: str = Field(description="`at` in Europe/Stockholm, e.g. 2026-06-20T10:00:00+02:00")
    holiday: str | None = Field(description="Swedish holiday name on that local date, if any.")
    reachable: bool
    routes: list[ReachableRoute] = Field(description="Usable now, best first (rank).")
    next_opening: NextOpening | None = Field(description="When nothing is usable: the first route to open.")
    closures: list[ClosureOut] = Field(description="Closures and notices in force at `at`.")


class HoursPreviewIn(Strict):
    """Hours being edited (not saved yet) of a new or existing route of the unit."""

    hours: RouteHoursIn
    route_id: uuid.UUID | None = Field(default=None, description="The route being edited: its closures count too.")
    valid_from: date | None = None
    valid_to: date | None = None


class OpenSpan(BaseModel):
    start: str = Field(description="HH:MM, Stockholm local time")
    end: str = Field(description="HH:MM; 24:00 = end of the day")


class PreviewDay(BaseModel):
    date: date
    holiday: str | None = Field(description="Swedish public holiday or aftnar (Julafton ...), if any.")
    open: list[OpenSpan] = Field(description="When the route is usable that day; empty = closed all day.")
    closures: list[str] = Field(description="Reasons of closures that cut into the day.")


class HoursPreview(BaseModel):
    at: datetime
    open_now: bool
    next_opening: datetime | None = Field(description="When closed now: the next opening (within three weeks).")
    days: list[PreviewDay] = Field(description="Today and the 13 days after it.")


# --------------------------------------------------------------------------------------------- endpoints, affiliations


class EndpointCreate(Strict):
    organisation_id: uuid.UUID | None = None
    unit_id: uuid.UUID | None = None
    name: Name
    connection_type: str = Field(min_length=1, max_length=40, description="e.g. brygga-secure-message")
    address: str = Field(min_length=1, max_length=500)
    payload_types: list[str] = Field(default_factory=list, max_length=10)
    status: EndpointStatus = "active"

    @model_validator(mode="after")
    def _owner(self) -> EndpointCreate:
        if (self.organisation_id is None) == (self.unit_id is None):
            raise ValueError("give exactly one of organisation_id or unit_id")
        return self


class EndpointPatch(Strict):
    name: Name | None = None
    connection_type: str | None = Field(default=None, min_length=1, max_length=40)
    address: str | None = Field(default=None, min_length=1, max_length=500)
    payload_types: list[str] | None = None
    status: EndpointStatus | None = None


class EndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    organisation_id: uuid.UUID | None
    unit_id: uuid.UUID | None
    name: str
    connection_type: str
    address: str
    payload_types: list[str]
    status: str
    version: int
    updated_at: datetime


class AffiliationCreate(Strict):
    primary_id: uuid.UUID = Field(description="Organisation or unit id (e.g. the ward).")
    participating_id: uuid.UUID = Field(description="Organisation or unit id (e.g. the municipality).")
    role: str = Field(min_length=1, max_length=60, description="e.g. discharge-cooperation")
    period_start: date | None = None
    period_end: date | None = None
    active: bool = True


class AffiliationPatch(Strict):
    role: str | None = Field(default=None, min_length=1, max_length=60)
    period_start: date | None = None
    period_end: date | None = None
    active: bool | None = None


class AffiliationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    primary_id: uuid.UUID
    participating_id: uuid.UUID
    role: str
    period_start: date | None
    period_end: date | None
    active: bool
    version: int
    updated_at: datetime


class ItemList(BaseModel):
    items: list[Any]


class VersionOut(BaseModel):
    version: int
    operation: str
    at: datetime
    actor_user_id: uuid.UUID | None
    diff: dict[str, Any] = Field(description="{field: [before, after]}")
    snapshot: dict[str, Any]


class History(BaseModel):
    resource_type: str
    resource_id: uuid.UUID
    versions: list[VersionOut]


class ChangeOut(BaseModel):
    seq: int
    resource_type: str
    resource_id: uuid.UUID
    version: int
    operation: str
    at: datetime


class ChangeFeed(BaseModel):
    items: list[ChangeOut]
    next_since: int = Field(description="Pass as `since` to get later changes.")


class ChangeQuery(BaseModel):
    since: int = Field(default=0, ge=0, le=MAX_SQL_INT)
    limit: int = Field(default=500, ge=1, le=5000)


# --------------------------------------------------------------------------------------------- published people


class PublicationSet(Strict):
    """Whether a unit membership is shown in the directory (FHIR Practitioner and PractitionerRole), and as what."""

    public: bool = Field(description="Show the member and this role to everyone, FHIR included. Off by default.")
    role_title: str | None = Field(
        default=None, min_length=1, max_length=100, description='The role as people say it, e.g. "Sjuksköterska".'
    )
    role_code: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9._-]{1,40}$",
        description="Optional code: HL7 practitioner-role (doctor, nurse, pharmacist, ...) or your own.",
    )


class PublicationOut(BaseModel):
    unit_id: uuid.UUID
    user_id: uuid.UUID
    public: bool
    role_title: str | None
    role_code: str | None
    practitioner_role_id: uuid.UUID | None = Field(description="The FHIR PractitionerRole id, once ever published.")
    fhir_version: int | None = Field(description="The PractitionerRole's newest versionId (a delete when not public).")
