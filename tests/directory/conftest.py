"""Directory fixtures: the demo directory and a directory administrator."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from server.core.models import Unit
from server.directory.seed import seed_demo
from tests.conftest import bearer

AV52 = "SE2321000016-7AV52"
VC_NACKA = "SE2321000016-9VCNA"
HT_NACKA = "SE2120003700-HTNACKA"
HSL_NACKA = "SE2120003700-HSLNACKA"


@pytest.fixture
async def demo(ctx):
    await seed_demo(ctx)
    return ctx


async def unit_id(ctx, hsa_id: str) -> uuid.UUID:
    async with ctx.db.transaction() as session:
        return (await session.execute(select(Unit.id).where(Unit.hsa_id == hsa_id))).scalar_one()


@pytest.fixture
async def admin(actors) -> dict[str, str]:
    _user, token = await actors.user("diradmin", roles=["directory_admin"])
    return bearer(token)


@pytest.fixture
async def staff(actors) -> dict[str, str]:
    _user, token = await actors.user("staffer")
    return bearer(token)
