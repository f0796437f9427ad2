"""Signalling rules over real socket.io: who joins directly, who waits, host-only controls, rate
limits, TURN credentials, and supervision of the per-room relay process (spawn, crash, idle, end).

No media flows here (loopback only); tests/video/test_call.py covers media.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import socketio

from server.video.media import MEDIA
from server.video.turn import ice_servers, turn_credentials
from tests.conftest import bearer
from tests.video.test_meetings import book, conversation_between, redeemed_guest_link, setup_people


@pytest.fixture
def settings(settings):
    settings.video_room_idle_seconds = 0.5
    return settings


class Peer:
    """A socket.io participant that records server events and never sets up media."""

    def __init__(self, client, auth: dict[str, str]) -> None:
        self.url = str(client.make_url("/")).rstrip("/")
        self.auth = auth
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.sio.on("*", lambda event, data=None: self.events.append((event, data)))
        self.meeting_id = ""

    async def __aenter__(self) -> Peer:
        await self.sio.connect(self.url, auth=self.auth, transports=["websocket"], wait_timeout=10)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self.sio.connected:
            await self.sio.disconnect()

    async def call(self, event: str, **payload: Any) -> dict[str, Any]:
        result: dict[str, Any] = await self.sio.call(event, {"meeting_id": self.meeting_id, **payload}, timeout=20)
        return result

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    async def wait_for(self, event: str, timeout: float = 20) -> Any:
        for _ in range(int(timeout * 20)):
            for name, data in self.events:
                if name == event:
                    return data
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {event}; got {self.names()}")


async def meeting_with_people(client, actors) -> dict[str, Any]:
    _ward, home_care, _other, nurse, officer, stranger = await setup_people(actors)
    body = {"title": "SIP", "starts_at": datetime.now(UTC).isoformat(), "invited_unit_ids": [str(home_care)]}
    meeting = await (await client.post("/api/v1/meetings", json=body, headers=bearer(nurse))).json()
    second = await (await client.post("/api/v1/meetings", json=body, headers=bearer(nurse))).json()
    guest, link_id = await redeemed_guest_link(client, nurse, meeting["id"])
    other_guest, _ = await redeemed_guest_link(client, nurse, second["id"])
    return {
        "meeting": meeting["id"],
        "nurse": nurse,
        "officer": officer,
        "stranger": stranger,
        "guest": guest,
        "link_id": link_id,
        "other_guest": other_guest,
    }


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_waiting_room_admission_and_host_controls(client, actors, ctx):
    people = await meeting_with_people(client, actors)
    meeting_id = people["meeting"]
    peers = {
        name: Peer(client, {"guest_token" if "guest" in name else "token": people[name]})
        for name in ("nurse", "officer", "stranger", "guest", "other_guest")
    }
    for peer in peers.values():
        peer.meeting_id = meeting_id
        await peer.__aenter__()
    try:
        nurse, officer, stranger, guest = (peers[n] for n in ("nurse", "officer", "stranger", "guest"))
        # Staff of an invited unit join directly; media starts (an offer arrives from the relay process).
        joined = await officer.call("video:join")
        assert joined["ok"] and joined["state"] == "joined" and joined["host"] is False
        assert joined["ice_servers"] == [] and joined["ice_transport_policy"] == "all"  # never public STUN
        offer = await officer.wait_for("video:offer")
        assert "m=video" in offer["sdp"] and offer["publish"].keys() == {"audio", "video"}
        media = ctx.need(MEDIA)
        relay_pid = media.worker_pid(uuid.UUID(meeting_id))
        assert relay_pid is not None and relay_pid != os.getpid() and process_alive(relay_pid)

        # A guest of another meeting cannot even find this one.
        wrong = await peers["other_guest"].call("video:join")
        assert wrong["ok"] is False and wrong["error"]["code"] == "not_found"

        # Uninvited staff and guests wait; they see no participants and get no offer.
        for waiter in (stranger, guest):
            ack = await waiter.call("video:join")
            assert ack["state"] == "waiting" and "participants" not in ack and "ice_servers" not in ack
        not_host = await officer.call("video:admit", participant_id=ack["participant_id"])
        assert not_host["ok"] is False and not_host["error"]["code"] == "forbidden"
        for event in ("video:answer", "video:candidate", "video:mute", "video:leave"):
            payload = {"sdp": "v=0 xxxxxxxx"} if event == "video:answer" else {}
            if event == "video:candidate":
                payload = {"candidate": ""}
            refused = await guest.call(event, **payload)
            assert event == "video:leave" or refused["ok"] is False, (event, refused)

        # The host joins directly and sees who waits, with name and how they were identified.
        host_ack = await nurse.call("video:join")
        assert host_ack["host"] is True
        waiting = {p["name"]: p for p in host_ack["waiting"]}
        assert waiting.keys() == {"Outsider"}  # the guest left the waiting room above (video:leave)
        await guest.call("video:join")
        names: dict[str, Any] = {}
        for _ in range(100):
            lobbies = [data for name, data in nurse.events if name == "video:lobby"]
            names = {p["name"]: p for p in (lobbies[-1]["waiting"] if lobbies else [])}
            if "Gunnar" in names:
                break
            await asyncio.sleep(0.05)
        assert names["Gunnar"]["identity_method"] == "guest_code" and names["Gunnar"]["guest"] is True

        # Admit the stranger: they are told, re-join and are in.
        admitted = await nurse.call("video:admit", participant_id=waiting["Outsider"]["participant_id"])
        assert admitted["ok"], admitted
        await stranger.wait_for("video:admitted")
        assert (await stranger.call("video:join"))["state"] == "joined"
        assert not any(name == "video:participants" for name in guest.names())

        # Revoking the guest's link throws the guest out of the waiting room and off the socket.
        revoked = await client.delete(
            f"/api/v1/meetings/{meeting_id}/guest-links/{people['link_id']}", headers=bearer(people["nurse"])
        )
        assert revoked.status == 204
        await guest.wait_for("video:removed")
        for _ in range(40):
            if not guest.sio.connected:
                break
            await asyncio.sleep(0.05)
        assert not guest.sio.connected

        # Only hosts end; ending reaches everyone and stops the relay process.
        assert (await officer.call("video:end"))["ok"] is False
        assert (await nurse.call("video:end"))["ok"]
        await officer.wait_for("video:ended")
        await stranger.wait_for("video:ended")
        for _ in range(100):
            if not process_alive(relay_pid):
                break
            await asyncio.sleep(0.05)
        assert not process_alive(relay_pid)
        again = await officer.call("video:join")
        assert again["ok"] is False and again["error"]["code"] == "meeting_ended"
        meeting = await (await client.get(f"/api/v1/meetings/{meeting_id}", headers=bearer(people["nurse"]))).json()
        assert meeting["status"] == "ended"
    finally:
        for peer in peers.values():
            await peer.__aexit__()


async def test_meeting_chat_is_the_linked_conversation_for_staff_who_may_post_there(client, actors):
    ward, home_care, outsider_unit, nurse, officer, outsider = await setup_people(actors)
    conversation_id = await conversation_between(client, nurse, ward, home_care)
    # The outsider's unit is invited to the meeting but is no party to the conversation.
    meeting = await book(
        client, nurse, invited_unit_ids=[str(home_care), str(outsider_unit)], conversation_id=conversation_id
    )
    guest_token, _link = await redeemed_guest_link(client, nurse, meeting["id"])

    peers = [
        Peer(client, {"token": nurse}),
        Peer(client, {"token": officer}),
        Peer(client, {"token": outsider}),
        Peer(client, {"guest_token": guest_token}),
    ]
    for peer in peers:
        peer.meeting_id = meeting["id"]
        await peer.__aenter__()
    try:
        host, colleague, stranger, guest = peers
        assert (await host.call("video:join"))["chat_conversation_id"] == conversation_id
        assert (await colleague.call("video:join"))["chat_conversation_id"] == conversation_id
        assert (await stranger.call("video:join"))["chat_conversation_id"] is None
        knock = await guest.call("video:join")
        await host.call("video:admit", participant_id=knock["participant_id"])
        await guest.wait_for("video:admitted")
        admitted = await guest.call("video:join")
        assert admitted["state"] == "joined" and admitted["chat_conversation_id"] is None

        # The chat is plain messaging on the same connection: stored in the conversation, seen live.
        sent = await colleague.sio.call(
            "message:send",
            {"conversation_id": conversation_id, "client_id": str(uuid.uuid4()), "body": "Hemtjänsten är klar"},
            timeout=20,
        )
        assert sent["ok"] is True and sent["message"]["body"] == "Hemtjänsten är klar"
        seen = await host.wait_for("message:new")
        assert seen["id"] == sent["message"]["id"]
        refused = await guest.sio.call(
            "message:send",
            {"conversation_id": conversation_id, "client_id": str(uuid.uuid4()), "body": "hej"},
            timeout=20,
        )
        assert refused["ok"] is False
        assert "message:new" not in guest.names() and "message:new" not in stranger.names()
    finally:
        for peer in peers:
            await peer.__aexit__()


async def test_relay_crash_is_reported_and_idle_relay_stops(client, actors, ctx):
    people = await meeting_with_people(client, actors)
    media = ctx.need(MEDIA)
    room = uuid.UUID(people["meeting"])
    async with Peer(client, {"token": people["officer"]}) as officer:
        officer.meeting_id = people["meeting"]
        await officer.call("video:join")
        await officer.wait_for("video:offer")
        crashed = media.worker_pid(room)
        os.kill(crashed, 9)
        await officer.wait_for("video:media_failed")
        assert media.worker_pid(room) is None

        # Joining again spawns a fresh relay; leaving empties the room and the idle relay stops.
        assert (await officer.call("video:join"))["state"] == "joined"
        for _ in range(100):
            if media.worker_pid(room) not in (None, crashed):
                break
            await asyncio.sleep(0.05)
        fresh = media.worker_pid(room)
        assert fresh not in (None, crashed)
        await officer.call("video:leave")
        for _ in range(100):  # idle timeout is 0.5 s in this module
            if media.worker_pid(room) is None and not process_alive(fresh):
                break
            await asyncio.sleep(0.05)
        assert media.worker_pid(room) is None and not process_alive(fresh)


async def test_joining_again_on_the_same_connection_starts_media_afresh(client, actors, ctx):
    """A client told video:media_failed makes a fresh peer connection and joins again on the same socket;
    the relay must offer it media again (not answer "joined" and leave it without any)."""
    people = await meeting_with_people(client, actors)
    media = ctx.need(MEDIA)
    room = uuid.UUID(people["meeting"])
    async with Peer(client, {"token": people["officer"]}) as officer:
        officer.meeting_id = people["meeting"]
        first = await officer.call("video:join")
        await officer.wait_for("video:offer")
        relay = media.worker_pid(room)
        officer.events.clear()

        again = await officer.call("video:join")
        assert again["state"] == "joined"
        offer = await officer.wait_for("video:offer")
        assert offer["publish"]  # a new peer connection publishes again
        assert media.worker_pid(room) == relay  # same room, same relay: only this peer started over
        participants = await officer.wait_for("video:participants")
        assert [p["participant_id"] for p in participants["participants"]] == [again["participant_id"]]
        assert again["participant_id"] != first["participant_id"]


async def test_events_are_rate_limited_per_connection(client, actors):
    people = await meeting_with_people(client, actors)
    async with Peer(client, {"token": people["officer"]}) as officer:
        officer.meeting_id = people["meeting"]
        await officer.call("video:join")
        audio_only = await officer.call("video:bandwidth", audio_only=True)
        assert audio_only["ok"], audio_only
        results = [await officer.call("video:mute", audio=False) for _ in range(31)]
        assert all(result["ok"] for result in results[:30])
        assert results[30]["error"]["code"] == "rate_limited"
        await officer.call("video:leave")


def test_turn_credentials_follow_the_turn_rest_scheme():
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    username, password = turn_credentials("s3cret", "participant-1", now, 3600)
    assert username == f"{int((now + timedelta(hours=1)).timestamp())}:participant-1"
    expected = base64.b64encode(hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()).decode()
    assert password == expected
    assert ice_servers([], "s3cret", "p", now, 60) == []  # nothing configured: no ICE servers at all
    assert ice_servers(["turn:x:3478"], "", "p", now, 60) == []
    (server,) = ice_servers(["turns:turn.example.se:443?transport=tcp"], "s3cret", "p", now, 60)
    assert server.urls == ["turns:turn.example.se:443?transport=tcp"] and server.username.endswith(":p")


def test_turn_urls_are_read_from_the_environment_as_a_comma_separated_list(monkeypatch):
    from server.settings import Settings

    monkeypatch.setenv("BRYGGA_TURN_URLS", "turn:10.0.0.5:3478?transport=udp, turns:turn.example.se:443?transport=tcp")
    assert Settings().turn_urls == ["turn:10.0.0.5:3478?transport=udp", "turns:turn.example.se:443?transport=tcp"]
