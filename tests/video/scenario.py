"""A real meeting through Brygga, run *inside* a network namespace by tests/video/test_call.py.

`python -m tests.video.scenario --out result.json [--browsers] [--relay-only] --addresses A B`

Starts Brygga (SQLite, its own relay worker process), optionally coturn with REST credentials,
two headless Debian Chromium instances (a host nurse and a guest who waits and is admitted from the
waiting room by clicking in the host's page), an aiortc bot from an invited unit, and a second guest
bot that is never admitted. Writes what every participant observed as JSON; the test asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from server.settings import Settings
from server.video.media import MEDIA
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, Actors, free_port
from tests.video.bot import Bot, serve

ROOT = Path(__file__).resolve().parents[2]
MEDIA_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]


def start_coturn(address: str, port: int, secret: str, workdir: Path) -> subprocess.Popen[bytes]:
    """coturn as deployed (REST secret, private peers denied) but allowed to reach the relay's net."""
    network = address.rsplit(".", 1)[0]
    log = (workdir / "coturn.log").open("wb")
    return subprocess.Popen(
        [
            shutil.which("turnserver") or "/usr/bin/turnserver",
            "-n",
            "--listening-ip",
            address,
            "--relay-ip",
            address,
            "--listening-port",
            str(port),
            "--min-port",
            "49152",
            "--max-port",
            "49352",
            "--use-auth-secret",
            "--static-auth-secret",
            secret,
            "--realm",
            "brygga.test",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--fingerprint",
            "--no-multicast-peers",
            "--denied-peer-ip",
            "10.0.0.0-10.255.255.255",
            "--denied-peer-ip",
            "172.16.0.0-172.31.255.255",
            "--denied-peer-ip",
            "192.168.0.0-192.168.255.255",
            "--allowed-peer-ip",
            f"{network}.0-{network}.255",
            "--pidfile",
            str(workdir / "turnserver.pid"),
            "--log-file",
            "stdout",
            "--simple-log",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def turn_allocation(address: str, port: int, username: str, password: str) -> str:
    """Try a TURN allocation the way aiortc does; 'ok' or the error."""
    from aioice.turn import create_turn_endpoint

    class Sink(asyncio.DatagramProtocol):
        pass

    try:
        transport, _protocol = await asyncio.wait_for(
            create_turn_endpoint(
                Sink, server_addr=(address, port), username=username, password=password, transport="udp"
            ),
            10,
        )
    except Exception as exc:
        return f"refused: {type(exc).__name__}: {exc}"[:200]
    transport.close()
    return "ok"


class BrowserParticipant:
    def __init__(self, browser: Any, url: str, label: str) -> None:
        self.browser = browser
        self.url = url
        self.label = label
        self.errors: list[str] = []
        self.page: Any = None

    async def open(self) -> Any:
        context = await self.browser.new_context()
        self.page = await context.new_page()
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        await self.page.goto(self.url)
        return self.page

    async def frames(self) -> dict[str, dict[str, Any]]:
        """participant id -> what the page's own stats say about that participant's video."""
        result: dict[str, dict[str, Any]] = await self.page.evaluate(
            """() => Object.fromEntries([...document.querySelectorAll('[data-testid=tile][data-remote=true]')]
                 .map(t => [t.dataset.participantId, {name: t.querySelector('[data-testid=name]')?.textContent,
                   identity: t.querySelector('[data-testid=identity]')?.textContent,
                   organisation: t.querySelector('[data-testid=organisation]')?.textContent,
                   frames: Number(t.dataset.framesDecoded || 0), width: Number(t.dataset.frameWidth || 0),
                   codec: t.dataset.codec || '', bytes: Number(t.dataset.bytesReceived || 0)}]))"""
        )
        return result


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.25)
    raise TimeoutError(f"timed out waiting for {what}")


async def chat_round(
    base: str, browsers: list[BrowserParticipant], conversation_id: str, officer_headers: dict[str, str]
) -> dict[str, Any]:
    """The host writes in the meeting chat; the officer answers from Brygga's messaging API."""
    host_page, guest_page = browsers[0].page, browsers[1].page
    chat = host_page.get_by_test_id("chat")
    await chat.get_by_label("Meddelande").fill("Rullator levereras fredag")
    await chat.get_by_role("button", name="Skicka").click()
    await chat.get_by_test_id("chat-message").filter(has_text="Rullator levereras fredag").wait_for(timeout=10_000)
    async with aiohttp.ClientSession(base) as http:
        async with http.post(
            f"/api/v1/conversations/{conversation_id}/messages",
            json={"client_id": str(uuid.uuid4()), "body": "Hemtjänsten tar emot kl 14"},
            headers=officer_headers,
        ) as response:
            answered = response.status
        await chat.get_by_test_id("chat-message").filter(has_text="Hemtjänsten tar emot kl 14").wait_for(timeout=10_000)
        async with http.get(f"/api/v1/conversations/{conversation_id}/messages", headers=officer_headers) as response:
            stored = [m["body"] for m in (await response.json())["items"] if m["kind"] == "text"]
    return {
        "answer_status": answered,
        "host_panel": await chat.get_by_test_id("chat-message").all_inner_texts(),
        "guest_panels": await guest_page.get_by_test_id("chat").count(),
        "stored": stored,
    }


async def book_with_guests(http: Any, headers: dict[str, str], body: dict[str, Any]) -> tuple[Any, Any, Any]:
    """Book the meeting with two guest links; the second guest redeems hers by API (she will wait in the
    lobby as a bot). Returns (meeting, links, the waiting guest's redemption)."""
    async with http.post("/api/v1/meetings", json=body, headers=headers) as response:
        meeting = await response.json()
    links = []
    for label in ("Patient", "Anhörig"):
        async with http.post(
            f"/api/v1/meetings/{meeting['id']}/guest-links", json={"label": label}, headers=headers
        ) as response:
            links.append(await response.json())
    async with http.post(
        "/api/v1/guest-links/redeem",
        json={"link": links[1]["url"].split("#guest=")[1], "name": "Väntande gäst", "code": links[1]["code"]},
    ) as response:
        waiting_guest = await response.json()
    return meeting, links, waiting_guest


async def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"addresses": args.addresses}
    workdir = Path(tempfile.mkdtemp(prefix="brygga-call-"))
    port = free_port()
    turn_port = free_port()
    secret = secrets.token_hex(16)
    settings = Settings(
        data_dir=workdir / "data",
        public_base_url=f"http://127.0.0.1:{port}",
        web_dist=ROOT / "client_web" / "dist",
        turn_urls=[f"turn:{args.addresses[0]}:{turn_port}?transport=udp"] if args.relay_only else [],
        turn_secret=secret if args.relay_only else "",
        video_ice_transport_policy="relay" if args.relay_only else "all",
    )
    settings.data_dir.mkdir(parents=True)
    runner, base, ctx = await serve(settings)
    coturn = start_coturn(args.addresses[0], turn_port, secret, workdir) if args.relay_only else None
    bots: list[Bot] = []
    playwright_cm: Any = None
    try:
        actors = Actors(ctx)
        ward = await actors.unit("Avdelning 12, Södersjukhuset")
        home_care = await actors.unit("Hemtjänst Farsta", org_kind="municipality")
        _, nurse = await actors.user("nurse", units={ward: "member"})
        _, officer = await actors.user("officer", units={home_care: "member"})
        headers = {"Authorization": f"Bearer {nurse}"}
        officer_headers = {"Authorization": f"Bearer {officer}"}
        async with aiohttp.ClientSession(base) as http:
            # Booked from the case's conversation, which is also the meeting chat.
            async with http.post(
                "/api/v1/conversations",
                json={"subject": "Utskrivning", "from_unit_id": str(ward), "unit_ids": [str(home_care)]},
                headers=headers,
            ) as response:
                conversation_id = (await response.json())["id"]
            body = {
                "title": "SIP-möte",
                "starts_at": datetime.now(UTC).isoformat(),
                "invited_unit_ids": [str(home_care)],
                "conversation_id": conversation_id,
            }
            meeting, links, waiting_guest = await book_with_guests(http, headers, body)
        meeting_id = meeting["id"]

        if coturn is not None:
            from server.video.turn import turn_credentials

            await asyncio.sleep(1.0)  # coturn binds its sockets
            now = datetime.now(UTC)
            expired_user, expired_pass = turn_credentials(secret, "expired", now - timedelta(hours=2), 3600)
            valid_user, valid_pass = turn_credentials(secret, "valid", now, 3600)
            result["turn_valid"] = await turn_allocation(args.addresses[0], turn_port, valid_user, valid_pass)
            result["turn_expired"] = await turn_allocation(args.addresses[0], turn_port, expired_user, expired_pass)

        # The guest who is never admitted.
        lurker = Bot(base, {"guest_token": waiting_guest["guest_token"]}, meeting_id)
        bots.append(lurker)
        await lurker.connect()
        result["lurker_join"] = await lurker.join()

        browsers: list[BrowserParticipant] = []
        if args.browsers:
            from playwright.async_api import async_playwright

            playwright_cm = async_playwright()
            playwright = await playwright_cm.__aenter__()
            chromium = []
            for _ in range(2):
                chromium.append(
                    await playwright.chromium.launch(
                        executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *MEDIA_ARGS]
                    )
                )
            host = BrowserParticipant(chromium[0], f"{base}/meeting#meeting={meeting_id}&token={nurse}", "host")
            guest = BrowserParticipant(chromium[1], links[0]["url"], "guest")
            browsers = [host, guest]
            host_page = await host.open()
            await host_page.get_by_role("button", name="Anslut till mötet").click(timeout=20_000)
            await host_page.get_by_test_id("call").wait_for(timeout=20_000)
            guest_page = await guest.open()
            await guest_page.get_by_label("Ditt namn").fill("Greta Gäst")
            await guest_page.get_by_label("Engångskod").fill(links[0]["code"])
            await guest_page.get_by_role("button", name="Gå till väntrummet").click()
            await guest_page.get_by_test_id("waiting").wait_for(timeout=20_000)
            result["guest_waiting_participant_tiles"] = await guest_page.locator("[data-testid=tile]").count()
            entry = host_page.get_by_test_id("lobby-entry").filter(has_text="Greta Gäst")
            await entry.wait_for(timeout=20_000)
            result["host_lobby_text"] = await host_page.get_by_test_id("lobby").inner_text()
            await entry.get_by_role("button", name="Släpp in").click()
            await guest_page.get_by_test_id("call").wait_for(timeout=20_000)

        bot = Bot(base, {"token": officer}, meeting_id)
        bots.append(bot)
        await bot.connect()
        result["bot_join"] = {k: v for k, v in (await bot.join()).items() if k != "ice_servers"}
        result["bot_ice_servers"] = [
            {"urls": s["urls"], "has_credential": bool(s.get("credential"))} for s in bot.ack.get("ice_servers", [])
        ]
        if not args.browsers:
            second = Bot(base, {"token": nurse}, meeting_id)
            bots.append(second)
            await second.connect()
            await second.join()

        others = len(browsers) if browsers else 1  # every joined participant but oneself

        async def bot_sees_everyone() -> bool:
            return len([n for n in bot.frames.values() if n > 0]) >= others

        await wait_for(bot_sees_everyone, 60, "the bot to decode video from every other participant")

        async def browsers_see_everyone() -> bool:
            for participant in browsers:
                seen = await participant.frames()
                if len([v for v in seen.values() if v["frames"] > 0]) < others:
                    return False
            return True

        await wait_for(browsers_see_everyone, 60, "each browser to decode video from every other participant")
        first = {p.label: await p.frames() for p in browsers}
        bot_first = dict(bot.frames)
        await asyncio.sleep(args.sample_seconds)
        second_sample = {p.label: await p.frames() for p in browsers}
        result["browsers"] = {
            p.label: {
                pid: {**second_sample[p.label][pid], "delta": second_sample[p.label][pid]["frames"] - f["frames"]}
                for pid, f in first[p.label].items()
            }
            for p in browsers
        }
        result["bot"] = {
            "participant_id": bot.participant_id,
            "frames_delta": {pid: bot.frames.get(pid, 0) - n for pid, n in bot_first.items()},
            "audio_frames": bot.audio_frames,
            "participants": bot.participants,
        }
        # Audio-only low-bandwidth mode: the relay stops forwarding video to the bot, audio goes on.
        assert (await bot.call("video:bandwidth", audio_only=True))["ok"]
        await asyncio.sleep(1.0)
        video_before, audio_before = sum(bot.frames.values()), sum(bot.audio_frames.values())
        await asyncio.sleep(2.0)
        result["audio_only"] = {
            "video_frames": sum(bot.frames.values()) - video_before,
            "audio_frames": sum(bot.audio_frames.values()) - audio_before,
        }
        assert (await bot.call("video:bandwidth", audio_only=False))["ok"]
        if browsers:
            result["chat"] = await chat_round(base, browsers, conversation_id, officer_headers)
        result["browser_errors"] = {p.label: p.errors for p in browsers}
        result["participant_ids"] = {"bot": bot.participant_id}
        result["ice_routes"] = {"bot": bot.route()}
        for p in browsers:
            call_section = p.page.get_by_test_id("call")
            result["participant_ids"][p.label] = await call_section.get_attribute("data-participant-id")
            result["ice_routes"][p.label] = await call_section.get_attribute("data-ice-route")
        media = ctx.need(MEDIA)
        result["relay_stats"] = await media.stats(__import__("uuid").UUID(meeting_id))
        result["relay_os_pid"] = media.worker_pid(__import__("uuid").UUID(meeting_id))
        result["server_os_pid"] = __import__("os").getpid()
        result["lurker"] = {
            "events": list(lurker.events),
            "offers": lurker.offers,
            "participants": lurker.participants,
            "answer": await lurker.call("video:answer", sdp="v=0 not really an answer"),
            "admit_self": await lurker.call("video:admit", participant_id=lurker.participant_id),
        }
        # Ending the meeting reaches everyone and stops the relay process.
        if browsers:
            await browsers[0].page.get_by_role("button", name="Avsluta mötet").click()
            await browsers[0].page.get_by_role("button", name="Ja, avsluta för alla").click()
            await browsers[1].page.get_by_test_id("ended").wait_for(timeout=10_000)
        else:
            await bots[-1].call("video:end")
        await asyncio.sleep(1.0)
        result["bot_events_after_end"] = bot.events[-3:]
        result["relay_after_end"] = media.worker_pid(__import__("uuid").UUID(meeting_id))
    except Exception as exc:
        import traceback

        result["error"] = f"{type(exc).__name__}: {exc}"
        result["trace"] = traceback.format_exc()[-3000:]
        result["diag"] = [
            {
                "events": b.events,
                "offers": b.offers,
                "state": b.state,
                "pc": b.pc.connectionState if b.pc else None,
                "ice": b.pc.iceConnectionState if b.pc else None,
                "frames": b.frames,
                "audio": b.audio_frames,
                "tracks": b.tracks,
            }
            for b in bots
        ]
        for b, d in zip(bots, result["diag"], strict=True):
            if b.pc is not None:
                d["transceivers"] = []
                for t in b.pc.getTransceivers():
                    stats = await t.receiver.getStats()
                    d["transceivers"].append(
                        {
                            "mid": t.mid,
                            "kind": t.kind,
                            "dir": t.currentDirection,
                            "rx": [getattr(v, "packetsReceived", None) for v in stats.values()],
                        }
                    )
        with contextlib.suppress(Exception):
            media = ctx.need(MEDIA)
            result["relay_stats"] = await media.stats(__import__("uuid").UUID(meeting_id))
    finally:
        for participant_bot in bots:
            with contextlib.suppress(Exception):
                await participant_bot.close()
        if playwright_cm is not None:
            with contextlib.suppress(Exception):
                await playwright_cm.__aexit__(None, None, None)
        await runner.cleanup()
        if coturn is not None:
            coturn.terminate()
            coturn.wait(10)
            result["coturn_log_tail"] = (workdir / "coturn.log").read_text(errors="replace")[-1500:]
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def scenario_arguments() -> argparse.ArgumentParser:
    """What every scenario takes: where to write the result, the namespace's two addresses."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--addresses", nargs=2, required=True)
    parser.add_argument("--sample-seconds", type=float, default=4.0)
    return parser


def run_and_write(run: Any, args: argparse.Namespace) -> None:
    """Run a scenario and write what it observed (or its error) as JSON for the test to assert on."""
    try:
        result = asyncio.run(run(args))
    except Exception as exc:
        import traceback

        result = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-4000:]}
    Path(args.out).write_text(json.dumps(result, indent=1, default=str))
    sys.exit(0)


def main() -> None:
    parser = scenario_arguments()
    parser.add_argument("--browsers", action="store_true")
    parser.add_argument("--relay-only", action="store_true")
    run_and_write(run, parser.parse_args())


if __name__ == "__main__":
    main()
