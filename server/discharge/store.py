"""SQL for discharge cases, their units, milestones, escalations, clock rules and statistics."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, case, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.models import Organisation, Unit
from server.discharge.models import CaseUnit, ClockEscalation, ClockRules, DischargeCase, Milestone


async def get_case(session: AsyncSession, case_id: uuid.UUID) -> DischargeCase | None:
    return await session.get(DischargeCase, case_id)


async def case_ref_taken(session: AsyncSession, case_ref_hmac: str) -> bool:
    found = await session.execute(select(DischargeCase.id).where(DischargeCase.case_ref_hmac == case_ref_hmac))
    return found.first() is not None


async def case_units(session: AsyncSession, case_ids: Iterable[uuid.UUID]) -> list[CaseUnit]:
    rows = await session.execute(select(CaseUnit).where(CaseUnit.case_id.in_(list(case_ids))))
    return list(rows.scalars())


async def milestones(session: AsyncSession, case_ids: Iterable[uuid.UUID]) -> list[Milestone]:
    query = select(Milestone).where(Milestone.case_id.in_(list(case_ids))).order_by(Milestone.recorded_at)
    return list((await session.execute(query)).scalars())


async def escalations(session: AsyncSession, case_ids: Iterable[uuid.UUID]) -> list[ClockEscalation]:
    query = select(ClockEscalation).where(ClockEscalation.case_id.in_(list(case_ids))).order_by(ClockEscalation.at)
    return list((await session.execute(query)).scalars())


async def open_cases_of_unit(session: AsyncSession, unit_id: uuid.UUID, since: datetime) -> list[DischargeCase]:
    """Cases where the unit is the ward or involved, not discharged before `since`."""
    involved = select(CaseUnit.case_id).where(CaseUnit.unit_id == unit_id)
    query = (
        select(DischargeCase)
        .where(
            or_(DischargeCase.ward_unit_id == unit_id, DischargeCase.id.in_(involved)),
            or_(DischargeCase.discharged_at.is_(None), DischargeCase.discharged_at >= since),
        )
        .order_by(DischargeCase.admitted_at.desc())
        .limit(500)
    )
    return list((await session.execute(query)).scalars())


async def unit_info(
    session: AsyncSession, unit_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, str, uuid.UUID]]:
    """unit id -> (unit name, organisation name, organisation id)."""
    ids = list(set(unit_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(Unit.id, Unit.name, Organisation.name, Organisation.id)
        .join(Organisation, Organisation.id == Unit.organisation_id)
        .where(Unit.id.in_(ids), Unit.deleted_at.is_(None))
    )
    return {unit_id: (unit, organisation, org_id) for unit_id, unit, organisation, org_id in rows.all()}


async def open_cases_of_organisation(session: AsyncSession, organisation_id: uuid.UUID) -> list[DischargeCase]:
    """Cases not yet discharged whose ward belongs to the organisation (whose clock rules apply to them)."""
    rows = await session.execute(
        select(DischargeCase)
        .join(Unit, Unit.id == DischargeCase.ward_unit_id)
        .where(Unit.organisation_id == organisation_id, DischargeCase.discharged_at.is_(None))
    )
    return list(rows.scalars())


async def rules_of(session: AsyncSession, organisation_id: uuid.UUID) -> ClockRules | None:
    return await session.get(ClockRules, organisation_id)


async def earlier_discharge(session: AsyncSession, patient_key: str, before: datetime) -> DischargeCase | None:
    """The patient's latest case discharged at or before `before`."""
    query = (
        select(DischargeCase)
        .where(
            DischargeCase.patient_key == patient_key,
            DischargeCase.discharged_at.is_not(None),
            DischargeCase.discharged_at <= before,
        )
        .order_by(DischargeCase.discharged_at.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def later_unplanned_admission(session: AsyncSession, patient_key: str, after: datetime, until: datetime) -> bool:
    query = select(DischargeCase.id).where(
        DischargeCase.patient_key == patient_key,
        DischargeCase.unplanned.is_(True),
        DischargeCase.admitted_at > after,
        DischargeCase.admitted_at <= until,
    )
    return (await session.execute(query.limit(1))).first() is not None


async def insert_cases(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Bulk load (historical import, bench): rows are complete `discharge_cases` columns (case_ref sealed)."""
    for start in range(0, len(rows), 5000):
        table = DischargeCase.__table__
        await session.execute(insert(table), list(rows[start : start + 5000]))  # type: ignore[arg-type]


async def mark_readmitted(session: AsyncSession, case_ids: Sequence[uuid.UUID]) -> None:
    for start in range(0, len(case_ids), 500):
        chunk = list(case_ids[start : start + 500])
        await session.execute(update(DischargeCase).where(DischargeCase.id.in_(chunk)).values(readmitted_7d=True))


async def monthly(session: AsyncSession, first_month: str, last_month: str) -> list[Row[Any]]:
    """(month, municipality, district, cases, ready days, payment days, discharges 65+, readmissions 65+)."""
    older = DischargeCase.age_band == "65_plus"
    query = (
        select(
            DischargeCase.discharge_month,
            DischargeCase.municipality_code,
            DischargeCase.district,
            func.count(),
            func.sum(DischargeCase.ready_days),
            func.sum(DischargeCase.payment_days),
            func.sum(case((older, 1), else_=0)),
            func.sum(case((and_(older, DischargeCase.readmitted_7d), 1), else_=0)),
        )
        .where(DischargeCase.discharge_month >= first_month, DischargeCase.discharge_month <= last_month)
        .group_by(DischargeCase.discharge_month, DischargeCase.municipality_code, DischargeCase.district)
    )
    return list((await session.execute(query)).all())


async def organisation_exists(session: AsyncSession, organisation_id: uuid.UUID) -> bool:
    return (
        await session.execute(select(Organisation.id).where(Organisation.id == organisation_id))
    ).first() is not None
