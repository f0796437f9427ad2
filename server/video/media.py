"""The media plane behind a small interface, and its default: one relay worker process per room.

`MediaBackend` is what the meeting logic uses (join/publish/subscribe/unsubscribe/leave, plus the
client's answer and ICE candidates). `RelayProcesses` implements it with
`server.video.relay_worker`: the process is spawned on a room's first join, stopped when the
meeting ends or the room stays empty for `video_room_idle_seconds`, and a crash is reported to the
room (participants rejoin, which spawns a fresh worker). An external SFU (e.g. LiveKit) would
implement the same protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from server.core.context import Key

log = logging.getLogger("brygga.video.media")

# (room, participant id, message) -> None. Messages: {"type": "offer", "sdp", "tracks", "publish"},
# {"type": "state", "state"}, {"type": "failed"} (the room's media went away).
SignalSink = Callable[[uuid.UUID, str, dict[str, Any]], Awaitable[None]]

COMMAND_TIMEOUT = 20.0


class MediaBackend(Protocol):
    async def join(self, room: uuid.UUID, participant: str) -> None: ...
    async def publish(self, room: uuid.UUID, participant: str) -> None: ...
    async def subscribe(self, room: uuid.UUID, subscriber: str, publisher: str) -> None: ...
    async def unsubscribe(self, room: uuid.UUID, subscriber: str, publisher: str) -> None: ...
    async def leave(self, room: uuid.UUID, participant: str) -> None: ...
    async def answer(self, room: uuid.UUID, participant: str, sdp: str) -> None: ...
    async def candidate(
        self, room: uuid.UUID, participant: str, candidate: str, sdp_mid: str | None, sdp_mline_index: int | None
    ) -> None: ...
    async def audio_only(self, room: uuid.UUID, participant: str, on: bool) -> None: ...
    async def close_room(self, room: uuid.UUID) -> None: ...
    async def stats(self, room: uuid.UUID) -> dict[str, Any] | None: ...
    async def close(self) -> None: ...


class MediaUnavailable(Exception):
    """The room's media worker is gone (crashed or stopped)."""


@dataclass(eq=False)
class Worker:
    room: uuid.UUID | None  # None: a spare, started and waiting for a room
    process: asyncio.subprocess.Process
    pending: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    participants: set[str] = field(default_factory=set)
    reader: asyncio.Task[None] | None = None
    idle: asyncio.TimerHandle | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    closing: bool = False


class RelayProcesses:
    """One `relay_worker` process per active room, supervised from the server's event loop.

    With `spare`, one started worker waits for the next room, so a room that moves here after a
    failover (or a new room) does not wait for Python and aiortc to start.
    """

    def __init__(self, on_signal: SignalSink, idle_seconds: float = 60.0, *, spare: bool = False) -> None:
        self.on_signal = on_signal
        self.idle_seconds = idle_seconds
        self.workers: dict[uuid.UUID, Worker] = {}
        self.spawning: dict[uuid.UUID, asyncio.Lock] = {}
        self.keep_spare = spare
        self.spare: asyncio.Task[Worker] | None = None
        self.processes: set[Worker] = set()  # every live worker: a room's, the spare, one still starting
        self.closed = False

    def start(self) -> None:
        if self.keep_spare and self.spare is None and not self.closed:
            self.spare = asyncio.ensure_future(self._start_process())

    async def _worker(self, room: uuid.UUID, create: bool) -> Worker:
        if self.closed:
            raise MediaUnavailable(str(room))
        worker = self.workers.get(room)
        if worker is not None or not create:
            if worker is None:
                raise MediaUnavailable(str(room))
            return worker
        lock = self.spawning.setdefault(room, asyncio.Lock())
        async with lock:
            worker = self.workers.get(room)
            if worker is None:
                worker = await self._spawn(room)
        return worker

    async def _spawn(self, room: uuid.UUID) -> Worker:
        worker: Worker | None = None
        if self.spare is not None:
            spare, self.spare = self.spare, None
            with contextlib.suppress(Exception):
                worker = await spare
            if worker is not None and worker.process.returncode is not None:
                worker = None
        if worker is None:
            worker = await self._start_process()
        worker.room = room
        self.workers[room] = worker
        self.start()  # the next spare
        log.info("relay worker started", extra={"room": str(room), "os_pid": worker.process.pid})
        return worker

    async def _start_process(self) -> Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "server.video.relay_worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=4 * 1024 * 1024,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        if self.closed:  # shut down while it started
            process.kill()
            await process.wait()
            raise MediaUnavailable("the relays are shut down")
        worker = Worker(None, process)
        self.processes.add(worker)
        worker.reader = asyncio.ensure_future(self._read(worker))
        await asyncio.wait_for(worker.ready.wait(), COMMAND_TIMEOUT)
        return worker

    async def _read(self, worker: Worker) -> None:
        assert worker.process.stdout is not None
        try:
            while True:
                line = await worker.process.stdout.readline()
                if not line:
                    break
                message = json.loads(line)
                if "id" in message:
                    future = worker.pending.pop(message["id"], None)
                    if future is not None and not future.done():
                        future.set_result(message)
                    continue
                event = message.pop("event")
                if event == "ready":
                    worker.ready.set()
                    continue
                participant = message.pop("pid")
                if worker.room is not None:
                    await self.on_signal(worker.room, participant, {"type": event, **message})
        except Exception:
            log.exception("relay worker reader failed", extra={"room": str(worker.room)})
        finally:
            await worker.process.wait()
            self.processes.discard(worker)
            for future in worker.pending.values():
                if not future.done():
                    future.set_exception(MediaUnavailable(str(worker.room)))
            if worker.room is not None and self.workers.get(worker.room) is worker:
                del self.workers[worker.room]
            if worker.room is not None and not worker.closing:
                log.warning("relay worker died", extra={"room": str(worker.room), "code": worker.process.returncode})
                for participant in list(worker.participants):
                    await self.on_signal(worker.room, participant, {"type": "failed"})

    async def _call(self, worker: Worker, op: str, **args: Any) -> dict[str, Any]:
        assert worker.process.stdin is not None
        request_id = next(worker.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        worker.pending[request_id] = future
        try:
            worker.process.stdin.write((json.dumps({"id": request_id, "op": op, **args}) + "\n").encode())
            await worker.process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            worker.pending.pop(request_id, None)
            raise MediaUnavailable(str(worker.room)) from exc
        result = await asyncio.wait_for(future, COMMAND_TIMEOUT)
        if not result.get("ok"):
            raise MediaUnavailable(f"{op} failed in the relay: {result.get('error')}")
        return result

    async def _do(self, room: uuid.UUID, op: str, **args: Any) -> dict[str, Any]:
        return await self._call(await self._worker(room, create=False), op, **args)

    # MediaBackend -------------------------------------------------------------------------------

    async def join(self, room: uuid.UUID, participant: str) -> None:
        worker = await self._worker(room, create=True)
        if worker.idle is not None:
            worker.idle.cancel()
            worker.idle = None
        worker.participants.add(participant)
        await self._call(worker, "join", pid=participant)

    async def publish(self, room: uuid.UUID, participant: str) -> None:
        await self._do(room, "publish", pid=participant)

    async def subscribe(self, room: uuid.UUID, subscriber: str, publisher: str) -> None:
        await self._do(room, "subscribe", pid=subscriber, publisher=publisher)

    async def unsubscribe(self, room: uuid.UUID, subscriber: str, publisher: str) -> None:
        await self._do(room, "unsubscribe", pid=subscriber, publisher=publisher)

    async def answer(self, room: uuid.UUID, participant: str, sdp: str) -> None:
        await self._do(room, "answer", pid=participant, sdp=sdp)

    async def candidate(
        self, room: uuid.UUID, participant: str, candidate: str, sdp_mid: str | None, sdp_mline_index: int | None
    ) -> None:
        await self._do(
            room, "candidate", pid=participant, candidate=candidate, sdp_mid=sdp_mid, sdp_mline_index=sdp_mline_index
        )

    async def audio_only(self, room: uuid.UUID, participant: str, on: bool) -> None:
        await self._do(room, "audio_only", pid=participant, on=on)

    async def leave(self, room: uuid.UUID, participant: str) -> None:
        worker = self.workers.get(room)
        if worker is None:
            return
        worker.participants.discard(participant)
        with contextlib.suppress(MediaUnavailable, asyncio.TimeoutError):
            await self._call(worker, "leave", pid=participant)
        if not worker.participants and worker.idle is None:
            loop = asyncio.get_running_loop()
            worker.idle = loop.call_later(self.idle_seconds, lambda: asyncio.ensure_future(self.close_room(room)))

    async def stats(self, room: uuid.UUID) -> dict[str, Any] | None:
        worker = self.workers.get(room)
        if worker is None:
            return None
        result = await self._call(worker, "stats")
        result.pop("id", None)
        result.pop("ok", None)
        return result

    async def close_room(self, room: uuid.UUID) -> None:
        worker = self.workers.get(room)
        if worker is None:
            return
        await self._stop(worker)
        self.workers.pop(room, None)
        log.info("relay worker stopped", extra={"room": str(room)})

    async def _stop(self, worker: Worker) -> None:
        worker.closing = True
        if worker.idle is not None:
            worker.idle.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._call(worker, "shutdown"), 5)
        try:
            await asyncio.wait_for(worker.process.wait(), 5)
        except TimeoutError:
            worker.process.kill()
            await worker.process.wait()
        if worker.reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker.reader

    async def close(self) -> None:
        self.closed = True
        if self.spare is not None:
            spare, self.spare = self.spare, None
            with contextlib.suppress(Exception):
                await spare
        for room in list(self.workers):
            await self.close_room(room)
        for worker in list(self.processes):  # the spare, and any started while the room was closing
            await self._stop(worker)

    def worker_pid(self, room: uuid.UUID) -> int | None:
        worker = self.workers.get(room)
        return worker.process.pid if worker is not None else None


MEDIA: Key[RelayProcesses] = Key("video.media")  # the relay worker processes of this node
