"""Catalogue administration is not care access (issue 15, item 2, PDL): a directory admin cannot make
themselves a member of a ward (and so read its messages) without an explicit, audited membership-admin
grant for that organisation; unit admins add only users of their own organisation unless configured."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from server.core.context import CTX
from server.core.models import AuditEvent, Unit, User
from server.identity import service
from tests.conftest import bearer


async def grant(ctx, user_id: uuid.UUID, unit_id: uuid.UUID) -> None:
    async with ctx.db.transaction() as session:
        unit = await session.get(Unit, unit_id)
        user = await session.get(User, user_id)
        await service.grant_membership_admin(session, user, unit.organisation_id, granted=True, by="test")


async def test_a_directory_admin_needs_an_audited_grant_to_give_care_access(client, actors):
    ctx = client.app[CTX]
    ward = await actors.unit("Avdelning 3")
    admin_id, admin = await actors.user("katalog", roles=["directory_admin"])
    join_ward = f"/api/v1/units/{ward}/members/{admin_id}"
    refused = await client.put(join_ward, json={"role": "member"}, headers=bearer(admin))
    assert refused.status == 403
    assert (await client.get(f"/api/v1/units/{ward}/inbox", headers=bearer(admin))).status == 403

    await grant(ctx, admin_id, ward)
    async with ctx.db.transaction() as session:
        granted = (
            await session.execute(select(AuditEvent).where(AuditEvent.action == "identity.membership_admin_grant"))
        ).scalars().all()  # fmt: skip
    assert len(granted) == 1 and granted[0].object_id == str(admin_id)
    assert (await client.put(join_ward, json={"role": "member"}, headers=bearer(admin))).status == 200


async def test_unit_admins_add_only_users_of_their_own_organisation(client, actors):
    ctx = client.app[CTX]
    ward = await actors.unit("Avdelning 3")
    async with ctx.db.transaction() as session:
        organisation_id = (await session.get(Unit, ward)).organisation_id
        sibling = Unit(id=uuid.uuid4(), organisation_id=organisation_id, name="Avdelning 4", unit_type="ward")
        session.add(sibling)
    _, unit_admin = await actors.user("chef", units={ward: "unit_admin"})
    colleague_id, _ = await actors.user("kollega", units={sibling.id: "member"})  # same organisation
    outsider_id, _ = await actors.user("utomstaende", units={await actors.unit("Annan region"): "member"})

    for role in ("member", "unit_admin"):
        response = await client.put(
            f"/api/v1/units/{ward}/members/{outsider_id}", json={"role": role}, headers=bearer(unit_admin)
        )
        assert response.status == 403 and (await response.json())["code"] == "other_organisation", role
    allowed = await client.put(
        f"/api/v1/units/{ward}/members/{colleague_id}", json={"role": "member"}, headers=bearer(unit_admin)
    )
    assert allowed.status == 200

    ctx.settings.unit_admins_add_any_organisation = True  # configured: cross-organisation teams
    configured = await client.put(
        f"/api/v1/units/{ward}/members/{outsider_id}", json={"role": "member"}, headers=bearer(unit_admin)
    )
    assert configured.status == 200
