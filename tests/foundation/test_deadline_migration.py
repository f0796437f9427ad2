"""0015: messaging's escalation timers move into the deadline engine's table, and back on a downgrade."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command

from server.core.db import UTCDateTime, create_engine
from server.migrate import alembic_config, upgrade

BEFORE = "0014_hsa_local_search"
MOVED = "0015_escalations_on_deadlines"  # later migrations (0016 seals values) refuse to go back
DUE = datetime(2026, 11, 30, 8, 20, tzinfo=UTC)
TIMER = ("id", "unit_id", "level", "due_at", "state", "fired_at")


def table(name: str, *extra: str) -> sa.TableClause:
    types = {"level": sa.Integer(), "state": sa.String(), "kind": sa.String(), "reference": sa.String()}
    times = {"due_at", "fired_at"}
    return sa.table(
        name, *(sa.column(c, UTCDateTime() if c in times else types.get(c, sa.Uuid())) for c in (*TIMER, *extra))
    )


ESCALATIONS = table("message_escalations", "receipt_id", "message_id")
DEADLINES = table("deadlines", "kind", "reference")
RECEIPTS = sa.table(
    "message_receipts", *(sa.column(c, sa.Uuid()) for c in ("id", "message_id", "conversation_id")),
    sa.column("needs_ack", sa.Boolean()), sa.column("escalation_level", sa.Integer()),
)  # fmt: skip


async def timers(connection: sa.ext.asyncio.AsyncConnection, source: sa.TableClause) -> list[tuple[object, ...]]:
    query = sa.select(*(source.c[c] for c in TIMER)).order_by(source.c.level)
    return [tuple(row) for row in (await connection.execute(query)).all()]


async def test_escalation_timers_move_to_deadlines_and_back(settings):
    url = settings.effective_database_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade(url, BEFORE)
    receipt, message, unit = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rows = [
        {"id": uuid.uuid4(), "level": 1, "due_at": DUE, "state": "fired", "fired_at": DUE + timedelta(seconds=3)},
        {"id": uuid.uuid4(), "level": 2, "due_at": DUE + timedelta(minutes=30), "state": "pending", "fired_at": None},
    ]
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            # Only the timers' own columns matter here; the rows they point at are left out.
            await connection.execute(sa.text("PRAGMA foreign_keys=OFF"))
            await connection.execute(
                RECEIPTS.insert(),
                [{"id": receipt, "message_id": message, "conversation_id": uuid.uuid4(), "needs_ack": True,
                  "escalation_level": 1}],
            )  # fmt: skip
            await connection.execute(
                ESCALATIONS.insert(),
                [{**row, "receipt_id": receipt, "message_id": message, "unit_id": unit} for row in rows],
            )
            await connection.commit()
            before = await timers(connection, ESCALATIONS)
        await upgrade(url, MOVED)
        async with engine.connect() as connection:
            moved = await timers(connection, DEADLINES)
            kinds = (await connection.execute(sa.select(DEADLINES.c.kind, DEADLINES.c.reference).distinct())).all()
            tables = await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        assert len(before) == 2 and moved == before
        assert kinds == [("messaging.escalation", str(receipt))]
        assert "message_escalations" not in tables

        def downgrade(sync: sa.Connection) -> None:
            config = alembic_config(url)
            config.attributes["connection"] = sync
            command.downgrade(config, BEFORE)

        async with engine.begin() as connection:
            await connection.run_sync(downgrade)
        async with engine.connect() as connection:
            restored = await timers(connection, ESCALATIONS)
            refs = (
                await connection.execute(sa.select(ESCALATIONS.c.receipt_id, ESCALATIONS.c.message_id).distinct())
            ).all()
            left = (await connection.execute(sa.select(sa.func.count()).select_from(DEADLINES))).scalar()
        assert restored == before and left == 0
        assert refs == [(receipt, message)]
    finally:
        await engine.dispose()
