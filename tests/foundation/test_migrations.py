"""Schema only through Alembic: migrations reach the head on SQLite and PostgreSQL and match the models."""

from __future__ import annotations

import sqlite3

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from server.core.db import Base, create_engine
from server.migrate import alembic_config, current_heads, import_all_models, include_name, upgrade

import_all_models()


def expected_heads(url: str) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(url)).get_heads())


async def schema_drift(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": False, "include_name": include_name}),
                    Base.metadata,
                )
            )
    finally:
        await engine.dispose()


async def test_sqlite_migrations_reach_head_and_are_durable(settings):
    url = settings.effective_database_url
    await upgrade(url)
    assert await current_heads(url) == expected_heads(url)
    await upgrade(url)  # idempotent
    assert await schema_drift(url) == []
    db_file = settings.data_dir / "brygga.db"
    with sqlite3.connect(db_file) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    engine = create_engine(url)
    async with engine.connect() as connection:
        from sqlalchemy import text

        assert (await connection.execute(text("PRAGMA synchronous"))).scalar() == 2  # FULL
        assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    await engine.dispose()


async def test_postgresql_migrations_reach_head(pg_database):
    await upgrade(pg_database)
    assert await current_heads(pg_database) == expected_heads(pg_database)
    assert await schema_drift(pg_database) == []
