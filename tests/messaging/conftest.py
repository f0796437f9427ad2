"""Messaging fixtures: two units with members, an outsider, and socket.io clients that record events."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
import socketio

from tests.conftest import bearer


def url_of(client) -> str:
    return str(client.make_url("/")).rstrip("/")


@dataclass
class Person:
    user_id: uuid.UUID
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


@dataclass
class World:
    ward: uuid.UUID  # Avdelning 12, sender side
    home_care: uuid.UUID  # Hemtjänst, recipient unit
    other: uuid.UUID  # an unrelated unit
    anna: Person  # nurse on the ward
    bertil: Person  # home care
    britta: Person  # home care, colleague of Bertil
    cecilia: Person  # works in the unrelated unit
    admin: Person  # unit admin of home care


@pytest.fixture
async def world(actors) -> World:
    ward = await actors.unit("Avdelning 12")
    home_care = await actors.unit("Hemtjänst Solna", unit_type="home_care", org_kind="municipality")
    other = await actors.unit("Vårdcentral Norr", unit_type="primary_care")
    people = {}
    for login, units in {
        "anna": {ward: "member"},
        "bertil": {home_care: "member"},
        "britta": {home_care: "member"},
        "cecilia": {other: "member"},
        "hadmin": {home_care: "unit_admin"},
    }.items():
        user_id, token = await actors.user(login, units=units)
        people[login] = Person(user_id, token)
    return World(
        ward, home_care, other, people["anna"], people["bertil"], people["britta"], people["cecilia"], people["hadmin"]
    )


@dataclass
class Listener:
    """A connected socket.io client that keeps every server→client event it receives."""

    sio: socketio.AsyncClient
    events: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))

    async def call(self, event: str, data: Any = None, timeout: float = 10) -> Any:
        return await self.sio.call(event, data, timeout=timeout)

    async def send(self, conversation_id: str, body: str, **extra: Any) -> Any:
        """`message:send` with a fresh client_id; returns the ack."""
        payload = {"conversation_id": conversation_id, "client_id": str(uuid.uuid4()), "body": body, **extra}
        return await self.call("message:send", payload)

    async def wait_for(self, event: str, predicate=lambda _data: True, timeout: float = 5) -> Any:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for data in self.events[event]:
                if predicate(data):
                    return data
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {event} event matching within {timeout}s; got {self.events[event]!r}")


@pytest.fixture
async def connect(client):
    opened: list[socketio.AsyncClient] = []

    async def open_one(person: Person) -> Listener:
        sio = socketio.AsyncClient(reconnection=False)
        listener = Listener(sio)
        for name in ("message:new", "message:updated", "receipt", "typing", "escalation", "inbox"):
            sio.on(name, (lambda n: lambda data: listener.events[n].append(data))(name))
        await sio.connect(url_of(client), auth={"token": person.token}, transports=["websocket"], wait_timeout=10)
        opened.append(sio)
        return listener

    yield open_one
    for sio in opened:
        if sio.connected:
            await sio.disconnect()


async def unit_conversation(client, world: World, **extra) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/conversations",
        json={
            "subject": "Utskrivning 24/11",
            "case_ref": "LUS-2026-0042",
            "from_unit_id": str(world.ward),
            "unit_ids": [str(world.home_care)],
            **extra,
        },
        headers=world.anna.headers,
    )
    assert response.status == 201, await response.text()
    return await response.json()
