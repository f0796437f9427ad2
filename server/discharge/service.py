"""Discharge rules: cases, typed milestones, clocks and their escalation, SIP booking, statistics.

Framework-free (no aiohttp/socket.io types). Each public method authorises per object, runs in one
transaction and writes its audit rows there. Milestones are structured messages in the case thread,
posted through the `CaseMessaging` port, and acknowledged by the receiving units as in messaging.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from server.audit.service import record
from server.core.calendar import STOCKHOLM, AlwaysOpen, UnitCalendar
from server.core.db import Database
from server.core.deadlines import DeadlineEngine, Timer
from server.core.errors import Conflict, Forbidden, NotFound, Problem
from server.core.models import Deadline
from server.core.policy import allowed, require, rule
from server.core.ports import CaseMessaging
from server.core.principal import Principal
from server.core.sealed_columns import sealer_of
from server.directory.text import MUNICIPALITIES
from server.discharge import clocks, stats, store
from server.discharge.models import CaseUnit, ClockEscalation, ClockRules, DischargeCase, Milestone
from server.discharge.pseudonym import Pseudonyms
from server.discharge.schemas import (
    CaseClockOut,
    CaseOpen,
    CaseOut,
    CaseUnitOut,
    ClockEscalationOut,
    ClockRulesIn,
    ClockRulesOut,
    MilestoneAck,
    MilestoneIn,
    MilestoneOut,
    SipBooked,
    StatisticsCell,
    StatisticsOut,
    View,
)
from server.messaging.conversations import check_metadata
from server.video import service as video

WARD_KINDS = frozenset(
    {"admission_notice", "planning_started", "ready_for_discharge", "discharged", "interrupted", "readmission"}
)
PARTNER_KINDS = frozenset({"sip_called", "sip_held"})
TEXTS = {
    "admission_notice": "Inskrivningsmeddelande: patienten skrevs in {at}. Planeringen inför utskrivning påbörjas.",
    "planning_started": "Planering påbörjad {at}.",
    "ready_for_discharge": "Utskrivningsklar: patienten bedöms utskrivningsklar från {at}.",
    "sip_called": "Kallelse till SIP: mötet hålls {at}.",
    "sip_held": "SIP hållen {at}.",
    "discharged": "Utskrivningsmeddelande: patienten skrivs ut till hemmet {at}.",
    "interrupted": "Avbrott: utskrivningsklar återtagen {at}. Planeringen fortsätter.",
    "readmission": "Återinskrivning: patienten har skrivits in på nytt {at}.",
}
CLOCK_TEXTS = {
    "admission_notice": "Inskrivningsmeddelandet har inte skickats inom tidsgränsen ({due}).",
    "sip_call": "Kallelse till SIP saknas: tidsgränsen ({due}) har passerats.",
    "payment": "Kommunens betalningsansvar gäller från {due}.",
}
SIDE_OF_ROLE = {"ward": "ward", "primary_care": "primary_care"}  # other roles: municipality
RECENT = timedelta(days=7)  # discharged cases stay in the unit's list this long
READMISSION_WINDOW = timedelta(days=7)
# Nullable columns of a case that an import record may leave out.
COLUMN_DEFAULTS: dict[str, Any] = dict.fromkeys(
    ("district", "conversation_id", "patient_key", "admission_notice_at", "planning_started_at", "ready_at",
     "sip_called_at", "sip_held_at", "payment_from", "discharged_at", "discharge_month", "created_by_user_id")
)  # fmt: skip


def side_of(role: str) -> str:
    return SIDE_OF_ROLE.get(role, "municipality")


def stamp(at: datetime) -> str:
    return at.astimezone(STOCKHOLM).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class CaseAccess:
    """A case and the units in it: the object of the discharge.* rules."""

    case: DischargeCase
    roles: dict[uuid.UUID, str]  # unit id -> ward | home_care | ... (the ward included)

    def unit_of(self, principal: Principal) -> list[uuid.UUID]:
        return sorted((u for u in self.roles if principal.is_member_of(u)), key=str)

    def units_on(self, side: str) -> list[uuid.UUID]:
        """The units that must act when a clock of `side` (ward | primary_care | municipality) runs."""
        return sorted((u for u, r in self.roles.items() if side_of(r) == side), key=str)


# --- policy -------------------------------------------------------------------------------------


@rule("discharge.case.create")
def _create(principal: Principal, ward_unit_id: Any) -> bool:
    return not principal.is_guest and principal.is_member_of(ward_unit_id)


@rule("discharge.case.view")
def _view(principal: Principal, access: Any) -> bool:
    return isinstance(access, CaseAccess) and bool(access.unit_of(principal))


@rule("discharge.milestone.ward")
def _ward_milestone(principal: Principal, access: Any) -> bool:
    return isinstance(access, CaseAccess) and principal.is_member_of(access.case.ward_unit_id)


@rule("discharge.milestone.partner")
def _partner_milestone(principal: Principal, access: Any) -> bool:
    """SIP milestones (and booking the SIP): any unit of the case; the region's primary care usually."""
    return _view(principal, access)


@rule("discharge.rules.manage")
def _manage_rules(principal: Principal, _obj: Any) -> bool:
    return principal.has_role("directory_admin")


@rule("discharge.statistics.read")
def _statistics(principal: Principal, _obj: Any) -> bool:
    return not principal.is_guest


# --- the service --------------------------------------------------------------------------------


class DischargeService:
    def __init__(
        self,
        db: Database,
        threads: CaseMessaging,
        pseudonyms: Pseudonyms,
        *,
        clock: Callable[[], datetime],
        deadlines: DeadlineEngine,
        calendar: Callable[[], UnitCalendar] = AlwaysOpen,
        min_cell: int = 5,
    ) -> None:
        self.db = db
        self.threads = threads
        self.pseudonyms = pseudonyms
        self.clock = clock
        self.deadlines = deadlines
        self.calendar = calendar
        self.min_cell = min_cell

    # ------------------------------------------------------------------------------ access

    async def _load(self, session: AsyncSession, case_id: uuid.UUID) -> CaseAccess | None:
        case = await store.get_case(session, case_id)
        if case is None:
            return None
        roles = {u.unit_id: u.role for u in await store.case_units(session, [case_id])}
        roles[case.ward_unit_id] = "ward"
        return CaseAccess(case, roles)

    async def _visible(
        self, session: AsyncSession, principal: Principal, case_id: uuid.UUID, action: str
    ) -> CaseAccess:
        """The case if the caller may see it; otherwise an audited denial and the same 404 as unknown."""
        access = await self._load(session, case_id)
        if access is None or not allowed(principal, "discharge.case.view", access):
            await record(
                session, actor=principal, action=action, object_type="discharge_case", object_id=case_id,
                outcome="denied",
            )  # fmt: skip
            raise NotFound("case")
        return access

    async def _rules(self, session: AsyncSession, ward_unit_id: uuid.UUID) -> clocks.Rules:
        info = await store.unit_info(session, [ward_unit_id])
        if ward_unit_id not in info:
            return clocks.DEFAULT_RULES
        found = await store.rules_of(session, info[ward_unit_id][2])
        return clocks.DEFAULT_RULES if found is None else _rules_of(found)

    # ------------------------------------------------------------------------------ cases

    async def open_case(self, principal: Principal, body: CaseOpen) -> CaseOut:
        require(principal, "discharge.case.create", body.ward_unit_id, detail="Open cases only for your own ward.")
        check_metadata(body.case_ref, body.case_ref)
        if body.municipality_code not in MUNICIPALITIES:
            raise Problem(
                "unknown_municipality", "Give one of the 26 municipality codes of Stockholm County.", status=422
            )
        district = body.district if body.municipality_code == stats.STOCKHOLM_CITY else None
        if body.district is not None and district not in stats.DISTRICTS:
            raise Problem(
                "unknown_district",
                "A district is given only for Stockholm city, as one of its 13 districts.",
                status=422,
            )
        roles = {u.unit_id: u.role for u in body.units if u.unit_id != body.ward_unit_id}
        if not roles:
            raise Problem(
                "no_units", "Name at least one unit besides the ward (home care, primary care, ...).", status=422
            )
        patient_key = self.pseudonyms.patient_key(body.personal_number) if body.personal_number else None
        now = self.clock()
        async with self.db.transaction() as session:
            if await store.case_ref_taken(session, sealer_of(self.db).blind_index(body.case_ref)):
                raise Conflict("case_exists", "A case with this reference exists already; open that one.")
            info = await store.unit_info(session, [body.ward_unit_id, *roles])
            if len(info) != len(roles) + 1:
                raise Problem("unknown_unit", "A unit of the case does not exist; check the unit ids.", status=422)
            conversation_id = await self.threads.open_case_thread(
                session, principal, subject=f"Utskrivning {body.case_ref}", case_ref=body.case_ref,
                from_unit_id=body.ward_unit_id, unit_ids=roles,
            )  # fmt: skip
            case = DischargeCase(
                id=uuid.uuid4(), case_ref=body.case_ref, municipality_code=body.municipality_code, district=district,
                age_band=body.age_band, ward_unit_id=body.ward_unit_id, conversation_id=conversation_id,
                status="admitted", unplanned=body.unplanned, patient_key=patient_key, admitted_at=body.admitted_at,
                created_by_user_id=principal.user_id, created_at=now, ready_days=0, payment_days=0,
                readmitted_7d=False, version=1,
            )  # fmt: skip
            session.add(case)
            await session.flush()
            session.add_all(CaseUnit(case_id=case.id, unit_id=u, role=r) for u, r in roles.items())
            await session.flush()
            if patient_key is not None and body.unplanned:
                earlier = await store.earlier_discharge(session, patient_key, body.admitted_at)
                if earlier is not None and body.admitted_at - earlier.discharged_at <= READMISSION_WINDOW:  # type: ignore[operator]
                    earlier.readmitted_7d = True
            await record(
                session, actor=principal, action="discharge.case.create", object_type="discharge_case",
                object_id=case.id, unit_id=body.ward_unit_id, case_ref=case.case_ref,
            )  # fmt: skip
            access = CaseAccess(case, {**roles, body.ward_unit_id: "ward"})
            if body.send_admission_notice:
                await self._milestone(session, principal, access, "admission_notice", now, body.ward_unit_id)
            await self._time_clocks(session, access, "opened", await self._rules(session, body.ward_unit_id))
            return await self._out(session, principal, access)

    async def get_case(self, principal: Principal, case_id: uuid.UUID) -> CaseOut:
        async with self.db.transaction() as session:
            access = await self._visible(session, principal, case_id, "discharge.case.read")
            await record(
                session, actor=principal, action="discharge.case.read", object_type="discharge_case",
                object_id=case_id, unit_id=access.unit_of(principal)[0], case_ref=access.case.case_ref,
            )  # fmt: skip
            return await self._out(session, principal, access)

    async def list_cases(self, principal: Principal, unit_id: uuid.UUID, view: View) -> list[CaseOut]:
        require(principal, "unit.act_for", unit_id, detail="You can only list the cases of units you belong to.")
        now = self.clock()
        async with self.db.transaction() as session:
            cases = await store.open_cases_of_unit(session, unit_id, now - RECENT)
            units = await store.case_units(session, [c.id for c in cases])
            roles: dict[uuid.UUID, dict[uuid.UUID, str]] = {c.id: {c.ward_unit_id: "ward"} for c in cases}
            for unit in units:
                roles[unit.case_id][unit.unit_id] = unit.role
            outs = [await self._out(session, principal, CaseAccess(c, roles[c.id])) for c in cases]
            await record(
                session, actor=principal, action="discharge.case.list", object_type="unit", object_id=unit_id,
                unit_id=unit_id, details={"view": view, "cases": len(outs)},
            )  # fmt: skip
        today = clocks.local_date(now)
        result = []
        for out, case in zip(outs, cases, strict=True):
            side = side_of(roles[case.id][unit_id])
            if view == "mine" or _matches(out, unit_id, side, view, now, today):
                result.append(out)
        return result

    # ------------------------------------------------------------------------------ milestones

    async def record_milestone(self, principal: Principal, case_id: uuid.UUID, body: MilestoneIn) -> CaseOut:
        now = self.clock()
        async with self.db.transaction() as session:
            access = await self._visible(session, principal, case_id, "discharge.milestone.record")
            kind_rule = "discharge.milestone.ward" if body.kind in WARD_KINDS else "discharge.milestone.partner"
            require(principal, kind_rule, access, detail="Only the ward sends this notice.")
            unit_id = self._sending_unit(principal, access, body.unit_id, kind_rule)
            await self._milestone(session, principal, access, body.kind, body.at or now, unit_id)
            return await self._out(session, principal, access)

    def _sending_unit(
        self, principal: Principal, access: CaseAccess, unit_id: uuid.UUID | None, kind_rule: str
    ) -> uuid.UUID:
        if kind_rule == "discharge.milestone.ward":
            return access.case.ward_unit_id
        mine = access.unit_of(principal)
        if unit_id is not None:
            if unit_id not in mine:
                raise Forbidden("Send for one of your units in this case.")
            return unit_id
        return mine[0]

    async def _milestone(
        self, session: AsyncSession, principal: Principal, access: CaseAccess, kind: str, at: datetime,
        unit_id: uuid.UUID, meeting_id: uuid.UUID | None = None,
    ) -> Milestone:  # fmt: skip
        case = access.case
        now = self.clock()
        rules = await self._rules(session, case.ward_unit_id)
        self._apply(case, kind, at, now, rules)
        await self._time_clocks(session, access, kind, rules)
        text = f"Ärende {case.case_ref}: " + TEXTS[kind].format(at=stamp(at))
        milestone = Milestone(
            id=uuid.uuid4(), case_id=case.id, kind=kind, effective_at=at, recorded_at=now,
            by_user_id=principal.user_id, by_unit_id=unit_id, meeting_id=meeting_id,
        )  # fmt: skip
        if case.conversation_id is not None:
            data = {"case_id": str(case.id), "milestone": kind, "at": at.isoformat(), "text": text}
            if meeting_id is not None:
                data["meeting_id"] = str(meeting_id)
                data["join_path"] = f"/meeting#meeting={meeting_id}"
            milestone.message_id = await self.threads.post_system_notice(
                session, case.conversation_id, f"discharge.{kind}", data, sender=principal, sender_unit_id=unit_id,
                ack_unit_ids=[u for u in access.roles if u != unit_id],
            )  # fmt: skip
        session.add(milestone)
        case.version += 1
        await session.flush()
        await record(
            session, actor=principal, action="discharge.milestone.record", object_type="discharge_case",
            object_id=case.id, unit_id=unit_id, case_ref=case.case_ref, details={"kind": kind},
        )  # fmt: skip
        return milestone

    @staticmethod
    def _apply(case: DischargeCase, kind: str, at: datetime, now: datetime, rules: clocks.Rules) -> None:
        """The case's state after a milestone; refuses what the process does not allow."""
        if case.status == "discharged" and kind not in ("readmission",):
            raise Conflict("case_discharged", "The patient has been discharged; open a new case for a new admission.")
        if kind == "admission_notice":
            if case.admission_notice_at is not None:
                raise Conflict("already_sent", "The admission notice was sent already.")
            case.admission_notice_at = now
        elif kind == "planning_started":
            case.planning_started_at = at
        elif kind == "ready_for_discharge":
            case.ready_at = at
            case.status = "ready"
            case.payment_from = clocks.payment_start(rules, at, case.admission_notice_at)
        elif kind == "sip_called":
            case.sip_called_at = now
        elif kind == "sip_held":
            case.sip_held_at = at
        elif kind == "interrupted":
            if case.ready_at is None:
                raise Conflict("not_ready", "The patient is not ready for discharge; there is nothing to withdraw.")
            case.ready_at = case.payment_from = case.sip_called_at = None
            case.status = "admitted"
        elif kind == "discharged":
            if case.ready_at is None:
                raise Conflict("not_ready", "Send 'utskrivningsklar' before the discharge notice.")
            derive_discharge(case, at)

    # ------------------------------------------------------------------------------ SIP

    async def book_sip(
        self, principal: Principal, case_id: uuid.UUID, *, starts_at: datetime, duration: timedelta,
        unit_id: uuid.UUID | None,
    ) -> SipBooked:  # fmt: skip
        now = self.clock()
        async with self.db.transaction() as session:
            access = await self._visible(session, principal, case_id, "discharge.sip.book")
            require(principal, "discharge.milestone.partner", access)
            organiser = self._sending_unit(principal, access, unit_id, "discharge.milestone.partner")
            meeting = await video.create_meeting(
                session, principal, title=f"SIP {access.case.case_ref}", starts_at=starts_at, duration=duration,
                organiser_unit_id=organiser, unit_ids=[u for u in access.roles if u != organiser], user_ids=[],
                conversation_id=access.case.conversation_id, now=now,
            )  # fmt: skip
            await self._milestone(session, principal, access, "sip_called", starts_at, organiser, meeting.id)
            out = await self._out(session, principal, access)
        return SipBooked(case=out, meeting_id=meeting.id, join_path=f"/meeting#meeting={meeting.id}")

    # ------------------------------------------------------------------------------ clocks

    async def _time_clocks(self, session: AsyncSession, access: CaseAccess, event: str, rules: clocks.Rules) -> None:
        """Start and stop the case's clock timers on the deadline engine as the milestone `event` says."""
        started, stopped = clocks.STARTS.get(event, ()), clocks.STOPS.get(event, ())
        case = access.case
        await self.deadlines.cancel(session, [clocks.KINDS[c] for c in (*started, *stopped)], [case.id])
        timers = [
            Timer(clocks.KINDS[c.clock], case.id, c.due_at, unit_id=next(iter(access.units_on(c.side)), None))
            for c in self._clocks(case, rules)
            if c.clock in started and c.done_at is None
        ]
        await self.deadlines.schedule(session, timers)

    async def fire_clock(self, session: AsyncSession, deadline: Deadline, now: datetime) -> None:
        """A clock's timer fell due (the deadline engine calls this in its transaction): if the clock is still
        missed, escalate to the `level`-th contact route of the responsible side and time the next level."""
        clock, level = clocks.CLOCK_OF_KIND[deadline.kind], deadline.level
        access = await self._load(session, uuid.UUID(deadline.reference))
        if access is None:
            return
        case = access.case
        rules = await self._rules(session, case.ward_unit_id)
        state = next((c for c in self._clocks(case, rules) if c.clock == clock), None)
        if state is None or state.state(now) not in ("missed", "active"):
            return
        units = access.units_on(state.side)
        if not units:
            return
        unit_id = units[0]
        routes = await self.calendar().escalation_routes(unit_id, now)
        route = routes[min(level, len(routes)) - 1] if routes else None
        session.add(
            ClockEscalation(
                id=uuid.uuid4(), case_id=case.id, clock=clock, level=level, unit_id=unit_id, at=now,
                route={"label": route.label, "value": route.value, "channel": route.channel} if route else None,
            )
        )  # fmt: skip
        text = f"Ärende {case.case_ref}: " + CLOCK_TEXTS[clock].format(due=stamp(state.due_at))
        if route is not None:
            text += f" Eskalerat till {route.label} ({route.value})."
        if case.conversation_id is not None:
            await self.threads.post_system_notice(
                session, case.conversation_id, f"discharge.clock.{clock}",
                {"case_id": str(case.id), "clock": clock, "level": level, "text": text},
                ack_unit_ids=[] if clock == "payment" else units,
            )  # fmt: skip
        await record(
            session, actor=None, action="discharge.clock.escalate", object_type="discharge_case",
            object_id=case.id, unit_id=unit_id, case_ref=case.case_ref, details={"clock": clock, "level": level},
        )  # fmt: skip
        if clock == "payment" or level >= len(routes):
            return
        due = await self.deadlines.due_after_open(unit_id, now, timedelta(minutes=rules.escalation_minutes))
        await self.deadlines.schedule(
            session, [Timer(clocks.KINDS[clock], case.id, due, unit_id=unit_id, level=level + 1)]
        )

    @staticmethod
    def _clocks(case: DischargeCase, rules: clocks.Rules) -> list[clocks.ClockState]:
        return clocks.clocks(
            rules, admitted_at=case.admitted_at, admission_notice_at=case.admission_notice_at, ready_at=case.ready_at,
            sip_called_at=case.sip_called_at, payment_from=case.payment_from, discharged_at=case.discharged_at,
        )  # fmt: skip

    # ------------------------------------------------------------------------------ rules

    async def get_rules(self, principal: Principal, organisation_id: uuid.UUID) -> ClockRulesOut:
        async with self.db.transaction() as session:
            found = await store.rules_of(session, organisation_id)
        return _rules_out(organisation_id, found)

    async def set_rules(self, principal: Principal, organisation_id: uuid.UUID, body: ClockRulesIn) -> ClockRulesOut:
        require(principal, "discharge.rules.manage", organisation_id, detail="Only directory administrators.")
        async with self.db.transaction() as session:
            found = await store.rules_of(session, organisation_id)
            if found is None:
                if not await store.organisation_exists(session, organisation_id):
                    raise NotFound("organisation")
                found = ClockRules(organisation_id=organisation_id)
                session.add(found)
            for name, value in body.model_dump().items():
                setattr(found, name, value)
            found.updated_at = self.clock()
            await self._retime_running_clocks(session, organisation_id, _rules_of(found))
            await record(
                session, actor=principal, action="discharge.rules.set", object_type="organisation",
                object_id=organisation_id, details=body.model_dump(),
            )  # fmt: skip
            return _rules_out(organisation_id, found)

    async def _retime_running_clocks(
        self, session: AsyncSession, organisation_id: uuid.UUID, rules: clocks.Rules
    ) -> None:
        """The region's open cases show their clocks under the new rules at once, so their first escalation
        moves too (one already escalated keeps the pace it has). Otherwise a timer set under the old rules
        fires early, finds the clock still running and ends, and the missed clock is never escalated."""
        for case in await store.open_cases_of_organisation(session, organisation_id):
            for state in self._clocks(case, rules):
                if state.done_at is None:
                    await self.deadlines.move(session, clocks.KINDS[state.clock], case.id, 1, state.due_at)

    # ------------------------------------------------------------------------------ statistics

    async def statistics(self, principal: Principal, first_month: str, last_month: str) -> StatisticsOut:
        require(principal, "discharge.statistics.read")
        if first_month > last_month:
            raise Problem("bad_period", "first_month must not be after last_month.", status=422)
        async with self.db.transaction() as session:
            rows = await store.monthly(session, first_month, last_month)
        cells = stats.suppress(stats.aggregate(rows), self.min_cell)
        return StatisticsOut(
            first_month=first_month,
            last_month=last_month,
            min_cell=self.min_cell,
            items=[
                StatisticsCell(**vars(cell), municipality=MUNICIPALITIES.get(cell.municipality_code, ""))
                for cell in cells
            ],
        )

    # ------------------------------------------------------------------------------ views

    async def _out(self, session: AsyncSession, principal: Principal, access: CaseAccess) -> CaseOut:
        case = access.case
        info = await store.unit_info(session, access.roles)
        milestones = await store.milestones(session, [case.id])
        acks = await self.threads.acknowledgements(session, [m.message_id for m in milestones if m.message_id])
        escalations = await store.escalations(session, [case.id])
        now = self.clock()
        rules = await self._rules(session, case.ward_unit_id)
        mine = set(access.unit_of(principal))
        return CaseOut(
            id=case.id, case_ref=case.case_ref, municipality_code=case.municipality_code,
            municipality=MUNICIPALITIES.get(case.municipality_code, ""), district=case.district,
            age_band=case.age_band, status=case.status, ward_unit_id=case.ward_unit_id,
            conversation_id=case.conversation_id, admitted_at=case.admitted_at, ready_at=case.ready_at,
            discharged_at=case.discharged_at, payment_from=case.payment_from,
            units=[
                CaseUnitOut(unit_id=u, unit_name=info[u][0], organisation_name=info[u][1], role=role)
                for u, role in sorted(access.roles.items(), key=lambda item: (item[1] != "ward", item[1]))
                if u in info
            ],
            clocks=[
                CaseClockOut(clock=c.clock, side=c.side, started_at=c.started_at, due_at=c.due_at, done_at=c.done_at,
                         state=c.state(now))
                for c in self._clocks(case, rules)
            ],
            milestones=[
                MilestoneOut(
                    id=m.id, kind=m.kind, text=TEXTS[m.kind].format(at=stamp(m.effective_at)),
                    effective_at=m.effective_at, recorded_at=m.recorded_at, by_unit_id=m.by_unit_id,
                    message_id=m.message_id, meeting_id=m.meeting_id,
                    acks=[MilestoneAck(unit_id=u, acknowledged_at=at) for u, at in acks.get(m.message_id, {}).items()]
                    if m.message_id else [],
                )
                for m in milestones
            ],
            escalations=[
                ClockEscalationOut(clock=e.clock, level=e.level, unit_id=e.unit_id,
                              route_label=(e.route or {}).get("label"), route_value=(e.route or {}).get("value"),
                              at=e.at)
                for e in escalations
            ],
            waiting_for_my_ack=[
                m.message_id for m in milestones
                if m.message_id and any(at is None and u in mine for u, at in acks.get(m.message_id, {}).items())
            ],
        )  # fmt: skip

    # ------------------------------------------------------------------------------ bulk import

    async def import_cases(self, session: AsyncSession, records: Sequence[dict[str, Any]]) -> int:
        """Load historical cases (bench, demo, migration from a source system) with the derivations of the
        live path: payment start, discharge month and days, readmission links. No messages are sent."""
        rules_by_ward: dict[uuid.UUID, clocks.Rules] = {}
        rows: list[dict[str, Any]] = []
        last_discharge: dict[str, tuple[datetime, int]] = {}
        readmitted: list[uuid.UUID] = []
        sealer = sealer_of(self.db)
        for record_ in sorted(records, key=lambda r: r["admitted_at"]):
            ward = record_["ward_unit_id"]
            if ward not in rules_by_ward:
                rules_by_ward[ward] = await self._rules(session, ward)
            fields: dict[str, Any] = {
                "id": uuid.uuid4(), "status": "admitted", "unplanned": True, "ready_days": 0, "payment_days": 0,
                "readmitted_7d": False, "version": 1, "created_at": self.clock(), **COLUMN_DEFAULTS,
            }  # fmt: skip
            fields.update((k, v) for k, v in record_.items() if k not in ("ready_at", "discharged_at"))
            # A plain namespace with the columns: the same rules as the live path, without ORM bookkeeping.
            case = cast(DischargeCase, SimpleNamespace(**fields))
            self._apply(case, "ready_for_discharge", record_["ready_at"], record_["ready_at"], rules_by_ward[ward])
            if record_.get("discharged_at") is not None:
                derive_discharge(case, record_["discharged_at"])
            key = case.patient_key
            if key is not None:
                earlier = last_discharge.get(key)
                if earlier and case.unplanned and case.admitted_at - earlier[0] <= READMISSION_WINDOW:
                    rows[earlier[1]]["readmitted_7d"] = True
                    readmitted.append(rows[earlier[1]]["id"])
                if case.discharged_at is not None:
                    last_discharge[key] = (case.discharged_at, len(rows))
            row = vars(case)
            row.update(DischargeCase.case_ref.columns(sealer, row["id"], row.pop("case_ref")))
            rows.append(row)
        await store.insert_cases(session, rows)
        return len(rows)


def derive_discharge(case: DischargeCase, at: datetime) -> None:
    """Discharge: the month and day counts the statistics sum up."""
    case.discharged_at = at
    case.status = "discharged"
    case.discharge_month = clocks.month_of(at)
    case.ready_days = clocks.days_between(case.ready_at, at)
    case.payment_days = (
        clocks.days_between(case.payment_from, at) if case.payment_from and at > case.payment_from else 0
    )


def _matches(out: CaseOut, unit_id: uuid.UUID, side: str, view: View, now: datetime, today: Any) -> bool:
    open_clocks = [c for c in out.clocks if c.done_at is None and c.clock != "payment"]
    if view == "overdue":
        return any(c.side == side and c.state == "missed" for c in open_clocks)
    if view == "due_today":
        return bool(out.waiting_for_my_ack) or any(
            c.side == side and c.state == "running" and clocks.local_date(c.due_at) == today for c in open_clocks
        )
    # waiting: the other side must act, or my unit's notices are not yet acknowledged
    unacknowledged = any(
        m.by_unit_id == unit_id and any(a.acknowledged_at is None for a in m.acks) for m in out.milestones
    )
    return unacknowledged or any(c.side != side for c in open_clocks)


def _rules_of(found: ClockRules) -> clocks.Rules:
    return clocks.Rules(
        found.admission_notice_hours, found.sip_call_days, found.payment_days, found.payment_day_kind,
        found.escalation_minutes,
    )  # fmt: skip


def _rules_out(organisation_id: uuid.UUID, found: ClockRules | None) -> ClockRulesOut:
    if found is None:
        defaults = clocks.DEFAULT_RULES
        return ClockRulesOut(organisation_id=organisation_id, default=True, **vars(defaults))
    return ClockRulesOut(
        organisation_id=organisation_id, default=False, admission_notice_hours=found.admission_notice_hours,
        sip_call_days=found.sip_call_days, payment_days=found.payment_days, payment_day_kind=found.payment_day_kind,
        escalation_minutes=found.escalation_minutes,
    )  # fmt: skip
