"""Shared by bench/chaos.py, bench/messaging.py and tests/messaging: a real `brygga serve` subprocess,
a directory of units/users/conversations, and socket.io clients that keep what they receive.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from server.core import sio_codec
from server.settings import Settings

REPO = Path(__file__).resolve().parent.parent

FAST_LIMITS = {
    "BRYGGA_MESSAGING_CONNECTION_EVENTS_PER_WINDOW": "1000000",
    "BRYGGA_MESSAGING_USER_EVENTS_PER_WINDOW": "1000000",
    "BRYGGA_MESSAGING_USER_SENDS_PER_WINDOW": "1000000",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(data_dir: Path, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **os.environ,
        "BRYGGA_DATA_DIR": str(data_dir),
        "BRYGGA_HOST": "127.0.0.1",
        "BRYGGA_PORT": str(port),
        "BRYGGA_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "BRYGGA_LOG_LEVEL": "WARNING",
        **FAST_LIMITS,
        **(extra or {}),
    }


# `brygga serve` under cProfile; SIGUSR1 writes the statistics and exits.
PROFILED_SERVE = """
import cProfile, os, signal
from server.cli import main
profiler = cProfile.Profile()
def dump(*_):
    profiler.disable()
    profiler.dump_stats({out!r})
    os._exit(0)
signal.signal(signal.SIGUSR1, dump)
profiler.enable()
main(["serve"])
"""


class ServerProcess:
    """`python -m server serve` on a fixed port; can be SIGKILLed and started again."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        extra_env: dict[str, str] | None = None,
        profile: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.profile = profile
        self.port = port or free_port()
        self.env = server_env(data_dir, self.port, extra_env)
        self.proc: asyncio.subprocess.Process | None = None
        self.log = data_dir / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, ready_timeout: float = 30.0) -> float:
        """Start and wait until /healthz answers; returns the seconds it took."""
        started = time.perf_counter()
        with self.log.open("ab") as log:
            command = ["-m", "server", "serve"]
            if self.profile:  # the same server under cProfile (see PROFILED_SERVE)
                command = ["-c", PROFILED_SERVE.format(out=str(self.profile))]
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                *command,
                cwd=str(REPO),
                env=self.env,
                stdout=log,
                stderr=log,
                stdin=asyncio.subprocess.DEVNULL,
            )
        async with aiohttp.ClientSession() as http:
            while time.perf_counter() - started < ready_timeout:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"server exited with {self.proc.returncode}; see {self.log}")
                try:
                    async with http.get(self.url + "/healthz", timeout=aiohttp.ClientTimeout(total=1)) as response:
                        if response.status == 200:
                            return time.perf_counter() - started
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError(f"server did not become healthy in {ready_timeout}s; see {self.log}")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far (Linux /proc)."""
        if self.proc is None:
            return 0.0
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing by the application."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGUSR1 if self.profile else signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 60 if self.profile else 10)
            except TimeoutError:
                await self.kill()


async def migrate(data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "server",
        "migrate",
        cwd=str(REPO),
        env=server_env(data_dir, 0, extra_env),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"migrate failed: {err.decode()[-2000:]}")


@dataclass
class Member:
    user_id: uuid.UUID
    token: str
    unit_id: uuid.UUID
    conversation_id: uuid.UUID


@dataclass
class Topology:
    members: list[Member]
    conversations: dict[uuid.UUID, list[uuid.UUID]]  # conversation -> user ids that must receive its messages


async def build_topology(settings: Settings, clients: int, unit_size: int) -> Topology:
    """Units of `unit_size` members; unit 2k talks with unit 2k+1 in one conversation.

    `settings` names the database and the key files the servers will use: subjects are sealed.
    """
    from server.core.app_keys import envelope_for
    from server.core.commands import cli_context
    from server.core.models import Organisation, Unit
    from server.identity import service as identity
    from server.messaging.models import Conversation, Participant

    ctx = cli_context(settings)
    await envelope_for(ctx)
    db = ctx.db
    members: list[Member] = []
    conversations: dict[uuid.UUID, list[uuid.UUID]] = {}
    units = max(2, -(-clients // unit_size))
    units += units % 2
    tag = uuid.uuid4().hex[:6]
    try:
        async with db.transaction() as session:
            organisation = Organisation(id=uuid.uuid4(), name=f"Bench {tag}", kind="region")
            session.add(organisation)
            await session.flush()
            unit_ids = [uuid.uuid4() for _ in range(units)]
            session.add_all(
                Unit(id=u, organisation_id=organisation.id, name=f"Enhet {i}", unit_type="ward")
                for i, u in enumerate(unit_ids)
            )
            await session.flush()
            pairs = units // 2
            conversation_ids = [uuid.uuid4() for _ in range(pairs)]
            conversations.update({c: [] for c in conversation_ids})
            users = []
            for number in range(clients):
                unit_id = unit_ids[number % units]
                user = await identity.create_local_user(session, f"bench-{tag}-{number}", f"Bench {number}")
                await identity.set_membership(session, user, unit_id, "member")
                token = await identity.create_token_for(session, user, "bench", None)
                conversation_id = conversation_ids[(number % units) // 2]
                members.append(Member(user.id, token, unit_id, conversation_id))
                conversations[conversation_id].append(user.id)
                users.append(user)
            for pair, conversation_id in enumerate(conversation_ids):
                a, b = unit_ids[2 * pair], unit_ids[2 * pair + 1]
                session.add(
                    Conversation(
                        id=conversation_id,
                        kind="units",
                        subject=f"Bench {pair}",
                        case_ref=None,
                        created_by_user_id=users[0].id,
                        created_by_unit_id=a,
                        last_seq=0,
                    )
                )
                await session.flush()
                session.add_all(
                    [
                        Participant(id=uuid.uuid4(), conversation_id=conversation_id, unit_id=a),
                        Participant(id=uuid.uuid4(), conversation_id=conversation_id, unit_id=b),
                    ]
                )
    finally:
        await db.close()
    return Topology(members, conversations)


@dataclass
class Peer:
    """One socket.io client: reconnects forever, syncs from its cursor on every (re)connect."""

    member: Member
    url: str
    sio: socketio.AsyncClient = field(init=False)
    cursor: int = 0
    live: Counter[str] = field(default_factory=Counter)
    synced: set[str] = field(default_factory=set)
    own_acked: set[str] = field(default_factory=set)  # my sends: the ack carries the message, no message:new
    received_at: dict[str, float] = field(default_factory=dict)
    acked: dict[str, str] = field(default_factory=dict)  # client_id -> message id
    acked_at: dict[str, float] = field(default_factory=dict)  # client_id -> time.monotonic() of the first ack
    duplicates_checked: int = 0
    send_failures: Counter[str] = field(default_factory=Counter)  # why a message:send had to be resent
    resend_mismatch: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    reconnects: int = 0
    hard_reconnects: int = 0
    sync_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        # Own reconnect loop instead of the client's: its reconnects wait only 1 s for the handshake,
        # which under load turns into a storm of abandoned connections.
        # The server's packet codec (orjson): 200 clients decoding 8 deliveries per message share the
        # CPU with the servers under test.
        self.sio = socketio.AsyncClient(reconnection=False, serializer=sio_codec.SioPacket, json=sio_codec)
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("message:new", self._on_message)
        self._reconnect: asyncio.Task[None] | None = None
        self.closing = False

    async def _on_connect(self) -> None:
        self.reconnects += 1
        self.connected.set()
        asyncio.get_running_loop().create_task(self.sync_all())

    async def _on_disconnect(self, *_args: Any) -> None:
        self.connected.clear()
        self.start_reconnecting()

    def start_reconnecting(self) -> None:
        if not self.closing and (self._reconnect is None or self._reconnect.done()):
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        delay = 0.2
        while not self.closing and not self.connected.is_set():
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            if self.sio.connected:
                with contextlib.suppress(Exception):
                    await self.sio.disconnect()
            try:
                await self.connect()
                return
            except (socketio.exceptions.ConnectionError, OSError):
                delay = min(delay * 2, 2.0)

    async def _on_message(self, data: dict[str, Any]) -> None:
        self.live[data["id"]] += 1
        self.received_at.setdefault(data["id"], time.perf_counter())

    async def connect(self) -> None:
        await self.sio.connect(self.url, auth={"token": self.member.token}, transports=["websocket"], wait_timeout=30)

    async def sync_all(self) -> bool:
        """Page through sync until the end; False if the connection dropped on the way."""
        async with self.sync_lock:
            while True:
                try:
                    page = await self.sio.call("sync", {"since": self.cursor}, timeout=10)
                except (
                    socketio.exceptions.TimeoutError,
                    socketio.exceptions.BadNamespaceError,
                    socketio.exceptions.DisconnectedError,
                ):
                    return False
                if not page.get("ok"):
                    return False
                for message in page["messages"]:
                    self.synced.add(message["id"])
                    self.received_at.setdefault(message["id"], time.perf_counter())
                self.cursor = page["cursor"]
                if not page["has_more"]:
                    return True

    async def send(
        self, body: str, *, resend_check: bool = False, ack_timeout: float = 5.0, client_id: str | None = None
    ) -> str:
        """Send until acked, resending with the same client_id across failures; returns the message id."""
        client_id = client_id or str(uuid.uuid4())
        payload = {"conversation_id": str(self.member.conversation_id), "client_id": client_id, "body": body}
        message_id = await self._until_acked(payload, ack_timeout)
        self.acked[client_id] = message_id
        self.acked_at[client_id] = time.monotonic()
        if resend_check:
            again = await self._until_acked(payload, ack_timeout)
            self.duplicates_checked += 1
            if again != message_id:
                self.resend_mismatch += 1
        return message_id

    async def _until_acked(self, payload: dict[str, Any], ack_timeout: float) -> str:
        while True:
            await self.wait_connected()
            try:
                ack = await self._call_while_connected("message:send", payload, ack_timeout)
            except (
                socketio.exceptions.TimeoutError,
                socketio.exceptions.BadNamespaceError,
                socketio.exceptions.DisconnectedError,
            ) as exc:
                self.send_failures[type(exc).__name__] += 1
                await asyncio.sleep(0.1)
                continue
            if ack.get("ok"):
                message_id = str(ack["message"]["id"])
                self.own_acked.add(message_id)
                self.received_at.setdefault(message_id, time.perf_counter())
                return message_id
            self.send_failures[str(ack.get("error", {}).get("code"))] += 1
            await asyncio.sleep(0.2)  # e.g. internal error while the server dies: resend

    async def _call_while_connected(self, event: str, payload: dict[str, Any], ack_timeout: float) -> Any:
        """`sio.call`, but give up as soon as the connection drops (the ack can no longer come),
        instead of waiting out the whole timeout, as an app that watches its socket would."""
        call = asyncio.ensure_future(self.sio.call(event, payload, timeout=ack_timeout))
        while not call.done():
            await asyncio.wait([call], timeout=0.2)
            if not call.done() and not self.connected.is_set():
                call.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await call
                raise socketio.exceptions.DisconnectedError()
        return call.result()

    async def wait_connected(self, patience: float = 30.0) -> None:
        while not self.connected.is_set():
            self.start_reconnecting()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.connected.wait(), patience)

    async def hard_reconnect(self) -> None:
        self.hard_reconnects += 1
        self.start_reconnecting()

    async def close(self) -> None:
        self.closing = True
        if self._reconnect is not None:
            self._reconnect.cancel()
        await self.sio.disconnect()


async def connect_all(peers: list[Peer], concurrency: int = 50, patience: float = 600.0) -> None:
    """Connect everybody; a refused or slow handshake falls back to the peer's reconnect loop."""
    gate = asyncio.Semaphore(concurrency)

    async def one(peer: Peer) -> None:
        async with gate:
            try:
                await peer.connect()
            except (socketio.exceptions.ConnectionError, OSError):
                peer.start_reconnecting()

    await asyncio.gather(*(one(peer) for peer in peers))
    await asyncio.wait_for(asyncio.gather(*(peer.connected.wait() for peer in peers)), patience)
