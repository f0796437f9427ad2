"""Run Alembic migrations programmatically (used by `brygga migrate`, start-up and tests)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

import server
from server.core.db import create_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def import_all_models() -> None:
    """Import every `server.<domain>.models` so the metadata holds every table."""
    importlib.import_module("server.core.models")
    for module in pkgutil.iter_modules(server.__path__):
        if module.ispkg:
            try:
                importlib.import_module(f"server.{module.name}.models")
            except ModuleNotFoundError as exc:
                if exc.name != f"server.{module.name}.models":
                    raise


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic filter: skip dialect-specific structures a migration manages itself (e.g. FTS5 tables).

    Domains register name prefixes in `Base.metadata.info["unmanaged_prefixes"]`.
    """
    from server.core.db import Base

    if type_ not in ("table", "index") or name is None:
        return True
    prefixes: set[str] = Base.metadata.info.get("unmanaged_prefixes", set())
    return not any(name.startswith(prefix) for prefix in prefixes)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


async def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the schema at `url` up to date. Runs in the current event loop."""
    engine: AsyncEngine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade_sync, url, revision)
    finally:
        await engine.dispose()


def _upgrade_sync(connection: object, url: str, revision: str) -> None:
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def current_heads(url: str) -> set[str]:
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(lambda sync: set(MigrationContext.configure(sync).get_current_heads()))
    finally:
        await engine.dispose()


def refuse_to_drop_audit(revision: str, count_sql: str) -> None:
    """In a migration's `downgrade()`: stop if `count_sql` (run on the migration's connection) finds
    audit data that going below `revision` would drop: the access log must be kept for 5 years and
    its hash chain and signed checkpoints cannot be rebuilt. Restore a backup to go back instead."""
    from alembic import op
    from sqlalchemy import text

    found = int(op.get_bind().execute(text(count_sql)).scalar_one())
    if found:
        raise RuntimeError(
            f"refusing to downgrade below {revision}: it would drop {found} audit rows or signed checkpoints "
            "(HSLF-FS 2016:40, tamper evidence). To go back to an older release, restore the backup taken "
            "before the upgrade (docs/operations.md)."
        )
