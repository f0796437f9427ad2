"""Demo users for `brygga seed-demo` (idempotent), placed in the demo units by HSA-id.

Three of them are published in the directory (FHIR Practitioner/PractitionerRole) with their title as
role title, once: an administrator's later decision stands. The directory's seed normally creates the
units first; if one is missing, a minimal organisation and unit with that HSA-id are created so identity
works on its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth import accounts
from server.core.app_keys import envelope_for
from server.core.context import AppContext
from server.core.models import Membership, Organisation, Unit
from server.directory import practitioners
from server.identity import service, store

DEMO_PASSWORD = "brygga-demo-2026"  # noqa: S105 - printed by `make run`; demo data only


@dataclass(frozen=True)
class DemoUnit:
    hsa_id: str
    name: str
    unit_type: str
    org_number: str
    org_name: str
    org_kind: str


@dataclass(frozen=True)
class DemoUser:
    login: str
    name: str
    title: str
    totp_secret: str  # fixed so the printed instructions work on every fresh demo
    unit: str | None = None
    unit_role: str = "member"
    roles: tuple[str, ...] = ()
    # Published in the directory (FHIR Practitioner/PractitionerRole) with the title as role title.
    public: bool = False
    role_code: str | None = None


REGION = ("2321000016", "Region Stockholm", "region")
NACKA = ("2120003700", "Nacka kommun", "municipality")

UNITS = {
    unit.hsa_id: unit
    for unit in (
        DemoUnit("SE2321000016-7AV52", "Avdelning 52, Medicinkliniken, Södersjukhuset", "ward", *REGION),
        DemoUnit("SE2321000016-9VCNA", "Nacka vårdcentral", "primary_care", *REGION),
        DemoUnit("SE2120003700-HTNACKA", "Hemtjänst Nacka centrum", "home_care", *NACKA),
        DemoUnit("SE2120003700-HSLNACKA", "Kommunal hälso- och sjukvård Nacka", "municipal_health_care", *NACKA),
    )
}

USERS = (
    DemoUser(
        "sjukskoterska",
        "Sara Sjöberg",
        "Sjuksköterska",
        "BRYGGADEMOSARASJOBERGTOTPKEYSSKA",
        "SE2321000016-7AV52",
        public=True,
        role_code="nurse",
    ),
    DemoUser(
        "lakare",
        "Leo Lind",
        "Läkare",
        "BRYGGADEMOLEOLINDTOTPKEYLAKAREXX",
        "SE2321000016-9VCNA",
        public=True,
        role_code="doctor",
    ),
    DemoUser(
        "handlaggare",
        "Hanna Holm",
        "Biståndshandläggare",
        "BRYGGADEMOHANNAHOLMTOTPKEYHANDLA",
        "SE2120003700-HTNACKA",
        public=True,
    ),
    DemoUser(
        "sskkommun",
        "Kim Karlsson",
        "Sjuksköterska, kommunal hälso- och sjukvård",
        "BRYGGADEMOKIMKARLSSONTOTPKEYKOMM",
        "SE2120003700-HSLNACKA",
        unit_role="unit_admin",
    ),
    DemoUser(
        "katalogadmin",
        "Karin Katalog",
        "Katalogansvarig",
        "BRYGGADEMOKARINKATALOGTOTPKEYADM",
        roles=("directory_admin",),
    ),
    DemoUser("granskare", "Gustav Granskare", "Logggranskare", "BRYGGADEMOGUSTAVGRANSKARETOTPKEY", roles=("auditor",)),
    DemoUser(
        "analytiker",
        "Anna Analytiker",
        "Uppföljare, Storsthlm",
        "BRYGGADEMOANNAANALYTIKERTOTPKEYX",
        roles=("followup",),
    ),
)


async def demo_unit(session: AsyncSession, hsa_id: str) -> uuid.UUID:
    """The unit with this HSA-id, created minimally (with its organisation) when the directory has none."""
    unit = (await session.execute(select(Unit).where(Unit.hsa_id == hsa_id))).scalar_one_or_none()
    if unit is not None:
        return unit.id
    spec = UNITS[hsa_id]
    org = (
        await session.execute(select(Organisation).where(Organisation.org_number == spec.org_number))
    ).scalar_one_or_none()
    if org is None:
        org = Organisation(id=uuid.uuid4(), name=spec.org_name, kind=spec.org_kind, org_number=spec.org_number)
        session.add(org)
        await session.flush()
    unit = Unit(id=uuid.uuid4(), organisation_id=org.id, name=spec.name, unit_type=spec.unit_type, hsa_id=hsa_id)
    session.add(unit)
    await session.flush()
    return unit.id


async def publish_once(
    session: AsyncSession, user_id: uuid.UUID, unit_id: uuid.UUID, spec: DemoUser, now: datetime
) -> None:
    """Publish a demo membership unless someone has decided on it before (a later unpublishing stays)."""
    membership = await session.get(Membership, (user_id, unit_id))
    if membership is None or membership.public_id is not None:
        return
    practitioners.set_publication(membership, True, spec.title, spec.role_code)
    await session.flush()
    await practitioners.sync(session, user_ids=[user_id], now=now)


async def seed_demo(ctx: AppContext) -> list[str]:
    now = ctx.clock()
    envelope = await envelope_for(ctx)
    async with ctx.db.transaction() as session:
        for spec in USERS:
            user = await store.get_user_by_login(session, spec.login)
            if user is None:
                user = await service.create_local_user(
                    session, spec.login, spec.name, roles=list(spec.roles), title=spec.title
                )
                await accounts.set_password(session, user, DEMO_PASSWORD, now)
                await accounts.set_totp(session, envelope, user, spec.totp_secret, now)
            if spec.unit is not None:
                unit_id = await demo_unit(session, spec.unit)
                if (await store.unit_roles(session, user.id)).get(unit_id) != spec.unit_role:
                    await service.set_membership(session, user, unit_id, spec.unit_role)
                if spec.public:
                    await publish_once(session, user.id, unit_id, spec, now)
    lines = [
        "Demo logins (built-in provider; password + one-time code):",
        f"  password for every demo user: {DEMO_PASSWORD}",
        "  one-time code: add the user's TOTP key to an authenticator app, or print the current code with",
        '    .venv/bin/python -c "import pyotp,sys; print(pyotp.TOTP(sys.argv[1]).now())" <TOTP key>',
    ]
    for spec in USERS:
        where = f"{spec.unit_role} of {spec.unit}" if spec.unit else ", ".join(spec.roles)
        lines.append(f"  {spec.login:14} {spec.name:18} TOTP key {spec.totp_secret}  ({where})")
    return lines
