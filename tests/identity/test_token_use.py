"""A token's last use is recorded (shown in the token list) without authentication writing anything."""

from __future__ import annotations

import asyncio

from tests.conftest import bearer


async def test_last_use_is_recorded_after_the_request(client, actors):
    _, token = await actors.user("tove")
    listed = await (await client.get("/api/v1/tokens", headers=bearer(token))).json()
    for _ in range(50):
        listed = await (await client.get("/api/v1/tokens", headers=bearer(token))).json()
        if listed["items"][0]["last_used_at"]:
            break
        await asyncio.sleep(0.05)
    assert listed["items"][0]["last_used_at"] is not None
