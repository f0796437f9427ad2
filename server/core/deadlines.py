"""The deadline engine: durable timers that fire once, on one node, even across restarts and failover.

A domain names its kinds and registers a handler per kind when its plugin starts; it schedules and
cancels timers in its own transaction, so a timer exists exactly when the change that started it
was committed (docs/development.md, "Deadlines"):

    SIP_CALL = DeadlineKind("discharge.sip_call")
    ctx.deadlines.register(SIP_CALL, service.fire_clock)         # the plugin's lifecycle
    await engine.schedule(session, [Timer(SIP_CALL, case.id, due_at, unit_id=unit)])
    await engine.cancel(session, [SIP_CALL], [case.id])          # the clock stopped in time

`fire(session, deadline, now)` runs in the transaction that claimed the row (pending -> fired); if
it raises, that transaction rolls back and the timer stays pending for the next round. What it
returns (a coroutine function) is awaited after the commit: events to sockets, never database work.

Only the node holding the `LEASE` fires (`run`); a row is claimed with a conditional UPDATE in the
handler's transaction, so even two nodes racing (a lease lost mid-round) fire it once.
`due_after_open` counts only the open time of a unit per the calendar protocol (core/calendar.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import event, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.core import leases
from server.core.calendar import AlwaysOpen, UnitCalendar
from server.core.db import Database, log_failure
from server.core.models import Deadline

log = logging.getLogger("brygga.deadlines")

LEASE = "deadlines"  # held by the one node that fires timers

AfterCommit = Callable[[], Awaitable[None]]
Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]


class DeadlineConfig(BaseSettings):
    """`BRYGGA_DEADLINE_*` (the messaging names from before the engine are still read)."""

    model_config = SettingsConfigDict(env_prefix="BRYGGA_DEADLINE_", extra="ignore", populate_by_name=True)

    poll_seconds: float = Field(
        default=15.0,
        description="Longest sleep of the scheduler loop (a node that schedules wakes its own loop at once).",
        validation_alias=AliasChoices("BRYGGA_DEADLINE_POLL_SECONDS", "BRYGGA_MESSAGING_SCHEDULER_POLL_SECONDS"),
    )
    lease_ttl_seconds: float = Field(
        default=15.0,
        description="Timer lease: another node takes the timers over this long after a crash.",
        validation_alias=AliasChoices("BRYGGA_DEADLINE_LEASE_TTL_SECONDS", "BRYGGA_MESSAGING_LEASE_TTL_SECONDS"),
    )


@dataclass(frozen=True)
class DeadlineKind:
    """Names a kind of timer (`<domain>.<what>`, at most 40 characters)."""

    name: str

    def __post_init__(self) -> None:
        if not 0 < len(self.name) <= 40:
            raise ValueError(f"deadline kind {self.name!r}: 1-40 characters")


class Fire(Protocol):
    async def __call__(self, session: AsyncSession, deadline: Deadline, now: datetime) -> AfterCommit | None: ...


@dataclass(frozen=True)
class Timer:
    """A timer to schedule: `reference` says what it is about (a case id, a receipt id)."""

    kind: DeadlineKind
    reference: str | uuid.UUID
    due_at: datetime
    unit_id: uuid.UUID | None = None
    level: int = 1
    payload: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Handler:
    fire: Fire
    transaction: Transaction | None


async def open_time_after(calendar: UnitCalendar, unit_id: uuid.UUID, start: datetime, duration: timedelta) -> datetime:
    """The moment `duration` of the unit's open time has passed after `start` (closed nights, weekends
    and holidays do not count); a unit never open in 8 weeks counts wall-clock time."""
    remaining = duration
    window_start = start
    for _week in range(8):
        window_end = window_start + timedelta(days=7)
        for opens, closes in await calendar.open_intervals(unit_id, window_start, window_end):
            opens = max(opens, window_start)
            if closes <= opens:
                continue
            if closes - opens >= remaining:
                return opens + remaining
            remaining -= closes - opens
        window_start = window_end
    return start + duration


class DeadlineEngine:
    def __init__(
        self,
        db: Database,
        *,
        clock: Callable[[], datetime],
        calendar: Callable[[], UnitCalendar] = AlwaysOpen,
        config: DeadlineConfig | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.calendar = calendar
        self.config = config or DeadlineConfig()
        self.wake = asyncio.Event()  # set: look for due timers now
        self.may_fire: Callable[[], bool] = lambda: True  # `run` points this at the lease
        self._handlers: dict[str, _Handler] = {}

    def register(self, kind: DeadlineKind, fire: Fire, *, transaction: Transaction | None = None) -> None:
        """What firing a timer of `kind` does; `transaction` (default: the database's) is the one it runs in."""
        if kind.name in self._handlers:
            raise ValueError(f"deadline kind {kind.name} is registered already")
        self._handlers[kind.name] = _Handler(fire, transaction)
        self.wake.set()  # timers of this kind may have fallen due while nobody handled them

    # ------------------------------------------------------------------------------ in the caller's transaction

    async def schedule(self, session: AsyncSession, timers: Sequence[Timer]) -> None:
        """Add timers in the caller's transaction; the loop looks at them once it commits."""
        if not timers:
            return
        now = self.clock()
        rows = [
            {
                "id": uuid.uuid4(),
                "kind": t.kind.name,
                "reference": str(t.reference),
                "unit_id": t.unit_id,
                "level": t.level,
                "due_at": t.due_at,
                "state": "pending",
                "created_at": now,
                "fired_at": None,
                "payload": t.payload,
            }
            for t in timers
        ]
        await session.execute(insert(Deadline), rows)
        self._wake_after_commit(session)

    async def cancel(
        self, session: AsyncSession, kinds: Iterable[DeadlineKind], references: Iterable[str | uuid.UUID]
    ) -> int:
        """Cancel the pending timers of these kinds about these references; returns how many."""
        names, refs = [k.name for k in kinds], [str(r) for r in references]
        if not names or not refs:
            return 0
        result = await session.execute(
            update(Deadline)
            .where(Deadline.kind.in_(names), Deadline.reference.in_(refs), Deadline.state == "pending")
            .values(state="cancelled")
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def move(
        self, session: AsyncSession, kind: DeadlineKind, reference: str | uuid.UUID, level: int, due_at: datetime
    ) -> int:
        """Move the pending timers of `kind` and `level` about `reference` to `due_at` (the rule that timed
        them changed); the loop looks again once the caller commits. Returns how many moved."""
        result = await session.execute(
            update(Deadline)
            .where(
                Deadline.kind == kind.name,
                Deadline.reference == str(reference),
                Deadline.level == level,
                Deadline.state == "pending",
            )
            .values(due_at=due_at)
        )
        moved = int(result.rowcount)  # type: ignore[attr-defined]
        if moved:
            self._wake_after_commit(session)
        return moved

    def _wake_after_commit(self, session: AsyncSession) -> None:
        """The loop looks at the timers again once the caller's transaction has committed."""
        event.listen(session.sync_session, "after_commit", lambda _session: self.wake.set(), once=True)

    async def due_after_open(self, unit_id: uuid.UUID, start: datetime, duration: timedelta) -> datetime:
        return await open_time_after(self.calendar(), unit_id, start, duration)

    # ------------------------------------------------------------------------------ firing

    async def next_due(self, kinds: Iterable[DeadlineKind] | None = None) -> datetime | None:
        """When the next pending timer (of these kinds; default: the registered ones) falls due."""
        names = [k.name for k in kinds] if kinds is not None else list(self._handlers)
        async with self.db.transaction() as session:
            result = await session.execute(
                select(func.min(Deadline.due_at)).where(Deadline.state == "pending", Deadline.kind.in_(names))
            )
        value: datetime | None = result.scalar()
        return value

    async def fire_due(self, limit: int = 100) -> int:
        """Fire the registered timers that are due now, oldest first; returns how many fired.

        A handler that fails is logged and its timer stays pending; the others still fire."""
        now = self.clock()
        async with self.db.transaction() as session:
            due = await session.execute(
                select(Deadline.id, Deadline.kind)
                .where(Deadline.state == "pending", Deadline.due_at <= now, Deadline.kind.in_(list(self._handlers)))
                .order_by(Deadline.due_at)
                .limit(limit)
            )
            rows = due.all()
        fired = failed = 0
        for deadline_id, kind in rows:
            try:
                fired += await self._fire(self._handlers[kind], deadline_id, now)
            except Exception as exc:
                failed += 1
                log_failure(log, "deadline handler failed; retrying", exc, kind=kind, deadline=str(deadline_id))
        if failed:
            raise RuntimeError(f"{failed} deadline handler(s) failed")
        return fired

    async def _fire(self, handler: _Handler, deadline_id: uuid.UUID, now: datetime) -> int:
        after: AfterCommit | None = None
        async with (handler.transaction or self.db.transaction)() as session:
            claimed = await session.execute(
                update(Deadline)
                .where(Deadline.id == deadline_id, Deadline.state == "pending")
                .values(state="fired", fired_at=now)
            )
            if not claimed.rowcount:  # type: ignore[attr-defined]
                return 0  # cancelled meanwhile, or another node got there first
            deadline = await session.get(Deadline, deadline_id, populate_existing=True)
            assert deadline is not None
            after = await handler.fire(session, deadline, now)
        if after is not None:
            await after()
        return 1

    async def loop(self) -> None:
        """Fire what is due, then sleep until the next timer, a poll, or `wake`; only while `may_fire()`."""
        while True:
            self.wake.clear()
            timeout = self.config.poll_seconds
            if self.may_fire():
                try:
                    await self.fire_due()
                    upcoming = await self.next_due()
                    if upcoming is not None:
                        timeout = max(0.0, min(timeout, (upcoming - self.clock()).total_seconds()))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log_failure(log, "deadline scheduler failed; retrying", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=timeout)

    async def run(self, owner: str) -> None:
        """The scheduler on this node: fires only while it holds the `LEASE` (cancel to stop)."""

        async def on_change(held: bool) -> None:
            self.wake.set()  # take over at once: fire whatever fell due while nobody held the lease

        keeper = leases.LeaseKeeper(self.db, LEASE, owner, ttl=self.config.lease_ttl_seconds, on_change=on_change)
        self.may_fire = lambda: keeper.held
        # Leaving the block stops the keeper, which releases the lease: another node takes over at once.
        async with keeper.kept():
            await self.loop()
