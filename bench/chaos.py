"""Zero-loss chaos run: many socket.io clients send (with resends) while the server is SIGKILLed.

    .venv/bin/python bench/chaos.py --clients 200 --kills 10 --messages 8

Afterwards it checks, against the SQLite file itself:
* every acked message is stored exactly once (UNIQUE(sender, client_id) and the acked ids match),
* no message is stored that was never acked,
* every stored message reached every member of every participant unit exactly once: through a live
  `message:new` (never twice) or through `sync` after a reconnect (clients dedupe by id),
* a resend with the same client_id always returned the same message.

tests/messaging/test_zero_loss.py runs the same code with the same parameters.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Peer, ServerProcess, Topology, build_topology, connect_all, migrate
from server.settings import Settings


@dataclass
class ChaosConfig:
    clients: int = 200
    unit_size: int = 4
    messages: int = 8  # per client
    kills: int = 10
    kill_interval: tuple[float, float] = (0.6, 1.6)  # seconds of load between kills
    resend_probability: float = 0.2  # after an ack, resend the same client_id once more
    pace: tuple[float, float] = (0.0, 0.3)  # pause between a client's messages
    seed: int = 1


@dataclass
class ChaosReport:
    acked: int = 0
    stored: int = 0
    kills: int = 0
    restart_seconds: list[float] = field(default_factory=list)
    missing_deliveries: int = 0
    duplicate_live_deliveries: int = 0
    stored_not_acked: int = 0
    acked_not_stored: int = 0
    id_mismatch: int = 0
    resend_checks: int = 0
    resend_mismatch: int = 0
    deliveries: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            not (
                self.missing_deliveries
                or self.duplicate_live_deliveries
                or self.stored_not_acked
                or self.acked_not_stored
                or self.id_mismatch
                or self.resend_mismatch
            )
            and self.kills > 0
        )

    def lines(self) -> list[str]:
        worst = max(self.restart_seconds, default=0.0)
        return [
            f"acked messages:             {self.acked}",
            f"stored messages:            {self.stored}",
            f"server SIGKILLs:            {self.kills} (restart to healthy: max {worst:.2f}s)",
            f"deliveries checked:         {self.deliveries}",
            f"missing deliveries:         {self.missing_deliveries}",
            f"duplicate live deliveries:  {self.duplicate_live_deliveries}",
            f"stored but never acked:     {self.stored_not_acked}",
            f"acked but not stored:       {self.acked_not_stored}",
            f"acked id != stored id:      {self.id_mismatch}",
            f"resends checked / mismatch: {self.resend_checks} / {self.resend_mismatch}",
            f"duration:                   {self.seconds:.1f}s",
            f"RESULT:                     {'PASS' if self.ok else 'FAIL'}",
        ]


async def run_chaos(data_dir: Path, config: ChaosConfig) -> ChaosReport:
    rng = random.Random(config.seed)
    report = ChaosReport()
    started = time.perf_counter()
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    await migrate(data_dir)
    topology = await build_topology(Settings(data_dir=data_dir), config.clients, config.unit_size)
    server = ServerProcess(data_dir)
    report.restart_seconds.append(await server.start())
    peers = [Peer(member, server.url) for member in topology.members]
    try:
        await connect_all(peers)
        done = asyncio.Event()

        async def killer() -> None:
            while report.kills < config.kills and not done.is_set():
                await asyncio.sleep(rng.uniform(*config.kill_interval))
                await server.kill()
                report.kills += 1
                report.restart_seconds.append(await server.start())

        kill_task = asyncio.create_task(killer())
        await send_load(peers, config, rng)
        await kill_task  # all kills happen even if the senders were quick
        done.set()
        await final_sync(peers)
    finally:
        await asyncio.gather(*(peer.close() for peer in peers), return_exceptions=True)
        await server.stop()
    verify(data_dir / "brygga.db", topology, peers, report)
    report.seconds = time.perf_counter() - started
    return report


async def send_load(senders: list[Peer], config: ChaosConfig, rng: random.Random) -> None:
    """Each sender sends `config.messages` messages (resending until acked, sometimes once more on purpose)."""

    async def sender(peer: Peer, peer_rng: random.Random) -> None:
        for number in range(config.messages):
            await asyncio.sleep(peer_rng.uniform(*config.pace))
            await peer.send(
                f"chaos {number} från {peer.member.user_id.hex[:6]}",
                resend_check=peer_rng.random() < config.resend_probability,
            )

    await asyncio.gather(*(sender(peer, random.Random(rng.random())) for peer in senders))


@dataclass
class PacedRun:
    """What `send_paced` did: per message, when it was offered and when its first ack came (time.monotonic())."""

    started: float
    messages: list[tuple[float, float]] = field(default_factory=list)  # (offered, first ack)

    def offered_rate(self) -> float:
        """New messages per second the generator really offered (it falls behind if this process is busy)."""
        last = max((offered for offered, _ in self.messages), default=self.started)
        return (len(self.messages) - 1) / (last - self.started) if last > self.started else 0.0

    def acked_rate(self, start: float, end: float) -> float:
        """Messages first acked in [start, end), per second."""
        acked = sum(1 for _, at in self.messages if start <= at < end)
        return acked / (end - start) if end > start else 0.0

    def ack_seconds(self, start: float, end: float) -> list[float]:
        """Offer-to-ack times of the messages offered in [start, end), sorted."""
        return sorted(acked - offered for offered, acked in self.messages if start <= offered < end)


async def send_paced(
    senders: list[Peer],
    rate: float,
    seconds: float,
    rng: random.Random,
    resend_probability: float = 0.2,
    ack_timeout: float = 10.0,
) -> PacedRun:
    """Open-loop load: users write `rate` new messages per second for `seconds`, round robin over `senders`.

    Each written message goes into its sender's outbox at its scheduled time whether or not earlier
    ones were acked, so a slow or dead server does not lower the offered rate. Like the web client
    (client_web/src/realtime.ts), each sender flushes its outbox in order with one message in flight,
    waits up to `ack_timeout` (10 s there) for the ack and resends with the same client_id until it
    comes; some messages are resent once more on purpose after the ack. The measured ack time includes
    the wait in the outbox.
    """
    total = round(rate * seconds)
    run = PacedRun(time.monotonic())
    outboxes: dict[int, asyncio.Queue[tuple[int, float, bool] | None]] = {id(peer): asyncio.Queue() for peer in senders}

    async def flush(peer: Peer) -> None:
        outbox = outboxes[id(peer)]
        while (item := await outbox.get()) is not None:
            number, offered, resend = item
            client_id = str(uuid.uuid4())
            body = f"chaos {number} från {peer.member.user_id.hex[:6]}"
            await peer.send(body, resend_check=resend, client_id=client_id, ack_timeout=ack_timeout)
            run.messages.append((offered, peer.acked_at[client_id]))

    flushers = [asyncio.create_task(flush(peer)) for peer in senders]
    for number in range(total):
        delay = run.started + number / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        peer = senders[number % len(senders)]
        outboxes[id(peer)].put_nowait((number, time.monotonic(), rng.random() < resend_probability))
    for outbox in outboxes.values():
        outbox.put_nowait(None)
    await asyncio.gather(*flushers)
    return run


async def final_sync(peers: list[Peer], rounds: int = 20) -> None:
    """After the last restart every client catches up through sync (as a reconnecting app would)."""
    pending = list(peers)
    for _ in range(rounds):
        results = await asyncio.gather(*(peer.sync_all() for peer in pending))
        pending = [peer for peer, ok in zip(pending, results, strict=True) if not ok]
        print(f"final sync: {len(pending)} clients still behind", file=sys.stderr, flush=True)
        if not pending:
            return
        await asyncio.sleep(0.5)
        await asyncio.gather(*(peer.hard_reconnect() for peer in pending if not peer.connected.is_set()))
    raise RuntimeError(f"{len(pending)} clients could not sync after the last restart")


STORED_QUERY = "SELECT sender_user_id, client_id, id, conversation_id FROM messages"


def verify(db_file: Path, topology: Topology, peers: list[Peer], report: ChaosReport) -> None:
    with sqlite3.connect(db_file) as raw:
        rows = raw.execute(STORED_QUERY).fetchall()
    verify_rows(rows, topology, peers, report)


def verify_rows(rows: list[Any], topology: Topology, peers: list[Peer], report: ChaosReport) -> None:
    """Compare the stored (sender, client_id, id, conversation) rows with what the clients saw."""
    stored = {
        (str(uuid.UUID(str(sender))), str(uuid.UUID(str(client)))): (str(uuid.UUID(str(mid))), uuid.UUID(str(conv)))
        for sender, client, mid, conv in rows
    }
    report.stored = len(rows)
    acked: dict[tuple[str, str], str] = {}
    for peer in peers:
        for client_id, message_id in peer.acked.items():
            acked[(str(peer.member.user_id), client_id)] = message_id
        report.resend_checks += peer.duplicates_checked
        report.resend_mismatch += peer.resend_mismatch
    report.acked = len(acked)
    report.acked_not_stored = len(acked.keys() - stored.keys())
    report.stored_not_acked = len(stored.keys() - acked.keys())
    report.id_mismatch = sum(1 for key, message_id in acked.items() if key in stored and stored[key][0] != message_id)
    by_user = {str(peer.member.user_id): peer for peer in peers}
    for (_sender, _client), (message_id, conversation_id) in stored.items():
        for user_id in topology.conversations[conversation_id]:
            peer = by_user[str(user_id)]
            report.deliveries += 1
            if peer.live[message_id] > 1:
                report.duplicate_live_deliveries += 1
            if peer.live[message_id] == 0 and message_id not in peer.synced and message_id not in peer.own_acked:
                report.missing_deliveries += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=ChaosConfig.clients)
    parser.add_argument("--unit-size", type=int, default=ChaosConfig.unit_size)
    parser.add_argument("--messages", type=int, default=ChaosConfig.messages, help="per client")
    parser.add_argument("--kills", type=int, default=ChaosConfig.kills)
    parser.add_argument("--resend-probability", type=float, default=ChaosConfig.resend_probability)
    parser.add_argument("--seed", type=int, default=ChaosConfig.seed)
    parser.add_argument("--data-dir", type=Path, help="default: a temporary directory")
    args = parser.parse_args()
    config = ChaosConfig(
        clients=args.clients,
        unit_size=args.unit_size,
        messages=args.messages,
        kills=args.kills,
        resend_probability=args.resend_probability,
        seed=args.seed,
    )
    with tempfile.TemporaryDirectory(prefix="brygga-chaos-") as tmp:
        report = asyncio.run(run_chaos(args.data_dir or Path(tmp), config))
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
