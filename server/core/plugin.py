"""How a domain plugs into the app: routes, socket.io events, background tasks and CLI commands."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from server.core.api import ApiRouter
from server.core.context import AppContext
from server.core.realtime import EventRouter

CleanupContext = Callable[[AppContext], AsyncIterator[None]]


@dataclass
class Plugin:
    name: str
    api: ApiRouter | None = None
    events: EventRouter | None = None
    # Async generators run inside the app's cleanup context: code before `yield` starts
    # services or background tasks, code after it stops them.
    lifecycle: list[CleanupContext] = field(default_factory=list)
    # Extra aiohttp routes that are not JSON API operations (pages, FHIR, uploads).
    setup_routes: Callable[[web.Application], None] | None = None
    cli: Callable[[argparse._SubParsersAction], None] | None = None  # type: ignore[type-arg]
    # Demo data for `brygga seed-demo`; returns lines to print (e.g. demo logins). Must be idempotent.
    seed_demo: Callable[[AppContext], Awaitable[list[str]]] | None = None
