"""Demo discharge cases for `make run`: three live cases on the demo units and a generated year of history."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.core.context import AppContext
from server.core.models import Unit
from server.core.principal import Principal
from server.discharge.models import DischargeCase
from server.discharge.schemas import CaseOpen, CaseUnitIn, MilestoneIn
from server.identity import store as identity_store

WARD, PRIMARY, HOME, MUNICIPAL = (
    "SE2321000016-7AV52",
    "SE2321000016-9VCNA",
    "SE2120003700-HTNACKA",
    "SE2120003700-HSLNACKA",
)
HISTORY = 5_000


async def seed_demo(ctx: AppContext) -> list[str]:
    from server.discharge.generate import generate_year
    from server.discharge.wiring import build_service
    from server.messaging.events import MESSAGING
    from server.messaging.wiring import build_service as build_messaging

    if ctx.find(MESSAGING) is None:  # `brygga seed-demo` runs without the app's lifecycle
        ctx.provide(MESSAGING, await build_messaging(ctx))
    service = build_service(ctx)
    async with ctx.db.transaction() as session:
        if await _count_cases(session):
            return [_summary(await _count_cases(session))]
        units = dict((await session.execute(select(Unit.hsa_id, Unit.id).where(Unit.hsa_id.in_(
            [WARD, PRIMARY, HOME, MUNICIPAL])))).all())  # fmt: skip
        nurse = await identity_store.get_user_by_login(session, "sjukskoterska")
        doctor = await identity_store.get_user_by_login(session, "lakare")
    if len(units) < 4 or nurse is None or doctor is None:
        return ["Discharge demo cases: skipped (demo units or users missing)."]
    ward = Principal(nurse.id, nurse.display_name, unit_roles={units[WARD]: "member"})
    primary = Principal(doctor.id, doctor.display_name, unit_roles={units[PRIMARY]: "member"})
    now = ctx.clock()
    involved = [
        CaseUnitIn(unit_id=units[PRIMARY], role="primary_care"),
        CaseUnitIn(unit_id=units[HOME], role="home_care"),
        CaseUnitIn(unit_id=units[MUNICIPAL], role="municipal_health_care"),
    ]

    def opening(ref: str, days_ago: float, district: str | None = None) -> CaseOpen:
        return CaseOpen(
            case_ref=ref, municipality_code="0182", district=district, age_band="65_plus",
            ward_unit_id=units[WARD], units=involved, admitted_at=now - timedelta(days=days_ago),
        )  # fmt: skip

    await service.open_case(ward, opening("SÖS-2026-0412", 0.3))
    ready = await service.open_case(ward, opening("SÖS-2026-0388", 6))
    await service.record_milestone(
        ward, ready.id, MilestoneIn(kind="ready_for_discharge", at=now - timedelta(days=4))
    )  # SIP not called within 3 days: overdue for primary care
    done = await service.open_case(ward, opening("SÖS-2026-0301", 9))
    await service.record_milestone(ward, done.id, MilestoneIn(kind="ready_for_discharge", at=now - timedelta(days=5)))
    await service.book_sip(
        primary, done.id, starts_at=now - timedelta(days=4), duration=timedelta(hours=1), unit_id=units[PRIMARY]
    )
    await service.record_milestone(ward, done.id, MilestoneIn(kind="discharged", at=now - timedelta(days=1)))
    history = generate_year(HISTORY, [units[WARD]], year=now.year - 1, prefix="HIST")
    async with ctx.db.transaction() as session:
        await service.import_cases(session, history)
        return [_summary(await _count_cases(session))]


async def _count_cases(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(DischargeCase))).scalar_one())


def _summary(cases: int) -> str:
    """The same line on every run, so that a second `seed-demo` prints what the first did (idempotent)."""
    return f"Discharge demo: {cases} cases (3 live on Avdelning 52, the rest generated for last year's statistics)."
