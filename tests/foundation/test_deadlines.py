"""The core deadline engine with a fake clock: fires once, cancel, restart, failing handlers, one node of
two fires, and due times counted in a unit's open hours across a closed night and weekend."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from server.core import leases
from server.core.db import Database
from server.core.deadlines import LEASE, DeadlineConfig, DeadlineEngine, DeadlineKind, Timer
from server.core.models import Deadline
from tests.messaging.test_escalation import FakeClock, OfficeHours

PING = DeadlineKind("test.ping")
OTHER = DeadlineKind("test.other")
TUESDAY_0900 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class Recorder:
    """A handler: records what fired and, like a real one, schedules the next level in the same transaction."""

    def __init__(self, engine: DeadlineEngine, fail: int = 0) -> None:
        self.engine = engine
        self.fired: list[tuple[str, int, datetime]] = []
        self.announced: list[str] = []
        self.fail = fail

    async def __call__(self, session, deadline, now):
        if self.fail:
            self.fail -= 1
            await self.engine.schedule(session, [Timer(PING, "written-then-rolled-back", now)])
            raise RuntimeError("handler failed")
        self.fired.append((deadline.reference, deadline.level, now))
        if deadline.level < 2:
            await self.engine.schedule(
                session, [Timer(PING, deadline.reference, now + timedelta(minutes=30), level=deadline.level + 1)]
            )

        async def announce() -> None:
            self.announced.append(deadline.reference)

        return announce


def engine_on(db: Database, clock: FakeClock, **config: float) -> tuple[DeadlineEngine, Recorder]:
    engine = DeadlineEngine(db, clock=clock, calendar=OfficeHours, config=DeadlineConfig(**config))
    recorder = Recorder(engine)
    engine.register(PING, recorder)
    return engine, recorder


async def schedule(db: Database, engine: DeadlineEngine, *timers: Timer) -> None:
    async with db.transaction() as session:
        await engine.schedule(session, timers)


async def states(db: Database) -> list[tuple[str, str, int, str]]:
    async with db.transaction() as session:
        rows = await session.execute(
            select(Deadline.kind, Deadline.reference, Deadline.level, Deadline.state).order_by(Deadline.created_at)
        )
    return [tuple(row) for row in rows.all()]


async def test_a_timer_fires_once_when_due_and_its_handler_schedules_the_next_level(db):
    clock = FakeClock(TUESDAY_0900)
    engine, recorder = engine_on(db, clock)
    case = uuid.uuid4()
    await schedule(db, engine, Timer(PING, case, TUESDAY_0900 + timedelta(hours=1)), Timer(OTHER, "x", TUESDAY_0900))
    assert await engine.next_due() == TUESDAY_0900 + timedelta(hours=1)  # only registered kinds
    assert await engine.next_due([OTHER]) == TUESDAY_0900
    assert await engine.fire_due() == 0  # nothing of a registered kind is due; OTHER has no handler here
    clock.now += timedelta(hours=1)
    assert await engine.fire_due() == 1
    assert recorder.fired == [(str(case), 1, clock.now)] and recorder.announced == [str(case)]
    assert await engine.fire_due() == 0  # fired once
    assert await engine.next_due() == clock.now + timedelta(minutes=30)  # level 2, from the handler
    clock.now += timedelta(minutes=30)
    assert await engine.fire_due() == 1
    assert [level for _ref, level, _at in recorder.fired] == [1, 2]
    assert sorted(await states(db)) == [
        ("test.other", "x", 1, "pending"), ("test.ping", str(case), 1, "fired"), ("test.ping", str(case), 2, "fired")
    ]  # fmt: skip


async def test_cancelled_timers_never_fire(db):
    clock = FakeClock(TUESDAY_0900)
    engine, recorder = engine_on(db, clock)
    await schedule(db, engine, Timer(PING, "a", clock.now), Timer(PING, "b", clock.now), Timer(OTHER, "a", clock.now))
    async with db.transaction() as session:
        assert await engine.cancel(session, [PING], ["a"]) == 1
        assert await engine.cancel(session, [PING], []) == 0
    clock.now += timedelta(days=1)
    assert await engine.fire_due() == 1
    assert [ref for ref, _level, _at in recorder.fired] == ["b"]
    assert ("test.other", "a", 1, "pending") in await states(db)  # another kind's timer is untouched


async def test_a_failing_handler_rolls_back_and_the_timer_fires_on_the_next_round(db):
    clock = FakeClock(TUESDAY_0900)
    engine = DeadlineEngine(db, clock=clock)
    recorder = Recorder(engine, fail=1)
    engine.register(PING, recorder)
    await schedule(db, engine, Timer(PING, "a", clock.now, level=2))
    with pytest.raises(RuntimeError):
        await engine.fire_due()
    assert await states(db) == [("test.ping", "a", 2, "pending")]  # its writes rolled back too
    assert await engine.fire_due() == 1 and recorder.fired == [("a", 2, clock.now)]
    with pytest.raises(ValueError):
        engine.register(PING, recorder)


async def test_a_restarted_engine_fires_what_fell_due_while_nothing_ran(db):
    clock = FakeClock(TUESDAY_0900)
    first, _ = engine_on(db, clock)
    await schedule(db, first, Timer(PING, "before-restart", clock.now + timedelta(minutes=5)))
    # The first node is gone; a new one starts after the deadline passed and holds the lease.
    clock.now += timedelta(hours=2)
    second, recorder = engine_on(db, clock, lease_ttl_seconds=5, poll_seconds=60)
    runner = asyncio.create_task(second.run("node-b"))
    try:
        for _ in range(100):
            if recorder.fired:
                break
            await asyncio.sleep(0.05)
        assert recorder.fired == [("before-restart", 1, clock.now)]
        # A timer scheduled while the loop sleeps wakes it when the transaction commits.
        await schedule(db, second, Timer(PING, "while-running", clock.now, level=2))
        for _ in range(100):
            if len(recorder.fired) == 2:
                break
            await asyncio.sleep(0.05)
        assert recorder.fired[-1] == ("while-running", 2, clock.now)
        assert (await leases.holder(db, LEASE)).owner == "node-b"
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert await leases.holder(db, LEASE) is None  # released on the way out


async def test_two_nodes_running_fire_each_timer_once(db):
    clock = FakeClock(TUESDAY_0900)
    (a, fired_a), (b, fired_b) = engine_on(db, clock, lease_ttl_seconds=5), engine_on(db, clock, lease_ttl_seconds=5)
    await schedule(db, a, *(Timer(PING, f"t{i}", clock.now, level=2) for i in range(20)))
    runners = [asyncio.create_task(a.run("node-a")), asyncio.create_task(b.run("node-b"))]
    try:
        for _ in range(200):
            if len(fired_a.fired) + len(fired_b.fired) >= 20:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
    finally:
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
    fired = sorted(ref for ref, _level, _at in fired_a.fired + fired_b.fired)
    assert fired == sorted(f"t{i}" for i in range(20))
    assert not (fired_a.fired and fired_b.fired)  # only the lease holder fired
    # Even without the lease (a node that lost it mid-round), the claim lets a timer fire only once.
    await schedule(db, a, *(Timer(PING, f"r{i}", clock.now, level=2) for i in range(10)))
    counts = await asyncio.gather(a.fire_due(), b.fire_due())
    assert sum(counts) == 10


async def test_due_after_open_hours_skips_the_closed_night_and_weekend(db):
    engine, _ = engine_on(db, FakeClock(TUESDAY_0900))
    unit = uuid.uuid4()
    tuesday_1530 = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
    # 30 minutes Tuesday, the night does not count, 30 minutes Wednesday morning.
    assert await engine.due_after_open(unit, tuesday_1530, timedelta(hours=1)) == datetime(
        2026, 11, 25, 8, 30, tzinfo=UTC
    )
    friday_1500 = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    # 1 hour Friday, nothing Saturday or Sunday, 8 hours Monday, 1 hour Tuesday.
    assert await engine.due_after_open(unit, friday_1500, timedelta(hours=10)) == datetime(
        2026, 12, 1, 9, 0, tzinfo=UTC
    )
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert await engine.due_after_open(unit, saturday, timedelta(minutes=20)) == datetime(
        2026, 11, 30, 8, 20, tzinfo=UTC
    )
