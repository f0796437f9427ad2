"""One meeting's media relay: a separate process that forwards encoded media between participants.

Run as `python -m server.video.relay_worker`; the server (server/video/media.py) talks to it with
JSON lines on stdin/stdout. Each participant has one RTCPeerConnection to this process. Video (VP8)
and audio (Opus) are *forwarded*: nothing is decoded or re-encoded.

How forwarding works with aiortc 1.16.0 (pinned; these are private internals, covered by the
end-to-end test in tests/video):
- the receiver's decoder thread (`aiortc.rtcrtpreceiver.decoder_worker`) is replaced in this process
  by one that emits the reassembled encoded frame as an `av.Packet`;
- an `RTCRtpSender` given an `av.Packet` only packetizes it (`Vp8Encoder.pack`, `OpusEncoder.pack`);
- a subscriber's keyframe request (PLI/FIR), which would only flag a local encoder, is forwarded
  upstream as a PLI to the publisher (throttled).

Nothing is recorded: packets live only in bounded per-subscriber queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import logging
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import aiortc.rtcrtpreceiver
import av
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp

from server.core.background import detached

log = logging.getLogger("brygga.relay")

QUEUE_PACKETS = {"audio": 50, "video": 120}  # per subscriber; overflow drops the oldest
KEYFRAME_INTERVAL = 0.5  # seconds between PLIs forwarded to one publisher
KINDS = ("audio", "video")


# --- passthrough receiver ------------------------------------------------------------------------


def passthrough_worker(
    loop: asyncio.AbstractEventLoop,
    input_q: queue.Queue[Any],
    output_q: asyncio.Queue[Any],
    decode_error: threading.Event,
) -> None:
    """Drop-in for aiortc's decoder thread: hand on the encoded frame instead of decoding it."""
    while True:
        task = input_q.get()
        if task is None:
            loop.call_soon_threadsafe(output_q.put_nowait, None)
            break
        codec, encoded_frame = task
        packet = av.Packet(encoded_frame.data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = fractions.Fraction(1, codec.clockRate)
        loop.call_soon_threadsafe(output_q.put_nowait, packet)


def install_passthrough() -> None:
    aiortc.rtcrtpreceiver.decoder_worker = passthrough_worker


# --- fan-out -------------------------------------------------------------------------------------


def is_vp8_keyframe(packet: Any) -> bool:
    """VP8 payload header (RFC 6386 9.1): bit 0 of the first byte is 0 for a key frame."""
    data = bytes(packet)
    return bool(data) and not data[0] & 0x01


class ForwardedTrack(MediaStreamTrack):
    """What one subscriber's sender reads: encoded packets of one publisher track.

    Video starts (and restarts after an overflow) at a keyframe: until one arrives, packets are
    dropped and keyframes requested upstream, so a subscriber never gets an undecodable stream.
    """

    def __init__(self, kind: str, source: Source) -> None:
        super().__init__()
        self.kind = kind
        self.source = source
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.needs_keyframe = kind == "video"

    def push(self, packet: Any) -> None:
        if packet is not None and self.needs_keyframe:
            if not is_vp8_keyframe(packet):
                self.source.request_keyframe()
                return
            self.needs_keyframe = False
        if packet is not None and self.queue.qsize() >= QUEUE_PACKETS[self.kind]:
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            if self.kind == "video":
                self.needs_keyframe = True  # a dropped frame breaks decoding until the next keyframe
                self.source.request_keyframe()
                return
        self.queue.put_nowait(packet)

    async def recv(self) -> Any:
        packet = await self.queue.get()
        if packet is None:
            self.stop()
            raise MediaStreamError
        self.source.forwarded += 1
        return packet

    def stop(self) -> None:
        super().stop()
        self.source.sinks.discard(self)


@dataclass(eq=False)
class Source:
    """One publisher track; a single reader fans packets out to every subscriber's queue."""

    publisher: str
    kind: str
    track: MediaStreamTrack
    receiver: RTCRtpReceiver
    sinks: set[ForwardedTrack] = field(default_factory=set)
    received: int = 0
    forwarded: int = 0
    last_pli: float = 0.0
    plis: int = 0
    keyframes: int = 0
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.pump())

    async def pump(self) -> None:
        try:
            while True:
                packet = await self.track.recv()  # always drained, even with no subscribers
                self.received += 1
                if self.kind == "video" and is_vp8_keyframe(packet):
                    self.keyframes += 1
                for sink in list(self.sinks):
                    sink.push(packet)
        except MediaStreamError:
            pass
        finally:
            for sink in list(self.sinks):
                sink.push(None)

    def subscribe(self) -> ForwardedTrack:
        sink = ForwardedTrack(self.kind, self)
        self.sinks.add(sink)
        self.request_keyframe()
        return sink

    def media_ssrcs(self) -> list[int]:
        rtx = getattr(self.receiver, "_RTCRtpReceiver__rtx_ssrc", {})
        return [source.source for source in self.receiver.getSynchronizationSources() if source.source not in rtx]

    def request_keyframe(self) -> None:
        if self.kind != "video":
            return
        now = time.monotonic()
        if now - self.last_pli < KEYFRAME_INTERVAL:
            return
        self.last_pli = now
        for ssrc in self.media_ssrcs():
            self.plis += 1
            detached(self.receiver._send_rtcp_pli(ssrc))

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


# --- participants --------------------------------------------------------------------------------


@dataclass(eq=False)
class Peer:
    pid: str
    pc: RTCPeerConnection
    sources: dict[str, Source] = field(default_factory=dict)  # kind -> what this peer publishes
    publish_mids: dict[str, RTCRtpTransceiver] = field(default_factory=dict)
    # (publisher, kind) -> transceiver sending that publisher's track to this peer
    outgoing: dict[tuple[str, str], RTCRtpTransceiver] = field(default_factory=dict)
    wanted: set[str] = field(default_factory=set)  # publishers this peer subscribes to
    audio_only: bool = False
    publishing: bool = False
    negotiating: bool = False
    dirty: bool = False
    scheduled: asyncio.Task[None] | None = None


class Relay:
    def __init__(self, emit: Any) -> None:
        self.emit = emit
        self.peers: dict[str, Peer] = {}
        self.started = time.process_time()

    # commands -----------------------------------------------------------------------------------

    async def join(self, pid: str) -> dict[str, Any]:
        if pid in self.peers:
            await self.leave(pid)
        # No iceServers: the relay only offers host candidates (never a public STUN server).
        # max-bundle: with aiortc's default (balanced), a video transceiver created in the same
        # offer as the first video m-line keeps a private transport that is never connected.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        peer = Peer(pid, pc)
        self.peers[pid] = peer

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
            source = Source(pid, track.kind, track, receiver)
            peer.sources[track.kind] = source
            source.start()
            for other in self.peers.values():
                if pid in other.wanted:
                    self.schedule(other)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            self.emit({"event": "state", "pid": pid, "state": pc.connectionState})
            if pc.connectionState == "connected":
                for publisher in peer.wanted:
                    source = self.peers[publisher].sources.get("video") if publisher in self.peers else None
                    if source is not None:
                        source.request_keyframe()

        return {}

    async def publish(self, pid: str) -> dict[str, Any]:
        peer = self.peers[pid]
        peer.publishing = True
        self.schedule(peer)
        return {}

    async def subscribe(self, pid: str, publisher: str) -> dict[str, Any]:
        peer = self.peers.get(pid)
        if peer is None:
            return {}  # not joined yet: its own join subscribes it to everyone present
        peer.wanted.add(publisher)
        self.schedule(peer)
        return {}

    async def unsubscribe(self, pid: str, publisher: str) -> dict[str, Any]:
        peer = self.peers.get(pid)
        if peer is not None:
            peer.wanted.discard(publisher)
            self.schedule(peer)
        return {}

    def reconcile(self, peer: Peer) -> None:
        """Make `peer`'s outgoing transceivers match what it wants. Only between negotiations:
        aiortc 1.16 does not bundle a transceiver added while an offer is outstanding."""
        if peer.publishing:
            for kind in KINDS:
                if kind not in peer.publish_mids:
                    peer.publish_mids[kind] = peer.pc.addTransceiver(kind, direction="recvonly")
        for (publisher, kind), transceiver in list(peer.outgoing.items()):
            if publisher not in peer.wanted or publisher not in self.peers:
                del peer.outgoing[(publisher, kind)]
                track = transceiver.sender.track
                if track is not None:
                    track.stop()
                transceiver.direction = "inactive"
        for publisher in sorted(peer.wanted):
            other = self.peers.get(publisher)
            if other is None:
                continue
            for kind, source in other.sources.items():
                if (publisher, kind) in peer.outgoing:
                    continue
                sink = source.subscribe()
                transceiver = peer.pc.addTransceiver(sink, direction="sendonly")
                sender = transceiver.sender
                sender._send_keyframe = source.request_keyframe  # type: ignore[method-assign]
                if kind == "video" and peer.audio_only:
                    sender._enabled = False
                peer.outgoing[(publisher, kind)] = transceiver

    def negotiating_peer(self, pid: str) -> Peer | None:
        """The participant's connection, or None if it left while its answer or candidates were on the
        way: nothing is left to negotiate then."""
        peer = self.peers.get(pid)
        return None if peer is None or peer.pc.signalingState == "closed" else peer

    async def answer(self, pid: str, sdp: str) -> dict[str, Any]:
        peer = self.negotiating_peer(pid)
        if peer is None:
            return {"ignored": "left"}
        await peer.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        peer.negotiating = False
        if peer.dirty:
            peer.dirty = False
            self.schedule(peer)
        return {}

    async def candidate(
        self, pid: str, candidate: str, sdp_mid: str | None, sdp_mline_index: int | None
    ) -> dict[str, Any]:
        peer = self.negotiating_peer(pid)
        if peer is None:
            return {"ignored": "left"}
        if not candidate:
            return {}
        parsed = candidate_from_sdp(candidate.removeprefix("candidate:"))
        parsed.sdpMid = sdp_mid
        parsed.sdpMLineIndex = sdp_mline_index
        await peer.pc.addIceCandidate(parsed)
        return {}

    async def audio_only(self, pid: str, on: bool) -> dict[str, Any]:
        peer = self.peers[pid]
        peer.audio_only = on
        for (publisher, kind), transceiver in peer.outgoing.items():
            if kind == "video":
                transceiver.sender._enabled = not on
                if not on:
                    self.peers[publisher].sources["video"].request_keyframe()
        return {}

    async def leave(self, pid: str) -> dict[str, Any]:
        peer = self.peers.pop(pid, None)
        if peer is None:
            return {}
        for source in peer.sources.values():
            source.stop()
        for other in self.peers.values():
            if pid in other.wanted:
                await self.unsubscribe(other.pid, pid)
        if peer.scheduled is not None:
            peer.scheduled.cancel()
        await peer.pc.close()
        return {}

    async def stats(self) -> dict[str, Any]:
        sources = [s for peer in self.peers.values() for s in peer.sources.values()]
        return {
            "cpu_seconds": time.process_time() - self.started,
            "peers": len(self.peers),
            "streams_in": len(sources),
            "streams_out": sum(len(s.sinks) for s in sources),
            "packets_in": sum(s.received for s in sources),
            "packets_out": sum(s.forwarded for s in sources),
            "pid": os.getpid(),
            "sources": [
                {
                    "kind": s.kind,
                    "received": s.received,
                    "keyframes": s.keyframes,
                    "plis": s.plis,
                    "sinks": len(s.sinks),
                    "ssrcs": s.media_ssrcs(),
                }
                for s in sources
            ],
        }

    async def shutdown(self) -> dict[str, Any]:
        for pid in list(self.peers):
            await self.leave(pid)
        return {}

    # negotiation --------------------------------------------------------------------------------

    def schedule(self, peer: Peer) -> None:
        """Coalesce changes that arrive together into one offer."""
        if peer.negotiating:
            peer.dirty = True
            return
        if peer.scheduled is None or peer.scheduled.done():
            peer.scheduled = asyncio.ensure_future(self.negotiate(peer))

    async def negotiate(self, peer: Peer) -> None:
        await asyncio.sleep(0.02)
        if peer.negotiating or peer.pid not in self.peers:
            return
        peer.negotiating = True
        self.reconcile(peer)
        await peer.pc.setLocalDescription(await peer.pc.createOffer())
        tracks = {
            transceiver.mid: {"participant_id": publisher, "kind": kind}
            for (publisher, kind), transceiver in peer.outgoing.items()
        }
        publish = {kind: transceiver.mid for kind, transceiver in peer.publish_mids.items()}
        self.emit(
            {
                "event": "offer",
                "pid": peer.pid,
                "sdp": peer.pc.localDescription.sdp,
                "tracks": tracks,
                "publish": publish,
            }
        )


# --- process main --------------------------------------------------------------------------------


def write(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def serve() -> None:
    install_passthrough()
    relay = Relay(write)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=4 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    write({"event": "ready", "pid": None})
    while True:
        line = await reader.readline()
        if not line:
            break  # the server went away: never outlive it
        request = json.loads(line)
        op = request.pop("op")
        request_id = request.pop("id", None)
        try:
            handler = getattr(relay, op) if op in COMMANDS else None
            if handler is None:
                raise ValueError(f"unknown op {op}")
            result = await handler(**request)
            write({"id": request_id, "ok": True, **result})
        except Exception as exc:
            log.exception("relay command failed")
            write({"id": request_id, "ok": False, "error": type(exc).__name__})
        if op == "shutdown":
            break
    await relay.shutdown()


COMMANDS = {
    "join",
    "publish",
    "subscribe",
    "unsubscribe",
    "answer",
    "candidate",
    "audio_only",
    "leave",
    "stats",
    "shutdown",
}


def main() -> None:
    logging.basicConfig(level=os.environ.get("BRYGGA_LOG_LEVEL", "WARNING"), stream=sys.stderr)
    logging.getLogger("aioice").setLevel(logging.WARNING)
    logging.getLogger("aiortc").setLevel(logging.WARNING)
    asyncio.run(serve())


if __name__ == "__main__":
    main()
