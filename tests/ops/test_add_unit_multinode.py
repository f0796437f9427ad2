"""Issue 16 item 3 on two nodes (PostgreSQL + Redis): a unit added on node A takes part on node B at once.

Node B has the conversation's participants cached (the nurse read it there). The home-care officer adds
primary care on node A. Right after, on node B, the nurse's next message reaches the doctor of primary
care live and counts in its inbox (node B must have dropped its cached participants, told over the
socket.io fan-out), and the doctor reads the history and replies there.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import pytest
import socketio

from server.core.app_keys import envelope_for
from server.core.commands import cli_context
from server.core.db import Database
from server.core.models import Organisation, Unit
from server.identity import service as identity
from server.migrate import upgrade
from server.settings import Settings
from tests.conftest import REDIS_URL, bearer, port_open, require_service
from tests.ops.nodes import shut_down, start_node

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

# A Redis database of its own, so this fan-out never meets other tests' nodes.
ADD_UNIT_REDIS_URL = REDIS_URL.rsplit("/", 1)[0] + "/7"


async def world(database_url: str) -> tuple[dict[str, uuid.UUID], dict[str, str]]:
    """Three units (ward, home care, primary care) and one member of each with a token."""
    db = Database(database_url)
    units = {"ward": uuid.uuid4(), "home": uuid.uuid4(), "primary": uuid.uuid4()}
    tokens: dict[str, str] = {}
    try:
        async with db.transaction() as session:
            organisation = Organisation(id=uuid.uuid4(), name="Region", kind="region")
            session.add(organisation)
            await session.flush()
            names = {"ward": "Avdelning 64", "home": "Hemtjänst Solna", "primary": "Vårdcentral Norr"}
            session.add_all(
                Unit(id=units[k], organisation_id=organisation.id, name=names[k], unit_type="ward") for k in units
            )
            await session.flush()
            for login, unit in (("nurse", "ward"), ("officer", "home"), ("doctor", "primary")):
                user = await identity.create_local_user(session, login, login.capitalize())
                await identity.set_membership(session, user, units[unit], "member")
                tokens[login] = await identity.create_token_for(session, user, "test", None)
    finally:
        await db.close()
    return units, tokens


async def rest(http: aiohttp.ClientSession, method: str, url: str, token: str, body: Any = None) -> Any:
    async with http.request(method, url, json=body, headers=bearer(token)) as response:
        assert response.status < 300, f"{method} {url}: {response.status} {await response.text()}"
        return await response.json()


async def test_a_unit_added_on_node_a_reads_writes_and_gets_events_on_node_b(tmp_path, pg_database):
    require_service(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    await upgrade(pg_database)
    keys = Settings(data_dir=tmp_path, database_url=pg_database)
    ctx = cli_context(keys)
    await envelope_for(ctx)  # the shared key files, made once before the nodes start
    await ctx.db.close()
    units, tokens = await world(pg_database)
    env = {"BRYGGA_KEY_FILE": str(keys.effective_key_file), "BRYGGA_INDEX_KEY_FILE": str(keys.effective_index_key_file)}
    node_a = await start_node(tmp_path, "a", pg_database, ADD_UNIT_REDIS_URL, env)
    node_b = await start_node(tmp_path, "b", pg_database, ADD_UNIT_REDIS_URL, env)
    clients: list[socketio.AsyncClient] = []
    events: dict[str, list[dict[str, Any]]] = {"doctor": [], "nurse": []}
    try:
        async with aiohttp.ClientSession() as http:
            conversation = await rest(http, "POST", f"{node_a.url}/api/v1/conversations", tokens["nurse"], {
                "subject": "Utskrivning", "from_unit_id": str(units["ward"]), "unit_ids": [str(units["home"])],
            })  # fmt: skip
            cid = conversation["id"]
            on_b = f"{node_b.url}/api/v1/conversations/{cid}"
            first = await rest(http, "POST", on_b + "/messages", tokens["nurse"], {
                "client_id": str(uuid.uuid4()), "body": "Hej hemtjänsten",
            })  # fmt: skip
            await rest(http, "GET", on_b, tokens["nurse"])  # node B now has the participants cached
            for who in ("doctor", "nurse"):
                sio = socketio.AsyncClient(reconnection=False)
                clients.append(sio)
                sio.on("message:new", lambda data, who=who: events[who].append(data))
                await sio.connect(node_b.url, auth={"token": tokens[who]}, transports=["websocket"])

            added = await rest(http, "POST", f"{node_a.url}/api/v1/conversations/{cid}/units", tokens["officer"], {
                "unit_ids": [str(units["primary"])],
            })  # fmt: skip
            assert str(units["primary"]) in {p["unit_id"] for p in added["participants"]}

            # Right away, on node B: the nurse writes; the doctor gets it live and as a receipt of his unit.
            sent = await rest(http, "POST", on_b + "/messages", tokens["nurse"], {
                "client_id": str(uuid.uuid4()), "body": "Välkommen vårdcentralen",
            })  # fmt: skip
            assert str(units["primary"]) in {r["unit_id"] for r in sent["recipients"]}
            for _ in range(100):
                if any(m["id"] == sent["id"] for m in events["doctor"]):
                    break
                await asyncio.sleep(0.05)
            assert any(m["id"] == sent["id"] for m in events["doctor"]), "no live message:new on node B"
            assert any(m.get("system", {}) and m["system"]["kind"] == "unit_added" for m in events["doctor"])
            inbox = await rest(http, "GET", f"{node_b.url}/api/v1/units/{units['primary']}/inbox", tokens["doctor"])
            counted = {c["conversation_id"]: c["unread"] for c in inbox["conversations"]}
            assert counted.get(cid, 0) >= 2  # the notice and the nurse's message

            # The doctor reads the history and replies on node B; the nurse gets the reply live.
            history = await rest(http, "GET", on_b + "/messages", tokens["doctor"])
            assert first["id"] in [m["id"] for m in history["items"]]
            reply = await rest(http, "POST", on_b + "/messages", tokens["doctor"], {
                "client_id": str(uuid.uuid4()), "body": "Tack, vi är med",
            })  # fmt: skip
            for _ in range(100):
                if any(m["id"] == reply["id"] for m in events["nurse"]):
                    break
                await asyncio.sleep(0.05)
            assert any(m["id"] == reply["id"] for m in events["nurse"])
    finally:
        logs = await shut_down(clients, [node_a, node_b])
    assert "Traceback" not in logs, logs[-3000:]
