"""How messaging events reach clients: the plugin passes a `Notifier` that emits to socket.io rooms."""

from __future__ import annotations

from typing import Any, Protocol


class Notifier(Protocol):
    async def emit(self, event: str, data: dict[str, Any], rooms: list[str], skip: str | None = None) -> None:
        """Send to everybody in `rooms` except the connection `skip` (which already has the data)."""

    async def tell_nodes(self, topic: str, data: dict[str, Any]) -> None:
        """Run `topic`'s node handlers on every server node (server/core/realtime.py `tell_nodes`)."""


class NullNotifier:
    async def emit(self, event: str, data: dict[str, Any], rooms: list[str], skip: str | None = None) -> None:
        return None

    async def tell_nodes(self, topic: str, data: dict[str, Any]) -> None:
        return None
