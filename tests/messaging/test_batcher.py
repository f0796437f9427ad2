"""The group-commit batcher on its own (no server, no database): what one commit covers, and errors."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from server.messaging.batcher import Batcher


@dataclass
class Job:
    name: str
    future: asyncio.Future[str] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Failed(Exception):
    pass


class Recorder:
    """A commit that records each batch and settles its jobs (or fails, when told to)."""

    def __init__(self, fail_when: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.fail_when = fail_when

    async def __call__(self, batch: list[Job]) -> None:
        self.batches.append([job.name for job in batch])
        for job in batch:
            if job.name == self.fail_when:
                raise RuntimeError("disk full")
            job.future.set_result(f"stored {job.name}")


def batcher(commit: Recorder, limit: int = 100) -> Batcher[Job]:
    return Batcher(commit, limit=lambda: limit, failure=lambda exc: Failed(str(exc)))


async def submit(batcher: Batcher[Job], name: str) -> str:
    job = Job(name)
    await batcher.submit(job)
    return await job.future


async def stopped(worker: asyncio.Task[None]) -> None:
    worker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await worker


async def test_concurrent_submissions_share_one_commit() -> None:
    commit = Recorder()
    sends = batcher(commit)
    worker = sends.start("test-send")
    results = await asyncio.gather(*(submit(sends, f"m{i}") for i in range(5)))
    assert results == [f"stored m{i}" for i in range(5)]
    assert commit.batches == [["m0", "m1", "m2", "m3", "m4"]]  # one commit (one fsync) for all five
    await stopped(worker)


async def test_a_batch_holds_at_most_the_limit() -> None:
    commit = Recorder()
    sends = batcher(commit, limit=4)
    worker = sends.start("test-send")
    await asyncio.gather(*(submit(sends, f"m{i}") for i in range(10)))
    assert [len(batch) for batch in commit.batches] == [4, 4, 2]
    assert [name for batch in commit.batches for name in batch] == [f"m{i}" for i in range(10)]  # in order
    await stopped(worker)


async def test_a_lone_submission_is_committed_without_a_waiting_window() -> None:
    commit = Recorder()
    sends = batcher(commit)
    worker = sends.start("test-send")
    job = Job("alone")
    await sends.submit(job)
    for _step in range(4):  # a few turns of the event loop, no timer: a waiting window would not be over yet
        await asyncio.sleep(0)
    assert commit.batches == [["alone"]]
    assert job.future.result() == "stored alone"
    await stopped(worker)


async def test_a_failed_commit_reaches_every_waiter_and_the_worker_goes_on() -> None:
    commit = Recorder(fail_when="m2")
    sends = batcher(commit)
    worker = sends.start("test-send")
    outcomes = await asyncio.gather(*(submit(sends, f"m{i}") for i in range(4)), return_exceptions=True)
    assert commit.batches == [["m0", "m1", "m2", "m3"]]
    assert outcomes[:2] == ["stored m0", "stored m1"]  # settled by the commit before it failed: kept
    assert all(isinstance(outcome, Failed) and str(outcome) == "disk full" for outcome in outcomes[2:])
    assert outcomes[2] is outcomes[3]  # the one error `failure` made, given to every job still waiting
    assert await submit(sends, "m4") == "stored m4"  # the next batch is committed as usual
    assert commit.batches[-1] == ["m4"]
    await stopped(worker)


async def test_before_start_a_submission_is_committed_alone_by_the_caller() -> None:
    commit = Recorder(fail_when="broken")
    sends = batcher(commit)
    assert await submit(sends, "early") == "stored early"
    assert commit.batches == [["early"]]
    with pytest.raises(RuntimeError, match="disk full"):  # no worker: the error is the caller's, unchanged
        await submit(sends, "broken")
