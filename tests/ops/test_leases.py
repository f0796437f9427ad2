"""Database leases: one owner at a time, renewal, release and takeover after expiry (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from server.core import leases
from server.core.db import utcnow


async def test_one_owner_renewal_release_and_takeover_after_expiry(db):
    t0 = utcnow()
    assert await leases.acquire(db, "escalations", "node-a", 10, now=t0)
    assert not await leases.acquire(db, "escalations", "node-b", 10, now=t0 + timedelta(seconds=5))
    info = await leases.holder(db, "escalations", now=t0 + timedelta(seconds=5))
    assert info is not None and info.owner == "node-a"

    # node-a renews at t0+8 (acquire by the owner renews, keeping acquired_at); node-b still loses at t0+12.
    assert await leases.acquire(db, "escalations", "node-a", 10, now=t0 + timedelta(seconds=8))
    assert not await leases.acquire(db, "escalations", "node-b", 10, now=t0 + timedelta(seconds=12))
    info = await leases.holder(db, "escalations", now=t0 + timedelta(seconds=12))
    assert info is not None and info.acquired_at == t0
    assert await leases.renew(db, "escalations", "node-a", 10, now=t0 + timedelta(seconds=17))

    # node-a dies: after expiry node-b takes over, and node-a can no longer renew.
    later = t0 + timedelta(seconds=27, milliseconds=1)
    assert await leases.holder(db, "escalations", now=later) is None
    assert await leases.acquire(db, "escalations", "node-b", 10, now=later)
    assert not await leases.renew(db, "escalations", "node-a", 10, now=later)
    info = await leases.holder(db, "escalations", now=later)
    assert info is not None and info.owner == "node-b" and info.acquired_at == later

    # release hands over at once; only the owner can release.
    assert not await leases.release(db, "escalations", "node-a")
    assert await leases.release(db, "escalations", "node-b")
    assert await leases.acquire(db, "escalations", "node-a", 10, now=later)
    assert await leases.acquire(db, "other-lease", "node-b", 10, now=later)  # names are independent


async def test_racing_nodes_never_both_win(db):
    t0 = utcnow()
    for round_ in range(5):
        name = f"race-{round_}"
        results = await asyncio.gather(*(leases.acquire(db, name, f"node-{i}", 5, now=t0) for i in range(8)))
        assert sum(results) == 1


async def test_keeper_holds_and_another_keeper_takes_over_when_it_stops(db):
    changes: list[tuple[str, bool]] = []

    def keeper(owner: str) -> leases.LeaseKeeper:
        async def on_change(held: bool) -> None:
            changes.append((owner, held))

        return leases.LeaseKeeper(db, "audit-chainer", owner, ttl=0.6, interval=0.1, on_change=on_change)

    first, second = keeper("node-a"), keeper("node-b")
    task_a = asyncio.create_task(first.run())
    await asyncio.sleep(0.3)
    task_b = asyncio.create_task(second.run())
    await asyncio.sleep(0.5)
    assert first.held and not second.held
    task_a.cancel()  # node A stops (its finally releases the lease)
    await asyncio.gather(task_a, return_exceptions=True)
    await asyncio.sleep(0.4)
    assert second.held and not first.held
    task_b.cancel()
    await asyncio.gather(task_b, return_exceptions=True)
    assert changes[0] == ("node-a", True) and changes[1] == ("node-b", True)


async def test_a_server_stopped_right_after_starting_gives_its_leases_back(migrated):
    """Stopped while its lease keepers were still taking their leases (a restart, a deploy), a node must
    hand them back at once so another node takes over now, not after the TTL; a keeper cancelled in the
    middle of its statement once left SQLite's write lock behind and the release timed out."""
    from aiohttp.test_utils import TestClient, TestServer
    from sqlalchemy import select

    from server.app import create_app
    from server.core.db import Database
    from server.core.models import Lease

    for _ in range(4):
        client = TestClient(TestServer(create_app(migrated)))
        await client.start_server()
        await client.get("/healthz")
        await client.close()
        db = Database(migrated.effective_database_url)
        try:
            async with db.transaction() as session:
                held = (await session.execute(select(Lease.name))).scalars().all()
        finally:
            await db.close()
        assert held == []
