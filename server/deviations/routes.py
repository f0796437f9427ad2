"""HTTP: report a deviation, list and read reports, follow-up status and answer, statistics (JSON and CSV)."""

from __future__ import annotations

import csv
import io

from aiohttp import web

from server.core.api import ApiRouter, path_uuid
from server.core.context import Key, ctx_of
from server.deviations.schemas import (
    DeviationIn,
    DeviationList,
    DeviationOut,
    DeviationStatistics,
    DeviationStatisticsQuery,
    DeviationUpdate,
)
from server.deviations.service import DeviationService
from server.identity.authn import principal_of

api = ApiRouter()
DEVIATIONS: Key[DeviationService] = Key("deviations")  # the plugin starts the service and keeps it here
TAGS = ["deviations"]


def service_of(request: web.Request) -> DeviationService:
    return ctx_of(request).need(DEVIATIONS)


@api.route(
    "POST", "/api/v1/deviations", summary="Report a deviation in the discharge process (no personal data)",
    tags=TAGS, body=DeviationIn, response=DeviationOut, status=201, errors=(422,),
)  # fmt: skip
async def report_deviation(request: web.Request, body: DeviationIn) -> DeviationOut:
    return await service_of(request).report(principal_of(request), body)


@api.route(
    "GET", "/api/v1/deviations", summary="Deviation reports: the follow-up sees all, a reporter their own",
    tags=TAGS, response=DeviationList,
)  # fmt: skip
async def list_deviations(request: web.Request) -> DeviationList:
    return DeviationList(items=await service_of(request).list_reports(principal_of(request)))


@api.route(
    "GET", "/api/v1/deviations/statistics", summary="Deviations per category and month (follow-up)", tags=TAGS,
    query=DeviationStatisticsQuery, response=DeviationStatistics,
)  # fmt: skip
async def deviation_statistics(request: web.Request, query: DeviationStatisticsQuery) -> DeviationStatistics:
    return await service_of(request).statistics(principal_of(request), query.first_month, query.last_month)


@api.route(
    "GET", "/api/v1/deviations/statistics.csv", summary="The same statistics as CSV (semicolon-separated, UTF-8)",
    tags=TAGS, query=DeviationStatisticsQuery, content_type="text/csv",
)  # fmt: skip
async def deviation_statistics_csv(request: web.Request, query: DeviationStatisticsQuery) -> web.Response:
    result = await service_of(request).statistics(principal_of(request), query.first_month, query.last_month)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(["month", "category", "reports"])
    writer.writerows([item.month, item.category, item.reports] for item in result.items)
    response = web.Response(text=buffer.getvalue(), content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="avvikelser.csv"'
    return response


# Only UUID-like ids match, so that /deviations/statistics(.csv) answers 405 with its own Allow header.
REPORT = "/api/v1/deviations/{deviation_id:[0-9a-fA-F-]+}"


@api.route(
    "GET", REPORT, summary="One deviation report", tags=TAGS, response=DeviationOut, errors=(404,),
)  # fmt: skip
async def get_deviation(request: web.Request) -> DeviationOut:
    return await service_of(request).get_report(principal_of(request), path_uuid(request, "deviation_id", "deviation"))


@api.route(
    "PATCH", REPORT, summary="Set status and answer the reporter (follow-up)",
    tags=TAGS, body=DeviationUpdate, response=DeviationOut, errors=(404, 422),
)  # fmt: skip
async def update_deviation(request: web.Request, body: DeviationUpdate) -> DeviationOut:
    deviation_id = path_uuid(request, "deviation_id", "deviation")
    return await service_of(request).update(principal_of(request), deviation_id, body)
