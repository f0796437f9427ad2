"""The same guarantees on PostgreSQL: concurrent idempotent sends, ordered sync, escalation timer rows."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.core.context import CTX
from server.messaging.events import MESSAGING
from server.migrate import upgrade
from tests.conftest import Actors, bearer


@pytest.mark.postgres
async def test_concurrent_sends_and_sync_on_postgresql(pg_database, settings):
    settings.database_url = pg_database
    await upgrade(pg_database)
    app = create_app(settings)
    async with TestClient(TestServer(app)) as client:
        actors = Actors(app[CTX])
        ward, home = await actors.unit("Avdelning 3"), await actors.unit("Hemtjänst Nacka")
        _anna, anna = await actors.user("anna", units={ward: "member"})
        _bo, bo = await actors.user("bo", units={home: "member"})
        created = await client.post(
            "/api/v1/conversations",
            headers=bearer(anna),
            json={"subject": "Utskrivning", "from_unit_id": str(ward), "unit_ids": [str(home)]},
        )
        conversation = (await created.json())["id"]
        client_ids = [str(uuid.uuid4()) for _ in range(30)]

        async def send(client_id: str, number: int) -> tuple[int, str]:
            response = await client.post(
                f"/api/v1/conversations/{conversation}/messages",
                headers=bearer(anna),
                json={"client_id": client_id, "body": f"nr {number}", "priority": "urgent"},
            )
            return response.status, (await response.json())["id"]

        # every client_id twice, concurrently: exactly one 201 per id, the resend gets 200 and the same id
        results = await asyncio.gather(*(send(cid, n) for n, cid in enumerate(client_ids + client_ids)))
        first, second = results[:30], results[30:]
        assert sorted(status for status, _ in results).count(201) == 30
        assert [mid for _, mid in first] == [mid for _, mid in second]

        cursor, seen = 0, []
        while True:
            page = await (
                await client.get(f"/api/v1/conversations/sync?since={cursor}&limit=7", headers=bearer(bo))
            ).json()
            seen += [m["id"] for m in page["messages"]]
            cursor = page["cursor"]
            if not page["has_more"]:
                break
        assert sorted(seen) == sorted({mid for _, mid in first}) and len(seen) == 30
        assert await app[CTX].need(MESSAGING).next_due() is not None
        inbox = await (await client.get(f"/api/v1/units/{home}/inbox", headers=bearer(bo))).json()
        assert inbox["unacknowledged"] == 30
