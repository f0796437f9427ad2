"""NUL and other control characters in subjects, names and bodies (issue 15, item 10) are refused alike on
SQLite and PostgreSQL (which refuses NUL in text by itself: a 500 before), over REST and socket.io."""

from __future__ import annotations

import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.core.context import CTX
from server.migrate import upgrade
from tests.conftest import Actors, bearer


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, settings) -> str:
    return request.getfixturevalue("pg_database") if request.param == "postgresql" else ""


@pytest.fixture
async def backend(database_url, settings):
    settings.database_url = database_url
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await upgrade(settings.effective_database_url)
    app = create_app(settings)
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_control_characters_are_refused_on_both_backends(backend):
    client = backend
    actors = Actors(client.app[CTX])
    ward, home = await actors.unit("Avdelning 3"), await actors.unit("Hemtjänst Nacka")
    _, anna = await actors.user("anna", units={ward: "member"})

    async def post(path: str, body: dict, token: str | None = anna):
        response = await client.post(path, json=body, headers=bearer(token) if token else {})
        return response.status, await response.json()

    conversation = {"from_unit_id": str(ward), "unit_ids": [str(home)]}
    for subject in ("Utskrivning\x00", "Utskrivning\x07", "Ut\x1bskrivning", "Utskrivning\x7f"):
        status, problem = await post("/api/v1/conversations", {**conversation, "subject": subject})
        assert (status, problem["code"]) == (422, "control_characters"), subject
    status, created = await post("/api/v1/conversations", {**conversation, "subject": "Utskrivning"})
    assert status == 201
    messages = f"/api/v1/conversations/{created['id']}/messages"
    status, problem = await post(messages, {"client_id": str(uuid.uuid4()), "body": "Läkemedel\x00lista"})
    assert (status, problem["code"]) == (422, "control_characters")
    status, sent = await post(messages, {"client_id": str(uuid.uuid4()), "body": "Rad 1\nRad 2\tmed tabb\r\n"})
    assert status == 201, sent  # tab, newline and carriage return are text
    status, problem = await post("/api/v1/tokens", {"name": "skript\x00"})
    assert (status, problem["code"]) == (422, "control_characters")
    status, problem = await post(
        "/api/v1/guest-links/redeem", {"link": "x" * 30, "name": "Gun\x00", "code": "123456"}, None
    )
    assert (status, problem["code"]) == (422, "control_characters")
    response = await client.get("/api/v1/organisations?q=a%00b", headers=bearer(anna))
    assert response.status == 422 and (await response.json())["code"] == "control_characters"
