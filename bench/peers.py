"""Per-message latency of Brygga beside ejabberd, the same four workloads in one run.

    make bench-peers                       # once: Debian's ejabberd and slixmpp
    .venv/bin/python bench/peers.py        # 10 s per workload and server
    .venv/bin/python bench/peers.py --seconds 5 --only brygga

One sender and one receiver on each server, 200-character messages, Python clients on both sides:
a stock python-socketio client on Brygga (no custom codec, as users have) and slixmpp on ejabberd
(XEP-0198 stream management, an ack requested after every stanza). Latency is the send call → the
delivery at the receiver; the sender's ack comes after the durable write on both sides (Brygga:
the SQLite commit; ejabberd: its two `mod_mam` archive rows in SQLite with WAL and full sync).

Workloads: sequential (one in flight), 20 in flight, open loop at 50 and 300 msg/s. Brygga runs
one node on SQLite, as `make run` does. Both servers share the two cores with this load generator;
the host-speed line says how fast the machine was during the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import socketio

from bench import ejabberd
from bench.harness import ServerProcess, build_topology, migrate
from bench.messaging import host_speed_ms, percentile
from server.settings import Settings

BODY = "x" * 200
LOGIN_REFUSED = RuntimeError("ejabberd refused the bench user's login")


class Endpoint:
    """One sender and one receiver on a server; `send` returns once the sender has its ack."""

    name = ""

    def __init__(self) -> None:
        self.sent_at: dict[str, float] = {}
        self.delivered_at: dict[str, float] = {}

    def delivered(self, token: str) -> None:
        self.delivered_at.setdefault(token, time.perf_counter())

    async def send(self) -> bool:
        token = str(uuid.uuid4())  # Brygga echoes client_id in its canonical UUID form
        self.sent_at[token] = time.perf_counter()
        try:
            return await self._send(token)
        except (TimeoutError, socketio.exceptions.TimeoutError):
            return False  # not acked in 30 s: counted as undelivered unless it still arrives

    async def _send(self, token: str) -> bool:
        raise NotImplementedError

    def reset(self) -> None:
        self.sent_at.clear()
        self.delivered_at.clear()

    def latencies(self) -> tuple[list[float], int]:
        """Send → delivery for every message of the phase, and how many never arrived."""
        values = [self.delivered_at[t] - sent for t, sent in self.sent_at.items() if t in self.delivered_at]
        return values, len(self.sent_at) - len(values)


class BryggaEndpoint(Endpoint):
    name = "Brygga"

    def __init__(self, url: str, sender_token: str, receiver_token: str, conversation_id: uuid.UUID) -> None:
        super().__init__()
        self.url = url
        self.tokens = (sender_token, receiver_token)
        self.conversation_id = str(conversation_id)
        self.sender = socketio.AsyncClient(reconnection=False)
        self.receiver = socketio.AsyncClient(reconnection=False)
        self.receiver.on("message:new", self._on_message)

    def _on_message(self, data: dict[str, Any]) -> None:
        self.delivered(data["client_id"])

    async def connect(self) -> None:
        for client, token in zip((self.sender, self.receiver), self.tokens, strict=True):
            await client.connect(self.url, auth={"token": token}, transports=["websocket"], wait_timeout=30)

    async def _send(self, token: str) -> bool:
        payload = {"conversation_id": self.conversation_id, "client_id": token, "body": BODY}
        ack = await self.sender.call("message:send", payload, timeout=30)
        return bool(ack.get("ok"))

    async def close(self) -> None:
        for client in (self.sender, self.receiver):
            await client.disconnect()


class XmppEndpoint(Endpoint):
    name = "ejabberd"

    def __init__(self, server: ejabberd.Ejabberd, sender: tuple[str, str], receiver: tuple[str, str]) -> None:
        super().__init__()
        import slixmpp  # only this side needs it (`make bench-peers`)
        from slixmpp.plugins.xep_0198.stanza import RequestAck

        self.server = server
        self.receiver_jid = server.jid(receiver[0])
        self.clients = [slixmpp.ClientXMPP(server.jid(user), password) for user, password in (sender, receiver)]
        self.acks: dict[str, asyncio.Future[None]] = {}
        self.request_ack = RequestAck
        for client in self.clients:
            # Acks are requested by hand after each message: slixmpp's own window sends its <r/>
            # ahead of the stanza that fills the window, so that stanza would wait for the next one.
            client.register_plugin("xep_0198", {"window": 1 << 30})
            client.register_plugin("xep_0199")
            client["feature_mechanisms"].unencrypted_scram = True
        self.clients[0].add_event_handler("stanza_acked", self._on_acked)
        self.clients[1].add_event_handler("message", self._on_message)

    def _on_acked(self, stanza: Any) -> None:
        future = self.acks.pop(stanza["id"], None)
        if future is not None and not future.done():
            future.set_result(None)

    def _on_message(self, message: Any) -> None:
        if message["type"] in ("chat", "normal"):
            self.delivered(message["id"])

    async def connect(self) -> None:
        for client in self.clients:
            ready = asyncio.get_running_loop().create_future()
            client.add_event_handler("session_start", lambda _e, r=ready: r.done() or r.set_result(None))
            client.add_event_handler("failed_auth", lambda _e, r=ready: r.done() or r.set_exception(LOGIN_REFUSED))
            # Plain c2s on loopback, as Brygga's listener in the same run (no TLS on either side).
            client.enable_starttls = client.enable_direct_tls = False
            client.enable_plaintext = True
            client.connect("127.0.0.1", self.server.port)
            await asyncio.wait_for(ready, 30)
            client.send_presence()
        await asyncio.sleep(0.5)  # the receiver's presence reaches the router before the first message

    async def _send(self, token: str) -> bool:
        acked = asyncio.get_running_loop().create_future()
        self.acks[token] = acked
        message = self.clients[0].make_message(mto=self.receiver_jid, mbody=BODY, mtype="chat")
        message["id"] = token
        message.send()
        # Through the same queue as the message, so that the <r/> follows it on the wire.
        self.clients[0].send(self.request_ack(self.clients[0]))
        await asyncio.wait_for(acked, 30)
        return True

    async def close(self) -> None:
        for client in self.clients:
            client.disconnect()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.disconnected, 5)


async def closed_loop(endpoint: Endpoint, in_flight: int, seconds: float) -> float:
    """`in_flight` senders, each sending as soon as its previous message was acked; acked msgs/s."""
    acked = 0
    deadline = time.perf_counter() + seconds

    async def pump() -> None:
        nonlocal acked
        while time.perf_counter() < deadline:
            ok = await endpoint.send()  # not `acked += await …`: that reads `acked` before the await
            acked += ok

    started = time.perf_counter()
    await asyncio.gather(*(pump() for _ in range(in_flight)))
    return acked / (time.perf_counter() - started)


async def open_loop(endpoint: Endpoint, rate: float, seconds: float) -> float:
    """Sends at a fixed rate, whether or not earlier ones were acked; acked msgs/s."""
    tasks: list[asyncio.Task[bool]] = []
    tick, owed = 0.005, 0.0
    started = next_tick = time.perf_counter()
    while time.perf_counter() - started < seconds:
        owed += rate * tick
        while owed >= 1:
            owed -= 1
            tasks.append(asyncio.create_task(endpoint.send()))
        next_tick += tick
        await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
    results = await asyncio.gather(*tasks)
    return sum(results) / (time.perf_counter() - started)


Workload = Callable[[Endpoint, float], Awaitable[float]]
WORKLOADS: list[tuple[str, Workload]] = [
    ("sequential, one in flight", lambda e, s: closed_loop(e, 1, s)),
    ("20 in flight", lambda e, s: closed_loop(e, 20, s)),
    ("open loop 50 msg/s", lambda e, s: open_loop(e, 50, s)),
    ("open loop 300 msg/s", lambda e, s: open_loop(e, 300, s)),
]


async def measure(endpoint: Endpoint, run: Workload, seconds: float) -> dict[str, float]:
    endpoint.reset()
    rate = await run(endpoint, seconds)
    await asyncio.sleep(1.0)  # the last deliveries
    values, lost = endpoint.latencies()
    return {
        "rate": rate,
        "p50": percentile(values, 0.5) * 1000,
        "p99": percentile(values, 0.99) * 1000,
        "mean": statistics.fmean(values) * 1000 if values else float("nan"),
        "undelivered": lost,
    }


def commit_floor_ms(directory: Path, commits: int = 300) -> tuple[float, float]:
    """p50 and p99 of one small durable SQLite commit (WAL, synchronous=FULL) on this disk, alone.

    Every acknowledged message waits for at least one such commit on either server, so this is the
    floor under the sequential latencies; on a VM it moves with the host (0.3 – 4.5 ms p99 seen).
    """
    path = directory / "commit-floor.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, body BLOB)")
        took = []
        for _ in range(commits):
            started = time.perf_counter()
            db.execute("INSERT INTO rows (body) VALUES (?)", (os.urandom(300),))  # autocommit: one fsync
            took.append(time.perf_counter() - started)
    return percentile(took, 0.5) * 1000, percentile(took, 0.99) * 1000


def wal_frames(database: Path) -> int:
    """Frames (pages) in the WAL now; a passive checkpoint reports them and blocks nobody."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        return int(db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


async def pages_per_message(endpoint: Endpoint, database: Path, count: int = 50, attempts: int = 5) -> float:
    """WAL pages written per message, sent one at a time: each commit writes every page it changed
    (table and index B-tree pages of the feed, message, receipt and conversation rows).

    A read transaction held open meanwhile keeps the WAL from starting over (SQLite rewinds it once
    the server's checkpointer has copied every frame), so the frame count only grows. It pins only
    if it begins while some frames are not yet copied (else it reads the database file alone), so a
    message goes just before it; a count that does not grow with each message means the pin missed."""
    for _ in range(attempts):
        await endpoint.send()
        with contextlib.closing(sqlite3.connect(database, isolation_level=None)) as pin:
            pin.execute("BEGIN")
            pin.execute("SELECT count(*) FROM sqlite_master").fetchone()
            frames = [wal_frames(database)]
            for _ in range(count):
                await endpoint.send()
                frames.append(wal_frames(database))
            pin.execute("COMMIT")
        if all(later > earlier for earlier, later in itertools.pairwise(frames)):
            return (frames[-1] - frames[0]) / count
    raise RuntimeError(f"the WAL started over under the pin in each of {attempts} attempts")


async def start_brygga(data_dir: Path) -> tuple[ServerProcess, BryggaEndpoint]:
    await migrate(data_dir)
    topology = await build_topology(Settings(data_dir=data_dir), 2, 1)
    server = ServerProcess(data_dir)
    await server.start(ready_timeout=120)
    sender, receiver = topology.members
    endpoint = BryggaEndpoint(server.url, sender.token, receiver.token, sender.conversation_id)
    await endpoint.connect()
    return server, endpoint


def line(name: str, result: dict[str, float] | None) -> str:
    if result is None:
        return f"    {name:<9} -"
    return (
        f"    {name:<9} {result['rate']:7.0f} msg/s   p50 {result['p50']:6.2f} ms   p99 {result['p99']:6.2f} ms"
        f"   mean {result['mean']:6.2f} ms   undelivered {result['undelivered']:.0f}"
    )


async def run(args: argparse.Namespace, workdir: Path) -> None:
    endpoints: list[Endpoint] = []
    servers: list[Any] = []
    try:
        if args.only in (None, "brygga"):
            (workdir / "brygga").mkdir()
            server, brygga = await start_brygga(workdir / "brygga")
            servers.append(server)
            endpoints.append(brygga)
        if args.only in (None, "ejabberd"):
            if not ejabberd.installed():
                raise SystemExit("ejabberd is not installed: run `make bench-peers` first")
            xmpp_server = ejabberd.Ejabberd(workdir / "ejabberd", {"sender": "s3cret-a", "receiver": "s3cret-b"})
            await xmpp_server.start()
            servers.append(xmpp_server)
            xmpp = XmppEndpoint(xmpp_server, ("sender", "s3cret-a"), ("receiver", "s3cret-b"))
            await xmpp.connect()
            endpoints.append(xmpp)
        for endpoint in endpoints:  # warm up: connections, caches, first pages of the databases
            await closed_loop(endpoint, 1, 1.0)
        if args.only in (None, "brygga"):
            pages = await pages_per_message(endpoints[0], workdir / "brygga" / "brygga.db")
            print(f"Brygga writes {pages:.1f} WAL pages per message sent alone", flush=True)
        floor_p50, floor_p99 = commit_floor_ms(workdir)
        print(f"one durable SQLite commit on this disk: p50 {floor_p50:.2f} ms, p99 {floor_p99:.2f} ms", flush=True)
        gc.collect()
        gc.freeze()
        gc.disable()  # the load generator's own collector would stamp deliveries late
        print(f"host speed {host_speed_ms():.0f} ms (fixed Python loop; lower is faster)", flush=True)
        for title, workload in WORKLOADS:
            print(title, flush=True)
            for endpoint in endpoints:  # side by side: each workload on both servers before the next
                print(line(endpoint.name, await measure(endpoint, workload, args.seconds)), flush=True)
        print(f"host speed {host_speed_ms():.0f} ms after the run", flush=True)
    finally:
        gc.enable()
        for endpoint in endpoints:
            with contextlib.suppress(Exception):
                await endpoint.close()  # type: ignore[attr-defined]
        for server in servers:
            await server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each workload on each server")
    parser.add_argument("--only", choices=["brygga", "ejabberd"], help="run one side only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="brygga-peers-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)  # ejabberd runs as its own user below this directory
        asyncio.run(run(args, workdir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
