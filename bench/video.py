"""Video relay benchmark: relay CPU per forwarded stream, and join → first decoded frame.

    sudo .venv/bin/python bench/video.py [--participants 8] [--seconds 20] [--joins 5]

Runs Brygga in-process inside a private network namespace it creates (WebRTC needs a non-loopback
address; see docs/video.md). Two phases:

1. Latency: one aiortc bot publishes; another bot joins the running meeting through socket.io
   (`video:join`) again and again; we time join → first *decoded* video frame (target ≤ 1.5 s).
2. Load: N participants (default 8) each publish 640×360 VP8 at 15 fps plus Opus, pre-encoded once
   so the bench itself does not burn CPU encoding, and each subscribes to the other N−1 without
   decoding. We read the relay worker's own CPU time (target: the whole room ≤ 1 core) and check
   that every subscriber receives every publisher at full frame rate.
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
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # "go" from the orchestrator
    frames_before, t0 = dict(received), time.monotonic()
    await asyncio.sleep(seconds)
    frames_after, t1 = dict(received), time.monotonic()
    elapsed = t1 - t0
    video_keys = [k for k in frames_after if k[1].startswith("video:")]
    fps = [(frames_after[k] - frames_before.get(k, 0)) / elapsed for k in video_keys]
    print(json.dumps({"video_streams_received": len(video_keys), "fps": fps}), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # "stop": the orchestrator has its sample
    for person in people:
        await person.sio.disconnect()
        await person.pc.close()
    return {}


async def load_phase(
    base: str, tokens: list[str], meeting_id: str, seconds: float, media: Any, processes: int
) -> dict[str, Any]:
    """N participants spread over client processes, so the clients do not starve the relay."""
    groups = [tokens[i::processes] for i in range(processes)]
    script = str(SCRIPT)
    clients = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            script,
            "--client",
            "--inside",
            "--base",
            base,
            "--meeting",
            meeting_id,
            "--tokens",
            ",".join(group),
            "--seconds",
            str(seconds),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for group in groups
        if group
    ]
    room = uuid.UUID(meeting_id)
    for client in clients:
        assert client.stdout is not None
        line = await asyncio.wait_for(client.stdout.readline(), 180)
        assert line.strip() == b"ready", line
    expected = len(tokens) * (len(tokens) - 1) * 2
    for _ in range(240):
        stats = await media.stats(room)
        if stats and stats["streams_out"] >= expected:
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(5)  # every subscriber has its keyframe and steady flow
    for client in clients:
        assert client.stdin is not None
        client.stdin.write(b"go\n")
        await client.stdin.drain()
    before, t0 = await media.stats(room), time.monotonic()
    await asyncio.sleep(seconds)
    after, t1 = await media.stats(room), time.monotonic()
    elapsed = t1 - t0
    cores = (after["cpu_seconds"] - before["cpu_seconds"]) / elapsed
    fps: list[float] = []
    received = 0
    for client in clients:
        assert client.stdout is not None and client.stdin is not None
        report = json.loads(await asyncio.wait_for(client.stdout.readline(), 60))
        fps += report["fps"]
        received += report["video_streams_received"]
    for client in clients:
        assert client.stdin is not None
        client.stdin.write(b"stop\n")
        await client.stdin.drain()
        await client.wait()
    forwarded = after["packets_out"] - before["packets_out"]
    per_frame = (after["cpu_seconds"] - before["cpu_seconds"]) / max(forwarded, 1)
    # What the same work costs at the nominal rate (every stream at full rate: video 15 fps, Opus 50/s).
    nominal = len(tokens) * (len(tokens) - 1) * (FPS + 50)
    video_streams = len(tokens) * (len(tokens) - 1)
    return {
        "participants": len(tokens),
        "client_processes": len(clients),
        "forwarded_video_streams": video_streams,
        "forwarded_audio_streams": video_streams,
        "relay_streams_out": after["streams_out"],
        "relay_cores_measured": round(cores, 3),
        "relay_us_per_forwarded_frame": round(per_frame * 1e6, 1),
        "relay_cores_projected_at_nominal_rate": round(per_frame * nominal, 3),
        "relay_cpu_percent_per_forwarded_stream_pair": round(100 * per_frame * (FPS + 50), 2),
        "video_streams_received": received,
        "received_fps_min": round(min(fps), 1) if fps else 0,
        "received_fps_median": round(statistics.median(fps), 1) if fps else 0,
        "relay_packets_in_per_s": round((after["packets_in"] - before["packets_in"]) / elapsed),
        "relay_packets_out_per_s": round((after["packets_out"] - before["packets_out"]) / elapsed),
    }


async def latency_phase(base: str, publisher: str, joiner: str, meeting_id: str, joins: int) -> dict[str, Any]:
    from tests.video.bot import Bot

    source = Bot(base, {"token": publisher}, meeting_id)
    await source.connect()
    await source.join()
    await asyncio.sleep(2)
    times = []
    for _ in range(joins):
        bot = Bot(base, {"token": joiner}, meeting_id)
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
        "join_to_first_frame_s_median": round(statistics.median(times), 3) if times else None,
        "join_to_first_frame_s_max": round(max(times), 3) if times else None,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from server.settings import Settings
    from tests.conftest import Actors, free_port
    from tests.video.bot import serve

    workdir = Path(tempfile.mkdtemp(prefix="brygga-bench-video-"))
    port = free_port()
    settings = Settings(data_dir=workdir, public_base_url=f"http://127.0.0.1:{port}", log_level="WARNING")
    runner, base, ctx = await serve(settings)
    try:
        actors = Actors(ctx)
        unit = await actors.unit("Avdelning B")
        tokens = [(await actors.user(f"user{n}", units={unit: "member"}))[1] for n in range(max(args.participants, 2))]
        import aiohttp

        async with aiohttp.ClientSession(base) as http:

            async def book() -> str:
                body = {"title": "Bench", "starts_at": datetime.now(UTC).isoformat()}
                headers = {"Authorization": f"Bearer {tokens[0]}"}
                async with http.post("/api/v1/meetings", json=body, headers=headers) as response:
                    return str((await response.json())["id"])

            latency_meeting, load_meeting = await book(), await book()
        latency = await latency_phase(base, tokens[0], tokens[1], latency_meeting, args.joins)
        load = await load_phase(
            base, tokens[: args.participants], load_meeting, args.seconds, ctx.services["video.media"], args.processes
        )
        return {"latency": latency, "load": load, "cpus": os.cpu_count()}
    finally:
        await runner.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--joins", type=int, default=5)
    parser.add_argument("--processes", type=int, default=4, help="client processes for the load phase")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--meeting", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", help=argparse.SUPPRESS)
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
            command = ns.command(sys.executable, str(Path(__file__).resolve()), "--inside", *sys.argv[1:])
            sys.exit(subprocess.run(command, cwd=ROOT, check=False).returncode)
    result = asyncio.run(run(args))
    latency, load = result["latency"], result["load"]
    print(json.dumps(result, indent=2))
    print()
    print(
        f"join → first decoded frame: median {latency['join_to_first_frame_s_median']} s, "
        f"max {latency['join_to_first_frame_s_max']} s over {latency['succeeded']}/{latency['joins']} joins "
        f"(target ≤ 1.5 s)"
    )
    print(
        f"{load['participants']}-participant room ({load['forwarded_video_streams']} video + "
        f"{load['forwarded_audio_streams']} audio forwarded streams): "
        f"relay {load['relay_us_per_forwarded_frame']} µs "
        f"CPU per forwarded frame = {load['relay_cpu_percent_per_forwarded_stream_pair']} % of a core per "
        f"forwarded video+audio stream at 15 fps; projected {load['relay_cores_projected_at_nominal_rate']} cores "
        f"at full rate (target ≤ 1 core); measured {load['relay_cores_measured']} cores while subscribers got "
        f"{load['received_fps_median']} fps median, {load['received_fps_min']} min (sent {FPS})"
    )


if __name__ == "__main__":
    main()
