"""Authorisation matrix: every HTTP operation and socket.io event × every role, expected status per cell.

The table is data: (operation, variant, setup, expected status per role). `test_every_operation_is_in_the_table`
fails when a route or event exists without a row, so each domain adds rows here when it adds routes
(docs/identity.md explains how).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from server.core.models import AuditEvent, User
from server.health.routes import OPENAPI_KEY
from server.identity import service
from server.migrate import upgrade
from server.settings import Settings
from tests.conftest import bearer

ROLES = ("anonymous", "member_a", "member_b", "unit_admin", "directory_admin", "auditor", "followup")
CONNECTION_EVENTS = {"connect", "disconnect", "*"}


@dataclass
class World:
    """Unit A and unit B; one user per role (unit_admin administers unit A); a target user in unit A.

    followup is the regional analyst who follows up deviation reports."""

    ctx: Any
    actors: Any
    client: Any = None
    cache: dict[str, Any] = field(default_factory=dict)
    unit_a: uuid.UUID = field(default_factory=uuid.uuid4)
    unit_b: uuid.UUID = field(default_factory=uuid.uuid4)
    tokens: dict[str, str] = field(default_factory=dict)
    users: dict[str, uuid.UUID] = field(default_factory=dict)

    async def build(self) -> World:
        self.unit_a = await self.actors.unit("Enhet A")
        self.unit_b = await self.actors.unit("Enhet B")
        specs = {
            "member_a": {"units": {self.unit_a: "member"}},
            "member_b": {"units": {self.unit_b: "member"}},
            "unit_admin": {"units": {self.unit_a: "unit_admin"}},
            "directory_admin": {"roles": ["directory_admin"]},
            "auditor": {"roles": ["auditor"]},
            "followup": {"roles": ["followup"]},  # regional follow-up of deviation reports
            "target": {"units": {self.unit_a: "member"}},
        }
        for role, spec in specs.items():
            self.users[role], self.tokens[role] = await self.actors.user(role.replace("_", ""), **spec)
        return self

    def headers(self, role: str) -> dict[str, str]:
        return {} if role == "anonymous" else bearer(self.tokens[role])

    async def ensure_target_in_a(self) -> None:
        async with self.ctx.db.transaction() as session:
            user = await session.get(User, self.users["target"])
            await service.set_membership(session, user, self.unit_a, "member")

    async def fresh_token_of(self, role: str) -> uuid.UUID:
        from server.identity.tokens import create_token

        owner = self.users.get(role, self.users["target"])
        async with self.ctx.db.transaction() as session:
            token, _secret = await create_token(session, owner, "matrix")
            return token.id


Request = tuple[str, str, dict[str, Any] | None]  # method, path, json body
Setup = Callable[[World, str], Awaitable[Request]]


def fixed(method: str, path: str, body: dict[str, Any] | None = None) -> Setup:
    async def setup(world: World, role: str) -> Request:
        return method, path, body

    return setup


def allow(status: int, *roles: str, otherwise: int = 403, anonymous: int = 401) -> dict[str, int]:
    return {role: status if role in roles else (anonymous if role == "anonymous" else otherwise) for role in ROLES}


EVERYONE = ROLES[1:]
ADMINS_OF_A = ("unit_admin", "directory_admin")
MEMBER_ADMINS_OF_A = ("unit_admin",)  # not directory admins: memberships give access to care information (PDL)


@dataclass
class Case:
    operation: str  # "GET /api/v1/units/{unit_id}/members" as in OpenAPI, or "event <name>"
    variant: str
    setup: Setup
    expect: dict[str, int]


def unit_path(template: str, unit: str, method: str, body: dict[str, Any] | None = None) -> Setup:
    async def setup(world: World, role: str) -> Request:
        await world.ensure_target_in_a()
        unit_id = world.unit_a if unit == "A" else world.unit_b
        return method, template.format(unit_id=unit_id, user_id=world.users["target"]), body

    return setup


def own_token(method: str) -> Setup:
    async def setup(world: World, role: str) -> Request:
        return method, f"/api/v1/tokens/{await world.fresh_token_of(role)}", None

    return setup


def foreign_token(method: str) -> Setup:
    async def setup(world: World, role: str) -> Request:
        return method, f"/api/v1/tokens/{await world.fresh_token_of('target')}", None

    return setup


MEMBERS = "/api/v1/units/{unit_id}/members"
MEMBER = "/api/v1/units/{unit_id}/members/{user_id}"
PUBLICATION = MEMBER + "/publication"
PUBLISH = {"public": True, "role_title": "Sjuksköterska"}

CASES: list[Case] = [
    Case("GET /healthz", "", fixed("GET", "/healthz"), allow(200, *ROLES)),
    Case("GET /readyz", "", fixed("GET", "/readyz"), allow(200, *ROLES)),
    Case("GET /api/v1/me", "", fixed("GET", "/api/v1/me"), allow(200, *EVERYONE)),
    Case("GET /api/v1/session", "public, never 401", fixed("GET", "/api/v1/session"), allow(200, *ROLES)),
    Case("POST /api/v1/session/logout", "", fixed("POST", "/api/v1/session/logout"), allow(200, *EVERYONE)),
    Case(
        "POST /api/v1/session/logout-everywhere", "",
        fixed("POST", "/api/v1/session/logout-everywhere"), allow(200, *EVERYONE),
    ),
    Case("GET /api/v1/tokens", "own tokens only", fixed("GET", "/api/v1/tokens"), allow(200, *EVERYONE)),
    Case("POST /api/v1/tokens", "", fixed("POST", "/api/v1/tokens", {"name": "m"}), allow(201, *EVERYONE)),
    Case("DELETE /api/v1/tokens/{token_id}", "own token", own_token("DELETE"), allow(204, *EVERYONE)),
    Case(
        "DELETE /api/v1/tokens/{token_id}", "someone else's token",
        foreign_token("DELETE"), allow(404, otherwise=404),
    ),
    Case("GET " + MEMBERS, "unit A", unit_path(MEMBERS, "A", "GET"), allow(200, *MEMBER_ADMINS_OF_A)),
    Case("GET " + MEMBERS, "unit B", unit_path(MEMBERS, "B", "GET"), allow(200)),
    Case(
        "PUT " + MEMBER, "unit A", unit_path(MEMBER, "A", "PUT", {"role": "member"}), allow(200, *MEMBER_ADMINS_OF_A)
    ),
    Case(
        "PUT " + MEMBER, "unit B", unit_path(MEMBER, "B", "PUT", {"role": "member"}), allow(200)
    ),
    Case("DELETE " + MEMBER, "unit A", unit_path(MEMBER, "A", "DELETE"), allow(204, *MEMBER_ADMINS_OF_A)),
    Case("DELETE " + MEMBER, "unit B, not a member", unit_path(MEMBER, "B", "DELETE"), allow(404)),
    Case(  # publishing gives no access to care information: directory administrators may too
        "PUT " + PUBLICATION, "unit A", unit_path(PUBLICATION, "A", "PUT", PUBLISH), allow(200, *ADMINS_OF_A)
    ),
    Case(
        "PUT " + PUBLICATION, "unit B, not a member", unit_path(PUBLICATION, "B", "PUT", PUBLISH),
        allow(404, "directory_admin"),
    ),
]  # fmt: skip


from tests.identity.matrix_domains import DOMAIN_CASES, Raw, emit_event  # noqa: E402

CASES += DOMAIN_CASES


@pytest.fixture(scope="module")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated data directory for the module; each test gets a copy (migrating per row is slow)."""
    template = Settings(data_dir=tmp_path_factory.mktemp("matrix") / "data")
    template.data_dir.mkdir(parents=True)
    asyncio.run(upgrade(template.effective_database_url))
    return template.data_dir


@pytest.fixture
def migrated(settings: Settings, migrated_template: Path) -> Settings:
    shutil.copytree(migrated_template, settings.data_dir)
    return settings


@pytest.fixture
async def world(ctx, actors, client) -> World:
    return await World(ctx, actors, client).build()


@pytest.mark.parametrize("case", CASES, ids=[f"{case.operation} [{case.variant}]" for case in CASES])
async def test_matrix(client, world, case):
    observed: dict[str, int | str] = {}
    for role in ROLES:
        method, path, body = await case.setup(world, role)
        if method == "EVENT":
            observed[role] = await emit_event(world, role, path, body)
            continue
        if isinstance(body, Raw):
            response = await client.request(
                method, path, data=body.data, headers={**world.headers(role), **body.headers}
            )
        else:
            response = await client.request(method, path, json=body, headers=world.headers(role))
        observed[role] = response.status
    assert observed == case.expect


def registered_operations(app, ctx) -> set[str]:
    operations = {
        f"{method.upper()} {path}" for path, methods in app[OPENAPI_KEY]["paths"].items() for method in methods
    }
    events = {f"event {name}" for name in ctx.sio.handlers.get("/", {}) if name not in CONNECTION_EVENTS}
    return operations | events


async def test_every_operation_and_event_is_in_the_table(client, ctx):
    registered = registered_operations(client.app, ctx)
    covered = {case.operation for case in CASES}
    assert registered - covered == set(), "add rows to tests/identity/test_authz_matrix.py (docs/identity.md)"
    assert covered - registered == set(), "the table names operations that no longer exist"


async def test_denied_member_management_is_audited(client, world, ctx):
    from sqlalchemy import select

    path = MEMBERS.format(unit_id=world.unit_a)
    assert (await client.get(path, headers=world.headers("member_b"))).status == 403
    async with ctx.db.transaction() as session:
        rows = (await session.execute(select(AuditEvent).where(AuditEvent.outcome == "denied"))).scalars().all()
    assert [(row.actor_user_id, row.object_id) for row in rows] == [(world.users["member_b"], str(world.unit_a))]
