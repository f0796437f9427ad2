"""Request and response models of the deviation API. No field for a case reference or patient data."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from server.core.api import Month

Category = Literal[
    "missing_admission_notice",
    "ready_without_planning",
    "missing_information_at_discharge",
    "contact_route_unanswered",
    "payment_dispute",
    "other",
]
Status = Literal["inskickad", "mottagen", "under_utredning", "atgardad"]


class DeviationIn(BaseModel):
    category: Category
    occurred_on: date
    text: str = Field(min_length=10, max_length=4000, description="What happened; no patient data.")
    organisation_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10)
    unit_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10)
    route_id: uuid.UUID | None = Field(default=None, description="A directory contact route that did not answer.")
    reporter_unit_id: uuid.UUID | None = Field(default=None, description="Your unit, if you report for one.")
    reporter_phone: str | None = Field(default=None, max_length=40, description="Your own phone number.")
    reporter_email: str | None = Field(default=None, max_length=254, description="Your own e-mail address.")


class DeviationUpdate(BaseModel):
    status: Status | None = None
    answer: str | None = Field(default=None, min_length=1, max_length=4000, description="Answer to the reporter.")


class DeviationOut(BaseModel):
    id: uuid.UUID
    category: str
    occurred_on: date
    text: str
    organisation_ids: list[uuid.UUID]
    unit_ids: list[uuid.UUID]
    route_id: uuid.UUID | None
    reporter_name: str
    reporter_unit_id: uuid.UUID | None
    reporter_phone: str | None
    reporter_email: str | None
    status: str
    answer: str | None
    answered_at: datetime | None
    created_at: datetime
    mine: bool


class DeviationList(BaseModel):
    items: list[DeviationOut]


class DeviationStatisticsQuery(BaseModel):
    first_month: Month
    last_month: Month


class DeviationCount(BaseModel):
    month: str
    category: str
    reports: int


class DeviationStatistics(BaseModel):
    first_month: str
    last_month: str
    items: list[DeviationCount]
