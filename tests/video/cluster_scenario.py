"""A meeting across the two nodes of `deploy/local-cluster`, run *inside* a network namespace by
tests/video/test_multinode.py.

`python -m tests.video.cluster_scenario --out result.json --addresses A B [--failover]`

Starts the local cluster (PostgreSQL over its Unix socket, a private Redis, two Brygga nodes, nginx
with TLS, coturn). The host nurse's Chromium comes through nginx (TLS), which sends it to one node;
the guest's Chromium and the aiortc bot of an invited unit connect straight to the *other* node; a
second guest waits in the lobby through nginx. The guest is let in by a click in the host's lobby.
With `--failover`, the meeting's owner node is SIGKILLed mid-call and the time until every
participant decodes video again is measured. Writes what everyone observed as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp

from server.core import leases
from server.core.db import Database
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, Actors, free_port
from tests.video.bot import Bot
from tests.video.scenario import (
    MEDIA_ARGS,
    BrowserParticipant,
    book_with_guests,
    run_and_write,
    scenario_arguments,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
PG_SOCKET_ADMIN = "postgresql://postgres@/postgres?host=/var/run/postgresql"  # the host's PG, from any namespace


def insecure_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the cluster's self-signed dev certificate
    return context


class Cluster:
    def __init__(self, addresses: list[str], *, nginx: bool = True, turn: bool = True) -> None:
        self.state = tempfile.mkdtemp(prefix="brygga-video-cluster-")
        self.env = {
            **os.environ,
            "BRYGGA_CLUSTER_DIR": self.state,
            "BRYGGA_CLUSTER_PG_ADMIN": os.environ.get("BRYGGA_TEST_PG_SOCKET_ADMIN", PG_SOCKET_ADMIN),
            "BRYGGA_CLUSTER_DB": f"brygga_vc_{uuid.uuid4().hex[:10]}",
            "BRYGGA_CLUSTER_PORTS": f"{free_port()} {free_port()}",
            "BRYGGA_CLUSTER_REDIS_PORT": str(free_port()),
            "BRYGGA_CLUSTER_NGINX_PORT": str(free_port() if nginx else 0),
            "BRYGGA_CLUSTER_TURN_PORT": str(free_port() if turn else 0),
            "BRYGGA_CLUSTER_TURN_IP": addresses[0],
            "PYTHON": sys.executable,
        }
        self.values: dict[str, str] = {}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(ROOT / "deploy" / "local-cluster"), *args], env=self.env, capture_output=True, text=True, timeout=180
        )

    def start(self) -> None:
        started = self.run("start")
        if started.returncode != 0:
            raise RuntimeError(started.stdout + started.stderr + self.logs())
        self.values = dict(line.split("=", 1) for line in self.run("env").stdout.split())

    def pid(self, node: str) -> int:
        return int((Path(self.state) / f"{node}.pid").read_text())

    def url(self, node: str) -> str:
        return self.values["BRYGGA_NODE_A" if node == "node-1" else "BRYGGA_NODE_B"]

    def logs(self) -> str:
        return "".join(
            f"\n--- {log.name}\n{log.read_text(errors='replace')[-2500:]}"
            for log in sorted(Path(self.state).glob("*.log"))
        )

    def stop(self) -> None:
        self.run("stop", "--drop")
        shutil.rmtree(self.state, ignore_errors=True)


def alive(pid: int) -> bool:
    """Running (an exited child nobody reaped yet is a zombie: not running)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


async def exited(pids: list[int], timeout: float) -> list[int]:
    """Wait for processes to end; the ones still running after `timeout`."""
    deadline = time.monotonic() + timeout
    while [pid for pid in pids if alive(pid)] and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return [pid for pid in pids if alive(pid)]


async def owner_node(cluster: Cluster, db: Database, meeting_id: str) -> str:
    """Which node (node-1/node-2) holds the meeting's room lease; node ids are host:pid:random."""
    held = await leases.holder(db, f"video-room:{meeting_id}")
    assert held is not None, "the meeting has no owner node"
    pid = int(held.owner.split(":")[1])
    return next(node for node in ("node-1", "node-2") if cluster.pid(node) == pid)


WINDOW = 1.0  # seconds: video "flows" from a participant whose decoded frames grew within the last second
STEP = 0.25


async def growing(sample: Any, others: int, timeout: float, *, flowing: bool = True) -> None:
    """Wait until video from `others` remote participants flows, or with `flowing=False` until it has
    stopped from at least one of them (frames decoded within the last WINDOW)."""
    history = [await sample()]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(STEP)
        history.append(await sample())
        history = history[-int(WINDOW / STEP) - 1 :]
        if len(history) * STEP <= WINDOW:
            continue
        before, now = history[0], history[-1]
        grown = len([p for p, n in now.items() if n > before.get(p, 0)])
        if (grown >= others) == flowing:
            return
    raise TimeoutError("video still flowing" if not flowing else "no growing video")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"addresses": args.addresses}
    cluster = Cluster(args.addresses)
    bots: list[Bot] = []
    playwright_cm: Any = None
    tls_sessions: list[aiohttp.ClientSession] = []
    db: Database | None = None
    try:
        cluster.start()
        front = cluster.values["BRYGGA_FRONT"]
        db = Database(cluster.values["BRYGGA_DATABASE_URL"])
        actors = Actors(SimpleNamespace(db=db))  # type: ignore[arg-type]
        ward = await actors.unit("Avdelning 12, Södersjukhuset")
        home_care = await actors.unit("Hemtjänst Farsta", org_kind="municipality")
        _, nurse = await actors.user("nurse", units={ward: "member"})
        _, officer = await actors.user("officer", units={home_care: "member"})
        headers = {"Authorization": f"Bearer {nurse}"}
        async with aiohttp.ClientSession(cluster.url("node-1")) as http:
            body = {
                "title": "SIP-möte",
                "starts_at": datetime.now(UTC).isoformat(),
                "invited_unit_ids": [str(home_care)],
            }
            meeting, links, waiting_guest = await book_with_guests(http, headers, body)
        meeting_id = meeting["id"]

        from playwright.async_api import async_playwright

        playwright_cm = async_playwright()
        playwright = await playwright_cm.__aenter__()
        chromium = [
            await playwright.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=[*CHROMIUM_ARGS, *MEDIA_ARGS, "--ignore-certificate-errors"],
            )
            for _ in range(2)
        ]
        # The host comes through nginx (TLS); nginx picks her node.
        host = BrowserParticipant(chromium[0], f"{front}/meeting#meeting={meeting_id}&token={nurse}", "host")
        host_page = await host.open()
        await host_page.get_by_role("button", name="Anslut till mötet").click(timeout=20_000)
        await host_page.get_by_test_id("call").wait_for(timeout=30_000)
        owner = await owner_node(cluster, db, meeting_id)
        other = "node-2" if owner == "node-1" else "node-1"
        result["nodes"] = {"host": owner, "guest": other, "bot": other, "waiting_guest": "nginx"}

        # The waiting guest also comes through nginx, from the same address: the host's node.
        tls = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=insecure_tls()))
        tls_sessions.append(tls)
        lurker = Bot(front, {"guest_token": waiting_guest["guest_token"]}, meeting_id, rejoin=True, http_session=tls)
        bots.append(lurker)
        await lurker.connect()
        result["lurker_join"] = (await lurker.join()).get("state")

        # The guest's browser and the bot go straight to the other node.
        guest_url = links[0]["url"].replace(cluster.url("node-1"), cluster.url(other))
        guest = BrowserParticipant(chromium[1], guest_url, "guest")
        browsers = [host, guest]
        guest_page = await guest.open()
        await guest_page.get_by_label("Ditt namn").fill("Greta Gäst")
        await guest_page.get_by_label("Engångskod").fill(links[0]["code"])
        await guest_page.get_by_role("button", name="Gå till väntrummet").click()
        await guest_page.get_by_test_id("waiting").wait_for(timeout=20_000)
        entry = host_page.get_by_test_id("lobby-entry").filter(has_text="Greta Gäst")
        await entry.wait_for(timeout=20_000)
        result["host_lobby_before"] = await host_page.get_by_test_id("lobby").inner_text()
        await entry.get_by_role("button", name="Släpp in").click()
        await guest_page.get_by_test_id("call").wait_for(timeout=20_000)

        bot = Bot(cluster.url(other), {"token": officer}, meeting_id, rejoin=True)
        bots.append(bot)
        await bot.connect()
        result["bot_join"] = (await bot.join()).get("state")

        async def browser_frames(participant: BrowserParticipant) -> dict[str, int]:
            return {pid: v["frames"] for pid, v in (await participant.frames()).items()}

        async def bot_frames() -> dict[str, int]:
            return dict(bot.frames)

        samplers = {"host": lambda: browser_frames(host), "guest": lambda: browser_frames(guest), "bot": bot_frames}
        await asyncio.gather(*(growing(sample, 2, 90) for sample in samplers.values()))
        first = {label: await sample() for label, sample in samplers.items()}
        await asyncio.sleep(args.sample_seconds)
        second = {label: await sample() for label, sample in samplers.items()}
        result["frames_delta"] = {
            label: {pid: second[label][pid] - first[label].get(pid, 0) for pid in second[label]} for label in samplers
        }
        result["bot_audio"] = dict(bot.audio_frames)
        result["relay_owner"] = await owner_node(cluster, db, meeting_id)
        result["relay_processes"] = {
            node: subprocess.run(
                ["pgrep", "-P", str(cluster.pid(node)), "-f", "relay_worker"], capture_output=True, text=True
            ).stdout.split()
            for node in ("node-1", "node-2")
        }
        result["lurker_before"] = {"state": lurker.state, "offers": lurker.offers, "events": list(lurker.events)}

        if args.failover:
            killed = await owner_node(cluster, db, meeting_id)
            started = time.monotonic()
            os.kill(cluster.pid(killed), signal.SIGKILL)

            async def back(label: str) -> float:
                try:
                    # The old relay died with its node, so its media ends at once: a stall shows within
                    # a few seconds, unless the participant got the new owner's media within a WINDOW.
                    await growing(samplers[label], 2, 3 * WINDOW, flowing=False)
                except TimeoutError:
                    stalled_never.append(label)  # moved that fast (the old relay is gone, checked below)
                await growing(samplers[label], 2, 30)
                return round(time.monotonic() - started, 2)

            stalled_never: list[str] = []

            times = await asyncio.gather(*(back(label) for label in samplers), return_exceptions=True)
            result["failover"] = {
                "killed": killed,
                "seconds": {
                    label: t if isinstance(t, float) else f"{type(t).__name__}: {t}"
                    for label, t in zip(samplers, times, strict=True)
                },
                "never_stalled_for_a_window": stalled_never,
                "new_owner": await owner_node(cluster, db, meeting_id),
                "old_relays_alive": await exited([int(pid) for pid in result["relay_processes"][killed]], 10),
                "bot_events": [(name, round(at - started, 2)) for name, at in bot.event_times if at > started],
            }

            async def lurker_waits_again() -> bool:
                return lurker.state == "waiting" and "rejoin" in lurker.events

            await wait_for(lurker_waits_again, 20, "the waiting guest to be back in the waiting room")
            lobby = host_page.get_by_test_id("lobby-entry").filter(has_text="Väntande gäst")
            await lobby.wait_for(timeout=20_000)
            result["after_failover"] = {
                "lurker": {"state": lurker.state, "offers": lurker.offers, "events": list(lurker.events)},
                "host_lobby": await host_page.get_by_test_id("lobby").inner_text(),
                "guest_in_call": await guest_page.get_by_test_id("call").count(),
                "bot_events": list(bot.events),
            }
        result["browser_errors"] = {p.label: p.errors for p in browsers}
        result["logs"] = cluster.logs()
    except Exception as exc:
        import traceback

        result["error"] = f"{type(exc).__name__}: {exc}"
        result["trace"] = traceback.format_exc()[-3000:]
        result["diag"] = [{"events": b.events, "state": b.state, "frames": b.frames} for b in bots]
        result["logs"] = cluster.logs()
    finally:
        for participant_bot in bots:
            with contextlib.suppress(Exception):
                await participant_bot.close()
        for session in tls_sessions:
            await session.close()
        if playwright_cm is not None:
            with contextlib.suppress(Exception):
                await playwright_cm.__aexit__(None, None, None)
        if db is not None:
            await db.close()
        cluster.stop()
    return result


def main() -> None:
    parser = scenario_arguments()
    parser.add_argument("--failover", action="store_true")
    run_and_write(run, parser.parse_args())


if __name__ == "__main__":
    main()
