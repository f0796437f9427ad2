"""Auditor API: export the access log for a case reference or a user, as JSON pages or CSV.

The filter travels in the POST body, never in the URL, so case references stay out of proxy logs.
"""

from __future__ import annotations

import csv
import io
import uuid

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, RootModel

from server.audit import service
from server.audit.service import AccessLogEntry
from server.core.api import ApiRouter, JsonInt
from server.core.context import ctx_of
from server.core.http import client_address
from server.identity.authn import principal_of

api = ApiRouter()


class _Page(BaseModel):
    model_config = ConfigDict(extra="forbid")

    after_seq: JsonInt = Field(default=0, ge=0, le=2**62, description="Cursor: `next_after_seq` of the previous page.")
    limit: JsonInt = Field(default=100, ge=1, le=1000)


class CaseFilter(_Page):
    case_ref: str = Field(min_length=1, max_length=80, description="Patient case reference.")


class UserFilter(_Page):
    user_id: uuid.UUID = Field(description="The acting user.")


class AccessLogQuery(RootModel[CaseFilter | UserFilter]):
    """Either `{"case_ref": ...}` or `{"user_id": ...}`, plus optional `after_seq` and `limit`."""


class AccessLogPage(BaseModel):
    items: list[AccessLogEntry]
    next_after_seq: int | None = Field(description="Pass as `after_seq` for the next page; null at the end.")


async def _page(request: web.Request, body: AccessLogQuery, export_format: str) -> service.AccessLogPage:
    query = body.root
    return await service.export_access_log(
        ctx_of(request).db,
        principal_of(request),
        case_ref=query.case_ref if isinstance(query, CaseFilter) else None,
        user_id=query.user_id if isinstance(query, UserFilter) else None,
        after_seq=query.after_seq,
        limit=query.limit,
        export_format=export_format,
        ip=client_address(request),
    )


@api.route(
    "POST",
    "/api/v1/audit/access-log",
    summary="Access log for a case reference or a user (auditors; the read itself is logged)",
    tags=["audit"],
    body=AccessLogQuery,
    response=AccessLogPage,
)
async def export_access_log(request: web.Request, body: AccessLogQuery) -> AccessLogPage:
    page = await _page(request, body, "json")
    return AccessLogPage(items=page.items, next_after_seq=page.next_after_seq)


CSV_COLUMNS = list(AccessLogEntry.model_fields)


@api.route(
    "POST",
    "/api/v1/audit/access-log.csv",
    summary="The same access log page as CSV; the next cursor is in the Brygga-Next-After-Seq header",
    tags=["audit"],
    body=AccessLogQuery,
    content_type="text/csv",
)
async def export_access_log_csv(request: web.Request, body: AccessLogQuery) -> web.Response:
    page = await _page(request, body, "csv")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for item in page.items:
        values = item.model_dump()
        writer.writerow(["" if values[name] is None else _csv_safe(str(values[name])) for name in CSV_COLUMNS])
    response = web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="access-log.csv"'
    if page.next_after_seq is not None:
        response.headers["Brygga-Next-After-Seq"] = str(page.next_after_seq)
    return response


def _csv_safe(value: str) -> str:
    """Neutralise spreadsheet formula injection (=, +, -, @ at the start of a cell)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
