"""Relay worker commands that race with a participant leaving."""

from __future__ import annotations

from server.video.relay_worker import Relay


async def test_answer_and_candidate_after_the_participant_left_are_ignored_not_errors() -> None:
    events: list[dict[str, object]] = []
    relay = Relay(events.append)
    await relay.join("gone")
    await relay.leave("gone")
    assert await relay.answer("gone", "v=0\r\n") == {"ignored": "left"}
    assert await relay.candidate("gone", "candidate:1 1 udp 1 10.0.0.1 9 typ host", "0", 0) == {"ignored": "left"}

    await relay.join("closing")
    await relay.peers["closing"].pc.close()  # connection torn down before the answer arrived
    assert await relay.answer("closing", "v=0\r\n") == {"ignored": "left"}
    await relay.leave("closing")
    assert relay.peers == {}
