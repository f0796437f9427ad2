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


PUBLICATION = "/api/v1/units/{unit}/members/{user}/publication"


async def publish(client, headers: dict[str, str], unit: uuid.UUID, user: uuid.UUID, **body) -> dict:
    """PUT a membership's publication (public unless told otherwise); returns the answer."""
    path = PUBLICATION.format(unit=unit, user=user)
    response = await client.put(path, json={"public": True, **body}, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


@pytest.fixture
async def nurse(demo, actors, client, admin) -> dict:
    """Anna Ekström of Avd 52 (HSA-id SE2321000016-AEK1), published as Sjuksköterska (code nurse)."""
    from server.core.models import User

    ward = await unit_id(demo, AV52)
    user_id, _token = await actors.user("anna", units={ward: "member"})
    async with demo.db.transaction() as session:
        user = await session.get(User, user_id)
        user.display_name, user.hsa_id = "Anna Ekström", "SE2321000016-AEK1"
    return await publish(client, admin, ward, user_id, role_title="Sjuksköterska", role_code="nurse")
