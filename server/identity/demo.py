"""Demo users for `brygga seed-demo` (idempotent)."""

from __future__ import annotations

from server.core.context import AppContext


async def seed_demo(ctx: AppContext) -> list[str]:
    return []
