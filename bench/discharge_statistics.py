"""Discharge statistics for a generated year: load ≥ 100,000 cases, then time the monthly statistics.

    .venv/bin/python bench/discharge_statistics.py [--cases 100000] [--database-url URL]

Prints the load time and the best and median of five statistics computations (the API's
`DischargeService.statistics`: SQL GROUP BY + aggregation per municipality and district + small-cell
suppression). The target is ≤ 1 s. tests/discharge/test_statistics.py checks the same figures against
an independent computation from the generated records.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.core.db import Database, utcnow
from server.core.models import Organisation, Unit
from server.core.principal import Principal
from server.discharge.generate import generate_year
from server.discharge.pseudonym import Pseudonyms
from server.discharge.schemas import StatisticsOut
from server.discharge.service import DischargeService
from server.messaging.config import MessagingConfig
from server.messaging.service import MessagingService
from server.migrate import upgrade

YEAR = 2025
ANALYST = Principal(uuid.uuid4(), "Bench")


async def load_year(db: Database, service: DischargeService, count: int) -> list[dict[str, Any]]:
    """Wards of one region and `count` generated cases of YEAR, loaded through the import path."""
    async with db.transaction() as session:
        region = Organisation(id=uuid.uuid4(), name="Region Stockholm", kind="region")
        session.add(region)
        await session.flush()
        wards = [Unit(id=uuid.uuid4(), organisation_id=region.id, name=f"Avdelning {n}", unit_type="ward")
                 for n in range(20)]  # fmt: skip
        session.add_all(wards)
    records = generate_year(count, [ward.id for ward in wards], year=YEAR)
    async with db.transaction() as session:
        await service.import_cases(session, records)
    return records


def build(db: Database, key_dir: Path, min_cell: int = 5) -> DischargeService:
    from server.core.deadlines import DeadlineEngine
    from server.core.envelope import open_checked

    deadlines = DeadlineEngine(db, clock=utcnow)
    messaging = MessagingService(
        db, open_checked(key_dir / "kek.json", []), MessagingConfig(), clock=utcnow, deadlines=deadlines
    )
    return DischargeService(
        db, messaging, Pseudonyms(key_dir / "pseudonym.key"), clock=utcnow, deadlines=deadlines, min_cell=min_cell
    )


async def time_statistics(service: DischargeService, runs: int = 5) -> tuple[list[float], StatisticsOut]:
    timings = []
    result: StatisticsOut | None = None
    for _ in range(runs):
        started = time.perf_counter()
        result = await service.statistics(ANALYST, f"{YEAR}-01", f"{YEAR + 1}-01")
        timings.append(time.perf_counter() - started)
    assert result is not None
    return timings, result


async def main(count: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        await upgrade(url)
        db = Database(url)
        service = build(db, Path(tmp))
        try:
            started = time.perf_counter()
            await load_year(db, service, count)
            took = time.perf_counter() - started
            print(f"loaded {count:,} generated cases of {YEAR} in {took:.1f} s ({url.split(':')[0]})")
            timings, result = await time_statistics(service)
        finally:
            await db.close()
    cells = len(result.items)
    suppressed = sum(1 for cell in result.items if cell.suppressed)
    best, median = min(timings), statistics.median(timings)
    print(f"statistics: {cells} cells ({suppressed} with suppressed figures), best {best * 1000:.0f} ms, "
          f"median {median * 1000:.0f} ms over {len(timings)} runs")  # fmt: skip
    print(f"target ≤ 1 s: {'met' if median <= 1.0 else 'NOT met'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args()
    asyncio.run(main(args.cases, args.database_url))
