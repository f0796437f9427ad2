"""Deviation rules: who reports, who follows up, and that no personal data gets in.

A report holds no case reference and no patient data: free text (and the follow-up's answer) with a
personal identity number, or with a phone number or e-mail address other than the reporter's own, is
refused with a message saying what to remove. Patient-specific deviations belong in each
organisation's own routine (seed 000).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from server.audit.service import record
from server.core.db import Database
from server.core.errors import NotFound, Problem
from server.core.policy import allowed, require, rule
from server.core.principal import Principal
from server.deviations import store
from server.deviations.models import DeviationReport
from server.deviations.pii import personal_data_in
from server.deviations.schemas import (
    DeviationCount,
    DeviationIn,
    DeviationOut,
    DeviationStatistics,
    DeviationUpdate,
)

WHAT = {
    "personal_number": "a personal identity or coordination number",
    "phone": "a phone number that is not your own",
    "email": "an e-mail address that is not your own",
}
FIELD_NAMES = {"text": "the description", "answer": "the answer", "reporter_name": "your name"}


@rule("deviation.report")
def _report(principal: Principal, _obj: Any) -> bool:
    return not principal.is_guest


@rule("deviation.follow_up")
def _follow_up(principal: Principal, _obj: Any) -> bool:
    return principal.has_role("followup")


@rule("deviation.view")
def _view(principal: Principal, report: Any) -> bool:
    return _follow_up(principal, report) or (
        isinstance(report, DeviationReport) and report.reporter_user_id == principal.user_id
    )


def refuse_personal_data(field: str, text: str, own_phone: str | None, own_email: str | None) -> None:
    found = personal_data_in(text, own_phone, own_email)
    if found:
        kinds = " and ".join(WHAT[kind] for kind in found)
        raise Problem(
            "personal_data_not_allowed",
            f"Remove {kinds} from {FIELD_NAMES[field]} and send again. A deviation report may hold no personal "
            "data other than your own contact details; report patient-specific deviations through your own "
            "organisation's routine.",
            status=422,
            errors=[{"field": field, "kinds": found}],
        )


def month_bounds(first_month: str, last_month: str) -> tuple[date, date]:
    first = date.fromisoformat(first_month + "-01")
    year, month = int(last_month[:4]), int(last_month[5:])
    end = date(year + month // 12, month % 12 + 1, 1)
    if first >= end:
        raise Problem("bad_period", "first_month must not be after last_month.", status=422)
    return first, end


class DeviationService:
    def __init__(self, db: Database, *, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    async def report(self, principal: Principal, body: DeviationIn) -> DeviationOut:
        require(principal, "deviation.report", detail="Sign in as staff to report a deviation.")
        if body.reporter_unit_id is not None and not principal.is_member_of(body.reporter_unit_id):
            raise Problem("not_your_unit", "Report for one of your own units, or leave the unit out.", status=422)
        for field, value in (("text", body.text), ("reporter_name", principal.display_name)):
            refuse_personal_data(field, value, body.reporter_phone, body.reporter_email)
        now = self.clock()
        async with self.db.transaction() as session:
            if await store.missing_references(session, body.organisation_ids, body.unit_ids, body.route_id):
                raise Problem(
                    "unknown_reference", "An organisation, unit or contact route named does not exist.", status=422
                )
            report = DeviationReport(
                id=uuid.uuid4(), reporter_user_id=principal.user_id, reporter_unit_id=body.reporter_unit_id,
                reporter_name=principal.display_name, reporter_phone=body.reporter_phone,
                reporter_email=body.reporter_email, category=body.category, occurred_on=body.occurred_on,
                organisation_ids=[str(o) for o in body.organisation_ids], unit_ids=[str(u) for u in body.unit_ids],
                route_id=body.route_id, text=body.text, status="inskickad", created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(report)
            await session.flush()
            await record(
                session, actor=principal, action="deviation.report", object_type="deviation", object_id=report.id,
                unit_id=body.reporter_unit_id, details={"category": body.category},
            )  # fmt: skip
            return out(report, principal)

    async def list_reports(self, principal: Principal) -> list[DeviationOut]:
        follow_up = allowed(principal, "deviation.follow_up")
        async with self.db.transaction() as session:
            found = await store.reports(session, None if follow_up else principal.user_id)
            await record(
                session, actor=principal, action="deviation.list", object_type="deviation",
                details={"scope": "all" if follow_up else "own", "rows": len(found)},
            )  # fmt: skip
        return [out(report, principal) for report in found]

    async def get_report(self, principal: Principal, report_id: uuid.UUID) -> DeviationOut:
        async with self.db.transaction() as session:
            report = await self._visible(session, principal, report_id)
            await record(
                session, actor=principal, action="deviation.read", object_type="deviation", object_id=report_id
            )
            return out(report, principal)

    async def update(self, principal: Principal, report_id: uuid.UUID, body: DeviationUpdate) -> DeviationOut:
        async with self.db.transaction() as session:
            report = await self._visible(session, principal, report_id)
            require(principal, "deviation.follow_up", report, detail="Only the regional follow-up sets status.")
            if body.answer is not None:
                refuse_personal_data("answer", body.answer, None, None)
                report.answer = body.answer
                report.answered_by_user_id = principal.user_id
                report.answered_at = self.clock()
            if body.status is not None:
                report.status = body.status
            report.updated_at = self.clock()
            await record(
                session, actor=principal, action="deviation.update", object_type="deviation", object_id=report_id,
                details={"status": report.status, "answered": body.answer is not None},
            )  # fmt: skip
            return out(report, principal)

    async def _visible(self, session: Any, principal: Principal, report_id: uuid.UUID) -> DeviationReport:
        report = await session.get(DeviationReport, report_id)
        if report is None or not allowed(principal, "deviation.view", report):
            await record(
                session, actor=principal, action="deviation.read", object_type="deviation", object_id=report_id,
                outcome="denied",
            )  # fmt: skip
            raise NotFound("deviation")
        assert isinstance(report, DeviationReport)
        return report

    async def statistics(self, principal: Principal, first_month: str, last_month: str) -> DeviationStatistics:
        require(principal, "deviation.follow_up", detail="Only the regional follow-up sees the statistics.")
        first, end = month_bounds(first_month, last_month)
        async with self.db.transaction() as session:
            rows = await store.counts(session, first, end)
        return DeviationStatistics(
            first_month=first_month,
            last_month=last_month,
            items=[DeviationCount(month=f"{y:04d}-{m:02d}", category=c, reports=n) for y, m, c, n in rows],
        )


def out(report: DeviationReport, principal: Principal) -> DeviationOut:
    return DeviationOut(
        id=report.id, category=report.category, occurred_on=report.occurred_on, text=report.text,
        organisation_ids=[uuid.UUID(o) for o in report.organisation_ids],
        unit_ids=[uuid.UUID(u) for u in report.unit_ids], route_id=report.route_id,
        reporter_name=report.reporter_name, reporter_unit_id=report.reporter_unit_id,
        reporter_phone=report.reporter_phone, reporter_email=report.reporter_email, status=report.status,
        answer=report.answer, answered_at=report.answered_at, created_at=report.created_at,
        mine=report.reporter_user_id == principal.user_id,
    )  # fmt: skip
