"""Background tasks that live exactly as long as a block (a lifecycle, a test)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

_DETACHED: set[asyncio.Task[Any]] = set()  # the loop keeps only weak references to tasks


def detached(work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Run `work` as a fire-and-forget task, referenced until it is done (else it may be collected)."""
    task = asyncio.get_running_loop().create_task(work)
    _DETACHED.add(task)
    task.add_done_callback(_DETACHED.discard)
    return task


@asynccontextmanager
async def running(work: Coroutine[Any, Any, Any], name: str) -> AsyncIterator[asyncio.Task[Any]]:
    """Run `work` as a task inside the block; on the way out cancel it and wait until it has stopped."""
    task = asyncio.get_running_loop().create_task(work, name=name)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
