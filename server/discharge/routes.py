"""HTTP: discharge cases, milestones, SIP booking, per-unit lists, clock rules, statistics (JSON and CSV)."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from server.core.api import ApiRouter, path_uuid
from server.core.context import Key, ctx_of
from server.discharge import stats
from server.discharge.schemas import (
    CaseList,
    CaseListQuery,
    CaseOpen,
    CaseOut,
    ClockRulesIn,
    ClockRulesOut,
    MilestoneIn,
    SipBooked,
    SipBooking,
    StatisticsOut,
    StatisticsQuery,
)
from server.discharge.service import DischargeService
from server.identity.authn import principal_of

api = ApiRouter()
DISCHARGE: Key[DischargeService] = Key("discharge")  # the plugin starts the service and keeps it here
TAGS = ["discharge"]


def service_of(request: web.Request) -> DischargeService:
    return ctx_of(request).need(DISCHARGE)


@api.route(
    "POST", "/api/v1/discharge/cases", summary="Open a discharge case (and send the admission notice)", tags=TAGS,
    body=CaseOpen, response=CaseOut, status=201, errors=(409, 422),
)  # fmt: skip
async def open_case(request: web.Request, body: CaseOpen) -> CaseOut:
    return await service_of(request).open_case(principal_of(request), body)


@api.route(
    "GET", "/api/v1/discharge/cases", summary="A unit's cases: mine, due today, overdue, waiting for the other side",
    tags=TAGS, query=CaseListQuery, response=CaseList,
)  # fmt: skip
async def list_cases(request: web.Request, query: CaseListQuery) -> CaseList:
    items = await service_of(request).list_cases(principal_of(request), query.unit_id, query.view)
    return CaseList(items=items)


@api.route(
    "GET", "/api/v1/discharge/cases/{case_id}", summary="One case with its clocks and milestones", tags=TAGS,
    response=CaseOut, errors=(404,),
)  # fmt: skip
async def get_case(request: web.Request) -> CaseOut:
    return await service_of(request).get_case(principal_of(request), path_uuid(request, "case_id", "case"))


@api.route(
    "POST", "/api/v1/discharge/cases/{case_id}/milestones", summary="Send a milestone (a typed notice)", tags=TAGS,
    body=MilestoneIn, response=CaseOut, status=201, errors=(404, 409),
)  # fmt: skip
async def record_milestone(request: web.Request, body: MilestoneIn) -> CaseOut:
    case_id = path_uuid(request, "case_id", "case")
    return await service_of(request).record_milestone(principal_of(request), case_id, body)


@api.route(
    "POST", "/api/v1/discharge/cases/{case_id}/sip-meeting",
    summary="Book the SIP meeting: invites every unit of the case and sends the SIP call", tags=TAGS,
    body=SipBooking, response=SipBooked, status=201, errors=(404, 409),
)  # fmt: skip
async def book_sip(request: web.Request, body: SipBooking) -> SipBooked:
    return await service_of(request).book_sip(
        principal_of(request), path_uuid(request, "case_id", "case"), starts_at=body.starts_at,
        duration=timedelta(minutes=body.duration_minutes), unit_id=body.unit_id,
    )  # fmt: skip


@api.route(
    "GET", "/api/v1/discharge/rules/{organisation_id}", summary="A region's clock rules (defaults if not set)",
    tags=TAGS, response=ClockRulesOut,
)  # fmt: skip
async def get_rules(request: web.Request) -> ClockRulesOut:
    organisation_id = path_uuid(request, "organisation_id", "organisation")
    return await service_of(request).get_rules(principal_of(request), organisation_id)


@api.route(
    "PUT", "/api/v1/discharge/rules/{organisation_id}", summary="Set a region's clock rules (directory admins)",
    tags=TAGS, body=ClockRulesIn, response=ClockRulesOut, errors=(404,),
)  # fmt: skip
async def set_rules(request: web.Request, body: ClockRulesIn) -> ClockRulesOut:
    organisation_id = path_uuid(request, "organisation_id", "organisation")
    return await service_of(request).set_rules(principal_of(request), organisation_id, body)


@api.route(
    "GET", "/api/v1/discharge/statistics",
    summary="Monthly statistics per municipality and Stockholm district (no personal data, small cells suppressed)",
    tags=TAGS, query=StatisticsQuery, response=StatisticsOut,
)  # fmt: skip
async def statistics(request: web.Request, query: StatisticsQuery) -> StatisticsOut:
    return await service_of(request).statistics(principal_of(request), query.first_month, query.last_month)


@api.route(
    "GET", "/api/v1/discharge/statistics.csv", summary="The same statistics as CSV (semicolon-separated, UTF-8)",
    tags=TAGS, query=StatisticsQuery, content_type="text/csv",
)  # fmt: skip
async def statistics_csv(request: web.Request, query: StatisticsQuery) -> web.Response:
    out = await service_of(request).statistics(principal_of(request), query.first_month, query.last_month)
    cells = [stats.Cell(**item.model_dump(exclude={"municipality"})) for item in out.items]
    names = {item.municipality_code: item.municipality for item in out.items}
    response = web.Response(text=stats.to_csv(cells, names), content_type="text/csv", charset="utf-8")
    filename = f"utskrivning-{query.first_month}-{query.last_month}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
