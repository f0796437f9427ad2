"""Group commit: senders queue their jobs, one worker commits them in batches so that one fsync covers
many messages (each COMMIT on SQLite with synchronous=FULL is an fsync).

There is no waiting window: the worker takes what is queued, yields to the event loop a few times
so that senders already running can enqueue too, and commits as soon as a round adds nothing.
`commit` settles each job's future; when it raises, every job of the batch still waiting gets the
error that `failure` makes of it, and the worker goes on with the next batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

from server.core.db import log_failure

log = logging.getLogger("brygga.messaging")

ROUNDS = 8  # at most this many yields to the event loop while a batch fills


class Job(Protocol):
    @property
    def future(self) -> asyncio.Future[Any]: ...


J = TypeVar("J", bound=Job)


class Batcher(Generic[J]):
    def __init__(
        self,
        commit: Callable[[list[J]], Awaitable[None]],
        *,
        limit: Callable[[], int],
        failure: Callable[[Exception], Exception],
        what: str = "batch",
    ) -> None:
        self.commit = commit
        self.limit = limit
        self.failure = failure
        self.what = what
        self._queue: asyncio.Queue[J] | None = None
        self._worker: asyncio.Task[None] | None = None

    def start(self, name: str) -> asyncio.Task[None]:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run(self._queue), name=name)
        return self._worker

    async def submit(self, job: J) -> None:
        """Queue `job` (or, before `start`, commit it alone here); its future says how it went."""
        if self._queue is None:
            await self.commit([job])
        else:
            await self._queue.put(job)

    async def _run(self, queue: asyncio.Queue[J]) -> None:
        while True:
            batch = [await queue.get()]
            limit = self.limit()
            for _round in range(ROUNDS):
                while len(batch) < limit and not queue.empty():
                    batch.append(queue.get_nowait())
                if len(batch) >= limit:
                    break
                await asyncio.sleep(0)
                if queue.empty():
                    break
            try:
                await self.commit(batch)
            except Exception as exc:
                log_failure(log, f"{self.what} failed", exc)
                problem = self.failure(exc)
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(problem)
