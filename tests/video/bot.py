"""An aiortc participant that joins a Brygga meeting like a browser does (socket.io signalling, one
peer connection to the relay) and counts decoded frames per remote participant. Used by the e2e
tests and bench/video.py."""

from __future__ import annotations

import asyncio
import fractions
import time
from typing import Any

import socketio
from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError
from av import VideoFrame


async def serve(settings: Any) -> tuple[Any, str, Any]:
    """Migrate and serve Brygga on 127.0.0.1 for a call; returns (runner, base URL, app context)."""
    from aiohttp import web

    from server.app import create_app
    from server.core.context import CTX
    from server.migrate import upgrade

    await upgrade(settings.effective_database_url)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = int(settings.public_base_url.rsplit(":", 1)[1])
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}", app[CTX]


class MovingPattern(VideoStreamTrack):
    """A small moving test pattern (cheap to encode: the bot shares 2 cores with browsers)."""

    def __init__(self, width: int = 320, height: int = 240, fps: int = 15) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self.count = 0
        # A few precomputed luma planes of a moving gradient; chroma stays neutral.
        self.lumas = [bytes((x * 2 + shift * 16) % 256 for x in range(width)) * height for shift in range(16)]
        self.chroma = bytes([128]) * (width // 2 * height // 2)

    async def recv(self) -> VideoFrame:
        await asyncio.sleep(1 / self.fps)
        self.count += 1
        frame = VideoFrame(self.width, self.height, "yuv420p")
        for plane, data in zip(frame.planes, (self.lumas[self.count % 16], self.chroma, self.chroma), strict=True):
            plane.update(data)
        frame.pts = self.count * (90000 // self.fps)
        frame.time_base = fractions.Fraction(1, 90000)
        return frame


class Bot:
    def __init__(
        self,
        base_url: str,
        auth: dict[str, str],
        meeting_id: str,
        *,
        publish_video: bool = True,
        rejoin: bool = False,
        http_session: Any = None,
    ) -> None:
        """`rejoin`: like the web client, reconnect and join again after a lost connection or
        `video:media_failed` (the meeting moved to another node)."""
        self.base_url = base_url
        self.auth = auth
        self.meeting_id = meeting_id
        self.rejoins = rejoin
        self.sio = socketio.AsyncClient(
            reconnection=rejoin, reconnection_delay=0.3, reconnection_delay_max=2, http_session=http_session
        )
        self.pc: RTCPeerConnection | None = None
        self.ack: dict[str, Any] = {}
        self.state = "new"
        self.participant_id: str | None = None
        self.frames: dict[str, int] = {}  # participant id -> decoded video frames
        self.audio_frames: dict[str, int] = {}
        self.first_frame_at: float | None = None
        self.joined_at: float | None = None
        self.participants: list[dict[str, Any]] = []
        self.lobby: list[dict[str, Any]] = []
        self.events: list[str] = []
        self.event_times: list[tuple[str, float]] = []  # (event, time.monotonic())
        self.admitted = asyncio.Event()
        self.tracks: dict[str, dict[str, str]] = {}
        self.publish_video = publish_video
        self.tasks: list[asyncio.Task[None]] = []
        self.offers = 0

        @self.sio.on("video:offer")
        async def on_offer(data: dict[str, Any]) -> None:
            self.note("video:offer")
            await self.handle_offer(data)

        @self.sio.on("video:participants")
        async def on_participants(data: dict[str, Any]) -> None:
            self.note("video:participants")
            self.participants = data["participants"]

        @self.sio.on("video:lobby")
        async def on_lobby(data: dict[str, Any]) -> None:
            self.note("video:lobby")
            self.lobby = data["waiting"]

        @self.sio.on("video:admitted")
        async def on_admitted(data: dict[str, Any]) -> None:
            self.note("video:admitted")
            self.admitted.set()

        for name in ("video:removed", "video:ended", "video:mute_request"):
            self.sio.on(name, lambda data, name=name: self.note(name))

        @self.sio.on("video:media_failed")
        async def on_media_failed(data: dict[str, Any]) -> None:
            self.note("video:media_failed")
            if self.rejoins:
                await self.rejoin()

        connected_before = False

        @self.sio.on("connect")
        async def on_connect() -> None:
            nonlocal connected_before
            if connected_before and self.rejoins and self.ack:
                self.tasks.append(asyncio.ensure_future(self.rejoin()))
            connected_before = True

    async def connect(self) -> None:
        await self.sio.connect(self.base_url, auth=self.auth, transports=["websocket"], wait_timeout=10)

    async def join(self) -> dict[str, Any]:
        self.joined_at = time.monotonic()
        self.ack = await self.sio.call("video:join", {"meeting_id": self.meeting_id}, timeout=20)
        if self.ack.get("ok"):
            self.state = self.ack["state"]
            self.participant_id = self.ack["participant_id"]
            if self.state == "joined":
                self.participants = self.ack["participants"]
        return self.ack

    def note(self, event: str) -> None:
        self.events.append(event)
        self.event_times.append((event, time.monotonic()))

    async def rejoin(self) -> None:
        """A fresh peer connection and a new join (reaches the room's current owner)."""
        if self.pc is not None:
            pc, self.pc = self.pc, None
            await pc.close()
        self.tracks = {}
        self.note("rejoin")
        await self.join()

    def peer(self) -> RTCPeerConnection:
        if self.pc is None:
            servers = [
                RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
                for s in self.ack.get("ice_servers", [])
            ]
            policy = self.ack.get("ice_transport_policy", "all")
            from aiortc import RTCBundlePolicy, RTCIceTransportPolicy

            # max-bundle: aiortc's balanced policy strands a second video m-line on a dead transport.
            self.pc = RTCPeerConnection(
                RTCConfiguration(
                    iceServers=servers,
                    bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
                    iceTransportPolicy=RTCIceTransportPolicy.RELAY if policy == "relay" else RTCIceTransportPolicy.ALL,
                )
            )
            self.pc.on("track", self.on_track)
            self.video = MovingPattern()
            self.audio = AudioStreamTrack()
        return self.pc

    async def handle_offer(self, data: dict[str, Any]) -> None:
        pc = self.peer()
        self.offers += 1
        self.tracks.update(data.get("tracks", {}))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=data["sdp"], type="offer"))
        publish = data.get("publish", {})
        for transceiver in pc.getTransceivers():
            kind = next((k for k, mid in publish.items() if mid == transceiver.mid), None)
            if kind and transceiver.sender.track is None:
                if kind == "video" and not self.publish_video:
                    continue
                transceiver.sender.replaceTrack(self.video if kind == "video" else self.audio)
                transceiver.direction = "sendonly"
        await pc.setLocalDescription(await pc.createAnswer())
        ack = await self.sio.call(
            "video:answer", {"meeting_id": self.meeting_id, "sdp": pc.localDescription.sdp}, timeout=20
        )
        assert ack["ok"], ack

    def on_track(self, track: MediaStreamTrack) -> None:
        assert self.pc is not None
        mid = next(t.mid for t in self.pc.getTransceivers() if t.receiver.track is track)
        self.tasks.append(asyncio.ensure_future(self.count(track, mid)))

    async def count(self, track: MediaStreamTrack, mid: str | None) -> None:
        try:
            while True:
                await track.recv()
                info = self.tracks.get(mid or "", {})
                who = info.get("participant_id", f"mid:{mid}")
                target = self.frames if track.kind == "video" else self.audio_frames
                target[who] = target.get(who, 0) + 1
                if track.kind == "video" and self.first_frame_at is None:
                    self.first_frame_at = time.monotonic()
        except MediaStreamError:
            pass

    def route(self) -> str:
        """The local candidate type aiortc's ICE nominated ("host", "relay", ...)."""
        if self.pc is None:
            return ""
        connection = self.pc.getTransceivers()[0].sender.transport.transport._connection
        nominated = list(connection._nominated.values())
        return str(nominated[0].local_candidate.type) if nominated else ""

    async def call(self, event: str, **payload: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.sio.call(event, {"meeting_id": self.meeting_id, **payload}, timeout=20)
        return result

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.pc is not None:
            await self.pc.close()
        if self.sio.connected:
            await self.sio.disconnect()
