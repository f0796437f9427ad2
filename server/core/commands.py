"""What domain CLI commands share: a user-mistake error and an AppContext for one command's work.

Here, not in `server/cli.py`, so a domain's `cli.py` never imports the command line that mounts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from server.core.context import AppContext
from server.core.db import Database
from server.settings import Settings


class CommandError(Exception):
    """A user mistake on the command line: printed without a trace, exit code 2."""


def cli_context(settings: Settings) -> AppContext:
    """An AppContext without a socket.io server, for commands that only touch the database."""
    return AppContext(settings=settings, db=Database(settings.effective_database_url), sio=None)


def run_with_context(settings: Settings, work: Callable[[AppContext], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        ctx = cli_context(settings)
        try:
            return await work(ctx)
        finally:
            await ctx.db.close()

    return asyncio.run(main())
