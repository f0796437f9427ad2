"""Video relay benchmark: relay CPU per forwarded stream, and join → first decoded frame, on one
node and on two nodes, side by side.

    sudo .venv/bin/python bench/video.py [--nodes 1,2] [--participants 8] [--seconds 20] [--joins 10]

Runs inside a private network namespace it creates (WebRTC needs a non-loopback address; see
docs/video.md). One node: Brygga in-process. Two nodes: `deploy/local-cluster` (PostgreSQL over its
Unix socket, a private Redis, two Brygga nodes) with half of the participants on each node, so
their commands are forwarded to the meeting's owner node. Two phases each:

1. Latency: one aiortc bot publishes; another bot (on the other node with two) joins the running
   meeting through socket.io (`video:join`) again and again; we time join → first *decoded* video
   frame (p50/p99; target ≤ 1.5 s).
2. Load: N participants (default 8) each publish 640×360 VP8 at 15 fps plus Opus, pre-encoded once
   so the bench itself does not burn CPU encoding, and each subscribes to the other N−1 without
   decoding. We read the room's relay process CPU time from /proc (target: the whole room ≤ 1 core)
   and divide it by the frames the subscribers received.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.video.media import MEDIA

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve()
sys.path.insert(0, str(ROOT))

FPS = 15
WIDTH, HEIGHT = 640, 360


def pre_encode_video(seconds: int = 4) -> list[bytes]:
    """VP8 frames of a moving pattern, a keyframe every 2 s (the loop restarts on a keyframe)."""
    import av

    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.bit_rate = 500_000
    codec.framerate = fractions.Fraction(FPS, 1)
    codec.time_base = fractions.Fraction(1, FPS)
    codec.gop_size = 2 * FPS
    codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    frames: list[bytes] = []
    chroma = bytes([128]) * (WIDTH // 2 * HEIGHT // 2)
    for index in range(seconds * FPS):
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        shift = index * 6
        frame.planes[0].update(bytes((x + shift) % 256 for x in range(WIDTH)) * HEIGHT)
        frame.planes[1].update(chroma)
        frame.planes[2].update(chroma)
        frame.pts = index
        for packet in codec.encode(frame):
            frames.append(bytes(packet))
    for packet in codec.encode(None):
        frames.append(bytes(packet))
    return frames


def pre_encode_audio() -> bytes:
    """One 20 ms Opus packet of a quiet tone (repeated)."""
    import av

    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate = 48000
    codec.layout = "stereo"
    codec.format = "s16"
    codec.bit_rate = 32000
    frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
    frame.planes[0].update(bytes(960 * 4))
    frame.sample_rate = 48000
    frame.pts = 0
    packets = [bytes(p) for p in codec.encode(frame)] + [bytes(p) for p in codec.encode(None)]
    return next(p for p in packets if p)


async def client_phase(base: str, tokens: list[str], meeting_id: str, seconds: float) -> dict[str, Any]:
    """One client process: its participants publish pre-encoded media and count what they receive."""
    import av
    import socketio
    from aiortc import (
        MediaStreamTrack,
        RTCBundlePolicy,
        RTCConfiguration,
        RTCPeerConnection,
        RTCSessionDescription,
    )
    from aiortc.mediastreams import MediaStreamError

    from server.video.relay_worker import install_passthrough

    install_passthrough()  # the bench's own subscribers count encoded frames instead of decoding
    video = pre_encode_video()
    audio = pre_encode_audio()

    class PreEncoded(MediaStreamTrack):
        def __init__(self, kind: str) -> None:
            super().__init__()
            self.kind = kind
            self.index = 0
            self.started = time.monotonic()

        async def recv(self) -> Any:
            interval = 1 / FPS if self.kind == "video" else 0.02
            self.index += 1
            delay = self.started + self.index * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.kind == "video":
                packet = av.Packet(video[self.index % len(video)])
                packet.pts, packet.time_base = self.index * (90000 // FPS), fractions.Fraction(1, 90000)
            else:
                packet = av.Packet(audio)
                packet.pts, packet.time_base = self.index * 960, fractions.Fraction(1, 48000)
            return packet

    received: dict[tuple[int, str], int] = {}
    tasks: set[asyncio.Future[None]] = set()

    class Participant:
        def __init__(self, number: int, token: str) -> None:
            self.number = number
            self.sio = socketio.AsyncClient(reconnection=False, engineio_logger=bool(os.environ.get("BENCH_DEBUG")))
            self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
            self.tracks: dict[str, dict[str, str]] = {}
            self.token = token
            self.sio.on("video:offer", self.on_offer)
            self.pc.on("track", self.on_track)
            self.lock = asyncio.Lock()

        async def on_offer(self, data: dict[str, Any]) -> None:
            async with self.lock:
                self.tracks.update(data["tracks"])
                await self.pc.setRemoteDescription(RTCSessionDescription(sdp=data["sdp"], type="offer"))
                for transceiver in self.pc.getTransceivers():
                    kind = next((k for k, mid in data["publish"].items() if mid == transceiver.mid), None)
                    if kind and transceiver.sender.track is None:
                        transceiver.sender.replaceTrack(PreEncoded(kind))
                        transceiver.direction = "sendonly"
                await self.pc.setLocalDescription(await self.pc.createAnswer())
                if not self.sio.connected:
                    return  # left the meeting while answering (the latency phase joins and leaves in a loop)
                await self.sio.call(
                    "video:answer", {"meeting_id": meeting_id, "sdp": self.pc.localDescription.sdp}, timeout=30
                )

        def on_track(self, track: Any) -> None:
            mid = next(t.mid for t in self.pc.getTransceivers() if t.receiver.track is track)

            async def count() -> None:
                try:
                    while True:
                        await track.recv()
                        who = self.tracks.get(mid or "", {}).get("participant_id", "?")
                        key = (self.number, f"{track.kind}:{who}")
                        received[key] = received.get(key, 0) + 1
                except MediaStreamError:
                    pass

            tasks.add(asyncio.ensure_future(count()))

    people = [Participant(n, token) for n, token in enumerate(tokens)]
    for person in people:
        for attempt in range(5):  # a loaded 2-core box can miss the first handshake
            try:
                await person.sio.connect(base, auth={"token": person.token}, transports=["websocket"])
                break
            except socketio.exceptions.ConnectionError:
                if attempt == 4:
                    raise
                await asyncio.sleep(1 + attempt)
        ack = await person.sio.call("video:join", {"meeting_id": meeting_id}, timeout=30)
        assert ack["ok"] and ack["state"] == "joined", ack
    expected = len(people) * (int(os.environ["BENCH_PARTICIPANTS"]) - 1)
    for _ in range(1200):  # every participant here receives video from every other one (≤ 120 s)
        if len([k for k in received if k[1].startswith("video:")]) >= expected:
            break
        await asyncio.sleep(0.1)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # "go" from the orchestrator
    frames_before, t0 = dict(received), time.monotonic()
    await asyncio.sleep(seconds)
    frames_after, t1 = dict(received), time.monotonic()
    elapsed = t1 - t0
    video_keys = [k for k in frames_after if k[1].startswith("video:")]
    fps = [(frames_after[k] - frames_before.get(k, 0)) / elapsed for k in video_keys]
    frames = sum(frames_after.values()) - sum(frames_before.values())
    print(json.dumps({"video_streams_received": len(video_keys), "fps": fps, "frames": frames}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # "stop": the orchestrator has its sample
    for person in people:
        await person.sio.disconnect()
        await person.pc.close()
    return {}


def relay_children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid), "-f", "relay_worker"], capture_output=True, text=True)
    return [int(child) for child in found.stdout.split()]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load_phase(
    bases: list[str], tokens: list[str], meeting_id: str, seconds: float, relay_pids: Any, processes: int
) -> dict[str, Any]:
    """N participants spread over client processes (and over the nodes, round robin), so the clients
    do not starve the relay. `relay_pids()` lists the processes that may be the room's relay (the
    busiest one is)."""
    groups = [tokens[i::processes] for i in range(processes)]
    script = str(SCRIPT)
    clients = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            script,
            "--client",
            "--inside",
            "--base",
            bases[number % len(bases)],
            "--meeting",
            meeting_id,
            "--tokens",
            ",".join(group),
            "--seconds",
            str(seconds),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "BENCH_PARTICIPANTS": str(len(tokens))},
        )
        for number, group in enumerate(groups)
        if group
    ]
    for client in clients:
        assert client.stdout is not None
        line = await asyncio.wait_for(client.stdout.readline(), 300)
        assert line.strip() == b"ready", line
    await asyncio.sleep(3)  # steady flow
    relays = await relay_pids()
    for client in clients:
        assert client.stdin is not None
        client.stdin.write(b"go\n")
        await client.stdin.drain()
    start, t0 = [cpu_seconds(pid) for pid in relays], time.monotonic()
    await asyncio.sleep(seconds)
    end, t1 = [cpu_seconds(pid) for pid in relays], time.monotonic()
    before, after = max(zip(start, end, strict=True), key=lambda pair: pair[1] - pair[0])
    elapsed = t1 - t0
    fps: list[float] = []
    received = frames = 0
    for client in clients:
        assert client.stdout is not None and client.stdin is not None
        report = json.loads(await asyncio.wait_for(client.stdout.readline(), 60))
        fps += report["fps"]
        received += report["video_streams_received"]
        frames += report["frames"]
    for client in clients:
        assert client.stdin is not None
        client.stdin.write(b"stop\n")
        await client.stdin.drain()
        await client.wait()
    per_frame = (after - before) / max(frames, 1)
    # What the same work costs at the nominal rate (every stream at full rate: video 15 fps, Opus 50/s).
    nominal = len(tokens) * (len(tokens) - 1) * (FPS + 50)
    video_streams = len(tokens) * (len(tokens) - 1)
    return {
        "participants": len(tokens),
        "client_processes": len(clients),
        "forwarded_video_streams": video_streams,
        "forwarded_audio_streams": video_streams,
        "relay_cores_measured": round((after - before) / elapsed, 3),
        "relay_us_per_forwarded_frame": round(per_frame * 1e6, 1),
        "relay_cores_projected_at_nominal_rate": round(per_frame * nominal, 3),
        "relay_cpu_percent_per_forwarded_stream_pair": round(100 * per_frame * (FPS + 50), 2),
        "video_streams_received": received,
        "received_fps_min": round(min(fps), 1) if fps else 0,
        "received_fps_median": round(statistics.median(fps), 1) if fps else 0,
    }


async def latency_phase(
    publisher_base: str, joiner_base: str, publisher: str, joiner: str, meeting_id: str, joins: int
) -> dict[str, Any]:
    from tests.video.bot import Bot

    source = Bot(publisher_base, {"token": publisher}, meeting_id)
    await source.connect()
    await source.join()
    await asyncio.sleep(2)
    times = []
    for _ in range(joins):
        bot = Bot(joiner_base, {"token": joiner}, meeting_id)
        await bot.connect()
        await bot.join()
        for _ in range(1000):  # poll every 10 ms for up to 10 s
            if bot.first_frame_at is not None:
                break
            await asyncio.sleep(0.01)
        if bot.first_frame_at is not None and bot.joined_at is not None:
            times.append(bot.first_frame_at - bot.joined_at)
        await bot.call("video:leave")
        await bot.close()
        await asyncio.sleep(0.5)
    await source.call("video:leave")
    await source.close()
    return {
        "joins": joins,
        "succeeded": len(times),
        "join_to_first_frame_s_p50": round(statistics.median(times), 3) if times else None,
        "join_to_first_frame_s_p99": round(percentile(times, 99), 3) if times else None,
    }


def percentile(values: list[float], p: int) -> float:
    """Nearest-rank percentile (with 10 joins, p99 is the slowest)."""
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, -(-p * len(ranked) // 100) - 1))]


async def book(base: str, token: str) -> str:
    import aiohttp

    body = {"title": "Bench", "starts_at": datetime.now(UTC).isoformat()}
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base) as http, http.post("/api/v1/meetings", json=body, headers=headers) as made:
        return str((await made.json())["id"])


async def phases(args: argparse.Namespace, bases: list[str], actors: Any, relay_pids: Any) -> dict[str, Any]:
    unit = await actors.unit("Avdelning B")
    tokens = [(await actors.user(f"user{n}", units={unit: "member"}))[1] for n in range(max(args.participants, 2))]
    latency_meeting, load_meeting = await book(bases[0], tokens[0]), await book(bases[0], tokens[0])
    latency = await latency_phase(bases[0], bases[-1], tokens[0], tokens[1], latency_meeting, args.joins)
    load = await load_phase(
        bases, tokens[: args.participants], load_meeting, args.seconds, lambda: relay_pids(load_meeting), args.processes
    )
    return {"nodes": len(bases), "latency": latency, "load": load}


async def one_node(args: argparse.Namespace) -> dict[str, Any]:
    from server.settings import Settings
    from tests.conftest import Actors, free_port
    from tests.video.bot import serve

    workdir = Path(tempfile.mkdtemp(prefix="brygga-bench-video-"))
    port = free_port()
    settings = Settings(data_dir=workdir, public_base_url=f"http://127.0.0.1:{port}", log_level="WARNING")
    runner, base, ctx = await serve(settings)
    media = ctx.need(MEDIA)

    async def relay_pids(meeting_id: str) -> list[int]:
        return [media.worker_pid(uuid.UUID(meeting_id))]

    try:
        return await phases(args, [base], Actors(ctx), relay_pids)
    finally:
        await runner.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


async def two_nodes(args: argparse.Namespace, addresses: list[str]) -> dict[str, Any]:
    from types import SimpleNamespace

    from server.core.db import Database
    from tests.conftest import Actors
    from tests.video.cluster_scenario import Cluster, owner_node

    cluster = Cluster(addresses, nginx=False, turn=False)
    cluster.start()
    db = Database(cluster.values["BRYGGA_DATABASE_URL"])

    async def relay_pids(meeting_id: str) -> list[int]:
        # The owner's relay processes: the room's, a started spare, maybe an idle one (the busiest counts).
        return relay_children(cluster.pid(await owner_node(cluster, db, meeting_id)))

    try:
        actors = Actors(SimpleNamespace(db=db))  # type: ignore[arg-type]
        return await phases(args, [cluster.url("node-1"), cluster.url("node-2")], actors, relay_pids)
    finally:
        await db.close()
        cluster.stop()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    runs = []
    for nodes in (int(n) for n in args.nodes.split(",")):
        runs.append(await (one_node(args) if nodes == 1 else two_nodes(args, args.addresses.split(","))))
    return {"runs": runs, "cpus": os.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--joins", type=int, default=10)
    parser.add_argument("--nodes", default="1,2", help="1, 2 or 1,2 (side by side)")
    parser.add_argument("--processes", type=int, default=4, help="client processes for the load phase")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--meeting", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", help=argparse.SUPPRESS)
    parser.add_argument("--addresses", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        asyncio.run(client_phase(args.base, args.tokens.split(","), args.meeting, args.seconds))
        return
    if not args.inside:
        from tests.video.netns import namespace, why_no_namespaces

        reason = why_no_namespaces()
        if reason:
            sys.exit(f"bench/video.py needs a network namespace: {reason}")
        with namespace() as ns:
            command = ns.command(
                sys.executable, str(SCRIPT), "--inside", "--addresses", ",".join(ns.addresses), *sys.argv[1:]
            )
            sys.exit(subprocess.run(command, cwd=ROOT, check=False).returncode)
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    print()
    rows = [
        ("join → first decoded frame p50 (s)", lambda r: r["latency"]["join_to_first_frame_s_p50"]),
        ("join → first decoded frame p99 (s)", lambda r: r["latency"]["join_to_first_frame_s_p99"]),
        ("relay CPU per forwarded frame (µs)", lambda r: r["load"]["relay_us_per_forwarded_frame"]),
        (
            "relay CPU per forwarded video+audio stream at 15 fps (% of a core)",
            lambda r: r["load"]["relay_cpu_percent_per_forwarded_stream_pair"],
        ),
        ("relay cores measured (whole room)", lambda r: r["load"]["relay_cores_measured"]),
        (
            "received fps median / min (sent 15)",
            lambda r: f"{r['load']['received_fps_median']} / {r['load']['received_fps_min']}",
        ),
    ]
    runs = result["runs"]
    print(f"{'':70}" + "".join(f"{str(r['nodes']) + ' node' + ('s' if r['nodes'] > 1 else ''):>12}" for r in runs))
    for label, value in rows:
        print(f"{label:70}" + "".join(f"{value(r)!s:>12}" for r in runs))
    participants = runs[0]["load"]["participants"]
    print(
        f"({participants} participants, {runs[0]['load']['forwarded_video_streams']} video + audio streams; "
        f"{runs[0]['latency']['succeeded']}/{runs[0]['latency']['joins']} joins; target join ≤ 1.5 s, room ≤ 1 core)"
    )


if __name__ == "__main__":
    main()
