"""Idle connection capacity: how many authenticated socket.io websocket clients one node holds, and the
server's memory (RSS) per connection. Target: 10,000 connections at <= 40 KB each.

    .venv/bin/python bench/connections.py [--connections 10000] [--processes 4] [--rate 50] [--hold 30]

Starts one `brygga serve` on SQLite in a temporary directory, creates users and tokens, then opens the
connections from several client processes. Clients speak the engine.io v4 / socket.io v5 protocol by
hand over aiohttp websockets (open packet, `40{"token":...}` connect, answer pings), so thousands fit in
one process. The file-descriptor limit is raised to the hard limit for the server and every client.
RSS is read from /proc/<pid>/status before the first and after the last connection, and again after
holding them through at least one ping round (default ping interval 20 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def make_tokens(database_url: str, users: int) -> list[str]:
    from server.core.db import Database
    from server.identity import service

    db = Database(database_url)
    try:
        async with db.transaction() as session:
            secrets = []
            for index in range(users):
                user = await service.create_local_user(session, f"bench{index}", f"Bench {index}")
                secrets.append(await service.create_token_for(session, user, "bench", None))
            return secrets
    finally:
        await db.close()


# ------------------------------------------------------------------------------------------ clients

REASONS: dict[str, int] = {}  # why connections failed, per client process


async def handshake(session, url: str, token: str):
    """Open the websocket and complete engine.io open + socket.io connect; returns the websocket."""
    import aiohttp

    async with asyncio.timeout(60):  # the whole handshake, pings included
        ws = await session.ws_connect(
            url, autoping=False, max_msg_size=65536, timeout=aiohttp.ClientWSTimeout(ws_close=5)
        )
        try:
            opening = await ws.receive_str()
            if not opening.startswith("0"):
                raise RuntimeError("no engine.io open packet")
            await ws.send_str("40" + json.dumps({"token": token}))
            ack = await ws.receive_str()
            while ack == "2":  # a ping can come first when the server is slow to authenticate
                await ws.send_str("3")
                ack = await ws.receive_str()
            if not ack.startswith("40"):
                raise RuntimeError(f"socket.io connect refused: {ack[:80]}")
        except BaseException:
            await ws.close()
            raise
    return ws


async def one_client(session, url: str, token: str, pending: asyncio.Semaphore, counts: dict[str, int],
                     stop: asyncio.Event) -> None:
    """Connect (at most `pending` handshakes in flight per process, retrying like a real client's
    reconnect), then stay idle answering pings until `stop`."""
    import aiohttp

    ws = None
    for attempt in range(5):
        async with pending:
            try:
                ws = await handshake(session, url, token)
                break
            except Exception as exc:
                reason = f"{type(exc).__name__}: {str(exc)[:60]}"
                REASONS[reason] = REASONS.get(reason, 0) + 1
                counts["retries"] += 1
        await asyncio.sleep(1 + attempt * 2)
    if ws is None:
        counts["failed"] += 1
        return
    counts["connected"] += 1
    try:
        while not stop.is_set():
            receive = asyncio.ensure_future(ws.receive(timeout=None))
            stopping = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({receive, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stopping in done:
                receive.cancel()
                break
            stopping.cancel()
            message = receive.result()
            if message.type == aiohttp.WSMsgType.TEXT and message.data == "2":
                await ws.send_str("3")  # engine.io pong
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                counts["dropped"] += 1
                break
    finally:
        counts["connected"] -= 1
        await ws.close()


def client_process(url: str, tokens: list[str], count: int, rate: float, conn, stop_event, inflight: int = 8) -> None:
    """Open `count` connections at up to `rate` per second; report counts through `conn`."""
    raise_fd_limit()

    async def main() -> None:
        import aiohttp

        counts = {"connected": 0, "failed": 0, "dropped": 0, "retries": 0}
        stop = asyncio.Event()
        pending = asyncio.Semaphore(inflight)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            tasks = []
            for index in range(count):
                token = tokens[index % len(tokens)]
                tasks.append(asyncio.create_task(one_client(session, url, token, pending, counts, stop)))
                if index % 10 == 9:
                    await asyncio.sleep(10 / rate)
            conn.send(("opened", counts))
            while not stop_event.is_set():
                await asyncio.sleep(0.2)
                if conn.poll():
                    conn.recv()
                    conn.send(("status", counts))
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            if REASONS:
                print(f"client handshake failures (retried): {REASONS}", file=sys.stderr)

    asyncio.run(main())


# ------------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument("--users", type=int, default=100, help="connections are spread over this many users")
    parser.add_argument("--rate", type=float, default=50.0, help="new connections per second (all processes)")
    parser.add_argument("--hold", type=float, default=30.0, help="seconds to hold the connections idle")
    args = parser.parse_args()

    limit = raise_fd_limit()
    if limit < args.connections + 200:
        sys.exit(f"file-descriptor limit {limit} is too low for {args.connections} connections; raise `ulimit -Hn`")
    tmp = Path(tempfile.mkdtemp(prefix="brygga-bench-conn-"))
    port = free_port()
    env = {
        **os.environ,
        "BRYGGA_DATA_DIR": str(tmp),
        "BRYGGA_PORT": str(port),
        "BRYGGA_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "BRYGGA_LOG_LEVEL": "WARNING",
    }
    env.pop("BRYGGA_DATABASE_URL", None)
    env.pop("BRYGGA_REDIS_URL", None)
    python = sys.executable
    subprocess.run([python, "-m", "server", "migrate"], env=env, check=True, capture_output=True, cwd=ROOT)
    tokens = asyncio.run(make_tokens(f"sqlite+aiosqlite:///{tmp / 'brygga.db'}", args.users))
    server = subprocess.Popen(
        [python, "-m", "server", "serve"], env=env, cwd=ROOT, preexec_fn=raise_fd_limit,
        stdout=(tmp / "server.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        # Warm up (imports, first connection paths) before the baseline.
        warm_parent, warm_child = multiprocessing.Pipe()
        warm_stop = multiprocessing.Event()
        warm = multiprocessing.Process(target=client_process, args=(url, tokens, 20, 100.0, warm_child, warm_stop))
        warm.start()
        warm_parent.recv()
        warm_stop.set()
        warm.join(30)
        time.sleep(2)
        baseline = rss_kib(server.pid)

        per_process = [args.connections // args.processes] * args.processes
        per_process[0] += args.connections - sum(per_process)
        stop = multiprocessing.Event()
        pipes, procs = [], []
        started = time.monotonic()
        for count in per_process:
            parent, child = multiprocessing.Pipe()
            proc = multiprocessing.Process(
                target=client_process, args=(url, tokens, count, args.rate / args.processes, child, stop)
            )
            proc.start()
            pipes.append(parent)
            procs.append(proc)
        for pipe in pipes:
            pipe.recv()

        def status() -> dict[str, int]:
            for pipe in pipes:
                pipe.send("status")
            replies = [pipe.recv()[1] for pipe in pipes]
            return {key: sum(reply[key] for reply in replies) for key in replies[0]}

        # wait until every connection has settled (connected or given up)
        for _ in range(600):
            counts = status()
            if counts["connected"] + counts["failed"] >= args.connections:
                break
            time.sleep(1)
        ramp = time.monotonic() - started
        after_open = rss_kib(server.pid)
        time.sleep(args.hold)
        counts = status()
        held, failed = counts["connected"], counts["failed"] + counts["dropped"]
        after_hold = rss_kib(server.pid)
        stop.set()
        for proc in procs:
            proc.join(60)

        per_conn = (after_hold - baseline) * 1024 / max(held, 1)
        ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {ram_gib:.0f} GiB RAM, "
              f"Python {platform.python_version()}")
        print(f"connections requested: {args.connections} over {args.users} users "
              f"from {args.processes} client processes")
        print(f"connected and still open after {args.hold:.0f} s idle: {held} "
              f"(gave up or dropped: {failed}; handshakes retried: {counts['retries']})")
        print(f"ramp-up: {ramp:.1f} s ({held / ramp:.0f} connections/s)")
        print(f"server RSS: baseline {baseline / 1024:.1f} MiB, after connect {after_open / 1024:.1f} MiB, "
              f"after hold {after_hold / 1024:.1f} MiB")
        print(f"memory per connection: {per_conn / 1024:.1f} KiB (target <= 40 KB)")
        target_ok = held >= 10_000 and per_conn <= 40_000
        print(f"target 10,000 at <= 40 KB each: {'met' if target_ok else 'NOT met'}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
