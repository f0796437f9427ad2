"""Messaging throughput and send→deliver latency against real `brygga serve` processes.

    .venv/bin/python bench/messaging.py                      # SQLite, one node
    .venv/bin/python bench/messaging.py --backend pg-redis   # PostgreSQL + Redis, two nodes
    .venv/bin/python bench/messaging.py --backend pg-redis --nodes 1

Phase 1 (throughput): `--senders` clients each keep `--window` sends in flight for `--seconds`;
prints acked messages per second. Phase 2 (latency): `--rate` messages per second spread over the
senders while `--clients` sockets stay connected; prints p50/p99 from the send call to `message:new`
at the other person of the conversation (same process, same clock). With two nodes the two people of
a conversation sit on different nodes, so every delivery crosses Redis, and half of the senders are
on each node (as behind a load balancer). Everything (servers, PostgreSQL, Redis and this load
generator) shares the machine; the latency line says how busy it was, and the disk line how long the
disk took for each fsync meanwhile (a durable commit waits for one).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from bench.harness import Member, ServerProcess, build_topology, migrate
from bench.lean_client import ConnectRefused, LeanSocket
from server.settings import Settings

PG_ADMIN_URL = os.environ.get("BRYGGA_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BRYGGA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

SENT_AT: dict[str, float] = {}


class TimedPeer:
    """One connected person: a lean socket.io client that notes send→deliver latency while measuring."""

    def __init__(self, member: Member, url: str, http: aiohttp.ClientSession) -> None:
        self.member = member
        self.socket = LeanSocket(http, url)
        self.socket.on("message:new", self._on_message)
        self.latencies: list[float] = []
        self.measure = False

    def _on_message(self, data: dict[str, Any]) -> None:
        if self.measure and data["sender"] and data["sender"]["id"] != str(self.member.user_id):
            sent = SENT_AT.get(data["client_id"])
            if sent is not None:
                self.latencies.append(time.perf_counter() - sent)

    async def connect(self) -> None:
        await self.socket.connect(self.member.token)

    async def close(self) -> None:
        await self.socket.close()


async def connect_all(peers: list[TimedPeer], concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(peer: TimedPeer) -> None:
        async with gate:
            for attempt in range(5):
                try:
                    await peer.connect()
                    return
                except (ConnectRefused, aiohttp.ClientError, TimeoutError):
                    await peer.close()
                    await asyncio.sleep(0.5 * (attempt + 1))
            await peer.connect()

    await asyncio.gather(*(one(peer) for peer in peers))


async def fire(peer: TimedPeer, ack_timeout: float = 30.0) -> bool:
    client_id = str(uuid.uuid4())
    SENT_AT[client_id] = time.perf_counter()
    payload = {"conversation_id": str(peer.member.conversation_id), "client_id": client_id, "body": "x" * 200}
    try:
        ack = await peer.socket.call("message:send", payload, patience=ack_timeout)
    except (TimeoutError, ConnectionError):
        return False
    return bool(ack.get("ok"))


async def throughput(senders: list[TimedPeer], window: int, seconds: float) -> tuple[float, int]:
    acked = 0
    errors = 0
    deadline = time.perf_counter() + seconds

    async def pump(peer: TimedPeer) -> None:
        nonlocal acked, errors
        while time.perf_counter() < deadline:
            if await fire(peer):
                acked += 1
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(pump(peer) for peer in senders for _ in range(window)))
    return acked / (time.perf_counter() - started), errors


async def latency(senders: list[TimedPeer], everyone: list[TimedPeer], rate: float, seconds: float) -> list[float]:
    # Only messages sent in this phase count: deliveries still on their way from the throughput
    # phase would otherwise be measured with the queueing delay of that phase.
    SENT_AT.clear()
    for peer in everyone:
        peer.latencies.clear()
        peer.measure = True
    tick = 0.01
    per_tick = rate * tick
    owed = 0.0
    tasks: list[asyncio.Task[bool]] = []
    rng = random.Random(7)
    started = time.perf_counter()
    next_tick = started
    while time.perf_counter() - started < seconds:
        owed += per_tick
        while owed >= 1:
            owed -= 1
            tasks.append(asyncio.create_task(fire(rng.choice(senders))))
        next_tick += tick
        await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
    await asyncio.gather(*tasks)
    await asyncio.sleep(1.0)
    for peer in everyone:
        peer.measure = False
    return [value for peer in everyone for value in peer.latencies]


class FsyncProbe:
    """fsync latency of the disk, sampled in a thread beside the latency phase.

    A durable commit waits for an fsync (SQLite synchronous=FULL, PostgreSQL synchronous_commit=on),
    so the disk's stalls are a floor under the send→deliver tail: on a VM whose virtual disk now and
    then takes 100 – 600 ms for an fsync, every message sent meanwhile waits that long. Printed next
    to the p99, it says whether a tail came from the servers or from the host.
    """

    INTERVAL_SECONDS = 0.02
    SLOW_SECONDS = 0.05

    def __init__(self, directory: Path) -> None:
        self.path = directory / "fsync-probe"
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="fsync-probe", daemon=True)

    def __enter__(self) -> FsyncProbe:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while not self._stop.wait(self.INTERVAL_SECONDS):
                os.pwrite(fd, os.urandom(4096), 0)
                started = time.perf_counter()
                os.fsync(fd)
                self.samples.append(time.perf_counter() - started)
        finally:
            os.close(fd)

    def summary(self) -> dict[str, float]:
        return {
            "fsync_p50_ms": percentile(self.samples, 0.5) * 1000,
            "fsync_p99_ms": percentile(self.samples, 0.99) * 1000,
            "fsync_max_ms": max(self.samples, default=float("nan")) * 1000,
            "fsync_slow": sum(1 for value in self.samples if value > self.SLOW_SECONDS),
        }


def host_speed_ms() -> float:
    """Milliseconds a fixed piece of pure-Python work takes here (best of three; lower = faster host).

    This VM's speed drifted by up to 2x within an hour: runs are comparable only alongside this figure.
    """
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for number in range(2_000_000):
            total += number % 7
        best = min(best, time.perf_counter() - started)
    return best * 1000


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent on anything but idle and I/O wait (Linux /proc/stat)."""
    fields = Path("/proc/stat").read_text().split()[1:9]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields)
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def create_pg_database() -> str:
    import asyncpg

    name = f"brygga_bench_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


async def drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    connection = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    env: dict[str, str] = {}
    database_url = f"sqlite+aiosqlite:///{data_dir / 'brygga.db'}"
    if args.backend == "pg-redis":
        database_url = await create_pg_database()
        env = {"BRYGGA_DATABASE_URL": database_url, "BRYGGA_REDIS_URL": REDIS_URL}
    servers: list[ServerProcess] = []
    peers: list[TimedPeer] = []
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    try:
        await migrate(data_dir, env)
        keys = Settings(data_dir=data_dir, database_url=database_url)  # the servers' key files, in data_dir
        topology = await build_topology(keys, args.clients, args.unit_size)
        nodes = args.nodes or (2 if args.backend == "pg-redis" else 1)
        servers = [ServerProcess(data_dir, extra_env=env, profile=profile_path(args.profile, n)) for n in range(nodes)]
        for server in servers:
            await server.start()
        # The two units of a conversation alternate between nodes, so deliveries cross Redis.
        node_of_unit: dict[uuid.UUID, int] = {}
        for member in topology.members:
            node_of_unit.setdefault(member.unit_id, len(node_of_unit) % nodes)
        peers = [TimedPeer(m, servers[node_of_unit[m.unit_id]].url, http) for m in topology.members]
        started = time.perf_counter()
        await connect_all(peers, concurrency=100)
        connect_seconds = time.perf_counter() - started
        pause_garbage_collector()
        senders = pick_senders(peers, args.senders)
        cpu_before = sum(server.cpu_seconds() for server in servers)
        own_cpu_before = time.process_time()
        acked_before = time.perf_counter()
        print(f"throughput phase: {len(senders)} senders x {args.window} in flight", flush=True)
        rate, errors = await throughput(senders, args.window, args.seconds)
        acked = max(1.0, rate * (time.perf_counter() - acked_before))
        cpu_per_message = (sum(server.cpu_seconds() for server in servers) - cpu_before) / acked
        load_cpu_per_message = (time.process_time() - own_cpu_before) / acked
        await asyncio.sleep(3.0)  # let the throughput phase's deliveries and inbox counts drain
        print(f"latency phase: {args.rate:.0f} msg/s", flush=True)
        cpu_before = sum(server.cpu_seconds() for server in servers)
        machine_before = machine_busy_seconds()
        with FsyncProbe(data_dir) as disk:
            values = await latency(senders, peers, args.rate, args.seconds)
        latency_cpu = (sum(server.cpu_seconds() for server in servers) - cpu_before) / (args.seconds + 1.0)
        machine_cores = (machine_busy_seconds() - machine_before) / (args.seconds + 1.0)
        return {
            "backend": args.backend,
            "nodes": nodes,
            "clients": len(peers),
            "connect_seconds": connect_seconds,
            "throughput": rate,
            "throughput_errors": errors,
            "server_cpu_ms_per_message": cpu_per_message * 1000,
            "load_cpu_ms_per_message": load_cpu_per_message * 1000,
            "load_average": os.getloadavg()[0],
            "rate": args.rate,
            "latency_phase_server_cores": latency_cpu,
            "latency_phase_machine_cores": machine_cores,
            "deliveries": len(values),
            "p50_ms": percentile(values, 0.5) * 1000,
            "p99_ms": percentile(values, 0.99) * 1000,
            "mean_ms": statistics.fmean(values) * 1000 if values else float("nan"),
            **disk.summary(),
        }
    finally:
        await asyncio.gather(*(peer.close() for peer in peers), return_exceptions=True)
        await http.close()
        for server in servers:
            await server.stop()
        if args.backend == "pg-redis":
            await drop_pg_database(database_url)


def pause_garbage_collector() -> None:
    """Keep this process's collector out of the measurement.

    With 2,000 clients' objects alive, a full collection here took 150 – 250 ms; deliveries arriving
    meanwhile were stamped late, so the load generator's pauses showed up as the server's p99. What is
    alive now is frozen (never scanned again) and the collector stays off until the process ends
    (the phases leave little cyclic garbage; reference counting frees the rest).
    """
    gc.collect()
    gc.freeze()
    gc.disable()


def profile_path(base: Path | None, node: int) -> Path | None:
    """One statistics file per node: node 0 writes to `base`, node 1 to `base.1`."""
    if base is None or node == 0:
        return base
    return base.with_name(f"{base.name}.{node}")


def pick_senders(peers: list[TimedPeer], count: int) -> list[TimedPeer]:
    """One sender per conversation (spread the load), never more than asked. The sending side
    alternates between the conversation's two units, so with two nodes both take sends, as behind
    a load balancer."""
    by_conversation: dict[uuid.UUID, list[TimedPeer]] = {}
    for peer in peers:
        by_conversation.setdefault(peer.member.conversation_id, []).append(peer)
    chosen = [group[index % len(group)] for index, group in enumerate(by_conversation.values())]
    return chosen[:count]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "pg-redis"], default="sqlite")
    parser.add_argument("--nodes", type=int, choices=[1, 2], help="server processes (pg-redis: default 2)")
    parser.add_argument("--clients", type=int, default=2000, help="connected sockets")
    parser.add_argument("--unit-size", type=int, default=1, help="members per unit (conversation = 2 units)")
    parser.add_argument("--senders", type=int, default=200)
    parser.add_argument("--window", type=int, default=4, help="sends in flight per sender (throughput phase)")
    parser.add_argument("--rate", type=float, default=300.0, help="messages per second (latency phase)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument(
        "--profile", type=Path, help="run the servers under cProfile; node 0 writes stats here, node 1 to PROFILE.1"
    )
    args = parser.parse_args()
    if args.backend == "sqlite" and args.nodes == 2:
        parser.error("several nodes need --backend pg-redis (SQLite is the single-node mode)")
    speed = host_speed_ms()  # before anything runs
    with tempfile.TemporaryDirectory(prefix="brygga-bench-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    print(f"backend            {result['backend']} ({result['nodes']} node(s))")
    print(f"connected clients  {result['clients']} (connected in {result['connect_seconds']:.1f}s)")
    print(f"throughput         {result['throughput']:.0f} acked msgs/s ({result['throughput_errors']} errors)")
    print(
        f"server CPU         {result['server_cpu_ms_per_message']:.2f} ms per acked message (all nodes), "
        f"so about {1000 / result['server_cpu_ms_per_message']:.0f} msgs/s per fully available core"
    )
    print(f"load generator CPU {result['load_cpu_ms_per_message']:.2f} ms per acked message (this process)")
    print(f"machine load       {result['load_average']:.1f} (1-min load average at the end; cores: {os.cpu_count()})")
    print(
        f"host speed         {speed:.0f} ms for a fixed Python loop before the run "
        "(lower = faster; compare runs only at similar values)"
    )
    print(
        f"latency @ {result['rate']:.0f}/s   p50 {result['p50_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  "
        f"mean {result['mean_ms']:.1f} ms over {result['deliveries']} deliveries; "
        f"busy: servers {result['latency_phase_server_cores']:.2f} cores, "
        f"whole machine {result['latency_phase_machine_cores']:.2f} of {os.cpu_count()}"
    )
    print(
        f"disk fsync         p50 {result['fsync_p50_ms']:.1f} ms  p99 {result['fsync_p99_ms']:.1f} ms  "
        f"max {result['fsync_max_ms']:.0f} ms during the latency phase ({result['fsync_slow']} over "
        f"{FsyncProbe.SLOW_SECONDS * 1000:.0f} ms; every durable commit waits for one)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Member", "main"]
