"""Request and response models of the discharge API (validated at the edge, documented in OpenAPI)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from server.core.api import Instant, Month

AgeBand = Literal["under_65", "65_plus"]
UnitRole = Literal["home_care", "social_services", "municipal_health_care", "primary_care"]
MilestoneKind = Literal[
    "admission_notice",
    "planning_started",
    "ready_for_discharge",
    "sip_called",
    "sip_held",
    "discharged",
    "interrupted",
    "readmission",
]
View = Literal["mine", "due_today", "overdue", "waiting"]


class CaseUnitIn(BaseModel):
    unit_id: uuid.UUID
    role: UnitRole


class CaseOpen(BaseModel):
    case_ref: str = Field(
        min_length=3,
        max_length=64,
        pattern=r"^\w[\w.:/-]*$",
        description="Pseudonymous reference from the source record system; never a personal identity number.",
    )
    municipality_code: str = Field(pattern=r"^01\d\d$", description="The patient's municipality (SCB code).")
    district: str | None = Field(default=None, max_length=40, description="Stockholm city only: stadsdelsområde.")
    age_band: AgeBand
    ward_unit_id: uuid.UUID
    units: list[CaseUnitIn] = Field(min_length=1, max_length=10)
    admitted_at: Instant
    unplanned: bool = Field(default=True, description="The admission was not planned (counts for readmissions).")
    send_admission_notice: bool = Field(default=True, description="Send the inskrivningsmeddelande now.")
    personal_number: str | None = Field(
        default=None,
        max_length=20,
        description="Optional, only to link readmissions: the server keeps a keyed hash, never the number.",
    )


class MilestoneIn(BaseModel):
    kind: MilestoneKind
    at: Instant | None = Field(default=None, description="When it happened (e.g. ready for discharge); default now.")
    unit_id: uuid.UUID | None = Field(default=None, description="Which of your units sends it; default the one.")


class SipBooking(BaseModel):
    starts_at: Instant
    duration_minutes: int = Field(default=60, ge=15, le=240)
    unit_id: uuid.UUID | None = Field(default=None, description="Your unit that calls (organises) the SIP.")


class CaseUnitOut(BaseModel):
    unit_id: uuid.UUID
    unit_name: str
    organisation_name: str
    role: str  # ward | home_care | ...


class MilestoneAck(BaseModel):
    unit_id: uuid.UUID
    acknowledged_at: datetime | None


class MilestoneOut(BaseModel):
    id: uuid.UUID
    kind: str
    text: str
    effective_at: datetime
    recorded_at: datetime
    by_unit_id: uuid.UUID | None
    message_id: uuid.UUID | None
    meeting_id: uuid.UUID | None
    acks: list[MilestoneAck]


class CaseClockOut(BaseModel):
    clock: str
    side: str
    started_at: datetime
    due_at: datetime
    done_at: datetime | None
    state: str


class ClockEscalationOut(BaseModel):
    clock: str
    level: int
    unit_id: uuid.UUID | None
    route_label: str | None
    route_value: str | None
    at: datetime


class CaseOut(BaseModel):
    id: uuid.UUID
    case_ref: str
    municipality_code: str
    municipality: str
    district: str | None
    age_band: str
    status: str
    ward_unit_id: uuid.UUID
    conversation_id: uuid.UUID | None
    admitted_at: datetime
    ready_at: datetime | None
    discharged_at: datetime | None
    payment_from: datetime | None
    units: list[CaseUnitOut]
    clocks: list[CaseClockOut]
    milestones: list[MilestoneOut]
    escalations: list[ClockEscalationOut]
    waiting_for_my_ack: list[uuid.UUID] = Field(description="Milestone messages my units have to acknowledge.")


class CaseList(BaseModel):
    items: list[CaseOut]


class CaseListQuery(BaseModel):
    unit_id: uuid.UUID
    view: View = "mine"


class SipBooked(BaseModel):
    case: CaseOut
    meeting_id: uuid.UUID
    join_path: str


class ClockRulesIn(BaseModel):
    admission_notice_hours: int = Field(ge=1, le=24 * 7)
    sip_call_days: int = Field(ge=1, le=30)
    payment_days: int = Field(ge=0, le=60)
    payment_day_kind: Literal["calendar", "weekdays"]
    escalation_minutes: int = Field(ge=5, le=24 * 60)


class ClockRulesOut(ClockRulesIn):
    organisation_id: uuid.UUID
    default: bool = Field(description="True while the region uses the defaults (docs/discharge.md).")


class StatisticsQuery(BaseModel):
    first_month: Month
    last_month: Month


class StatisticsCell(BaseModel):
    month: str
    municipality_code: str
    municipality: str
    district: str | None
    cases: int | None
    ready_days: int | None
    payment_days: int | None
    discharges_65_plus: int | None
    readmissions_65_plus: int | None
    readmission_share: float | None
    suppressed: bool


class StatisticsOut(BaseModel):
    first_month: str
    last_month: str
    min_cell: int
    items: list[StatisticsCell]
