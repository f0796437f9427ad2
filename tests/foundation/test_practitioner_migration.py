"""0018: publication columns on memberships; the downgrade drops them and keeps the memberships."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from server.core.db import create_engine
from server.migrate import alembic_config, upgrade

BEFORE = "0017_sealed_guest_labels"
AFTER = "0018_public_practitioners"


async def columns(engine: sa.ext.asyncio.AsyncEngine) -> set[str]:
    async with engine.connect() as connection:
        found = await connection.run_sync(lambda sync: sa.inspect(sync).get_columns("memberships"))
    return {column["name"] for column in found}


async def test_publication_columns_come_and_go(settings):
    url = settings.effective_database_url
    await upgrade(url, AFTER)
    engine = create_engine(url)

    def downgrade(sync: sa.Connection) -> None:
        config = alembic_config(url)
        config.attributes["connection"] = sync
        command.downgrade(config, BEFORE)

    try:
        assert {"public", "role_title", "role_code", "public_id"} <= await columns(engine)
        async with engine.begin() as connection:
            await connection.run_sync(downgrade)
        assert not {"public", "role_title", "role_code", "public_id"} & await columns(engine)
        await upgrade(url, AFTER)
        assert "public_id" in await columns(engine)
    finally:
        await engine.dispose()
