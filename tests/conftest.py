"""Shared fixtures: a migrated database per test, a running app, users with tokens, real services."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.core.context import CTX, AppContext
from server.core.db import Database
from server.core.envelope import Envelope, KeyRing, attach_sealer
from server.migrate import upgrade
from server.settings import Settings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get("BRYGGA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BRYGGA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CHROMIUM = "/usr/lib/chromium/chromium"


def require_service(available: bool, what: str) -> None:
    """Skip loudly where a real service truly is missing; in CI a missing service is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but is not reachable", pytrace=False)
    pytest.skip(f"SKIPPED LOUDLY: {what} is not reachable; run scripts/ensure-system.sh")


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        public_base_url="http://127.0.0.1",
        web_dist=Path(__file__).resolve().parent.parent / "client_web" / "dist",
    )


def with_keys(db: Database, settings: Settings) -> Database:
    """`db` sealing and opening sealed columns with the settings' key files, as the server's does."""
    envelope = Envelope(KeyRing(settings.effective_key_file, create=True))
    attach_sealer(db, envelope, settings.effective_index_key_file, sealed_records=False)
    return db


@pytest.fixture
async def migrated(settings: Settings) -> Settings:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade(settings.effective_database_url)
    return settings


@pytest.fixture
async def client(migrated: Settings) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    app = create_app(migrated)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


@pytest.fixture
def ctx(client: TestClient) -> AppContext:  # type: ignore[type-arg]
    return client.app[CTX]


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database on loopback for one test; dropped afterwards."""
    require_service(port_open("127.0.0.1", 5432), "PostgreSQL on 127.0.0.1:5432")
    import asyncpg

    name = f"brygga_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(PG_ADMIN_URL)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, settings: Settings) -> str:
    """Run the test on SQLite and on PostgreSQL (loopback)."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("pg_database")
        return url
    return settings.effective_database_url


@pytest.fixture
async def db(db_url: str, settings: Settings) -> AsyncIterator[Database]:
    """A migrated database of `db_url`, without an app."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade(db_url)
    database = Database(db_url)
    yield database
    await database.close()


class Actors:
    """Creates organisations, units and users (with bearer tokens) directly through the services."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    async def unit(self, name: str = "Avdelning 1", unit_type: str = "ward", org_kind: str = "region") -> uuid.UUID:
        from server.core.models import Organisation, Unit

        async with self.ctx.db.transaction() as session:
            organisation = Organisation(id=uuid.uuid4(), name=f"Org för {name}", kind=org_kind)
            session.add(organisation)
            await session.flush()
            unit = Unit(id=uuid.uuid4(), organisation_id=organisation.id, name=name, unit_type=unit_type)
            session.add(unit)
            return unit.id

    async def user(
        self, login: str, *, units: dict[uuid.UUID, str] | None = None, roles: list[str] | None = None
    ) -> tuple[uuid.UUID, str]:
        """Create a user with memberships {unit_id: role}; returns (user id, bearer token)."""
        from server.identity import service

        async with self.ctx.db.transaction() as session:
            user = await service.create_local_user(session, login, login.capitalize(), roles=roles)
            for unit_id, role in (units or {}).items():
                await service.set_membership(session, user, unit_id, role)
            token = await service.create_token_for(session, user, "test", None)
            return user.id, token


@pytest.fixture
def actors(ctx: AppContext) -> Actors:
    return Actors(ctx)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@pytest.fixture
async def browser():
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser build)."""
    require_service(Path(CHROMIUM).exists(), f"Debian chromium at {CHROMIUM}")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        instance = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            await instance.close()
