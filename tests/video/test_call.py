"""A real call through Brygga: two headless Debian Chromium instances and an aiortc bot, in a network
namespace the test creates, with a guest admitted from the waiting room; then the same call with
relay-only ICE through coturn using credentials minted by Brygga.

The call itself runs in tests/video/scenario.py inside the namespace (a process cannot move its own
event loop's sockets into a namespace); this test creates the namespace, runs it, and asserts on
what each participant observed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHROMIUM, require_service
from tests.video.netns import namespace, why_no_namespaces

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
MIN_FRAMES = 20  # decoded in the 4 s sample: at least 5 fps from every other participant


def run_call(tmp_path: Path, *flags: str) -> dict[str, Any]:
    reason = why_no_namespaces()
    require_service(reason is None, f"network namespaces ({reason})")
    require_service(Path(CHROMIUM).exists(), f"Debian chromium at {CHROMIUM}")
    require_service((ROOT / "client_web" / "dist" / "meeting.html").exists(), "the built web client (make web)")
    out = tmp_path / "call.json"
    with namespace() as ns:
        command = ns.command(
            sys.executable, "-m", "tests.video.scenario", "--out", str(out), "--addresses", *ns.addresses, *flags
        )
        completed = subprocess.run(command, cwd=ROOT, timeout=240, capture_output=True, text=True, check=False)
    assert out.exists(), completed.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    assert "error" not in result, f"{result['error']}\n{result.get('trace', '')}\n{json.dumps(result.get('diag'))}"
    return result


def assert_everyone_decodes_everyone(result: dict[str, Any]) -> None:
    ids = result["participant_ids"]
    everyone = {ids["host"], ids["guest"], ids["bot"]}
    for label in ("host", "guest"):
        seen = result["browsers"][label]
        assert set(seen) == everyone - {ids[label]}, f"{label} has tiles for {set(seen)}"
        for participant_id, video in seen.items():
            assert video["delta"] >= MIN_FRAMES, f"{label} decoded {video['delta']} frames from {participant_id}"
            assert video["codec"] == "video/VP8"
            assert video["width"] >= 240 and video["bytes"] > 0
    bot = result["bot"]
    assert set(bot["frames_delta"]) == {ids["host"], ids["guest"]}
    assert all(frames >= MIN_FRAMES for frames in bot["frames_delta"].values()), bot["frames_delta"]
    assert set(bot["audio_frames"]) == {ids["host"], ids["guest"]}  # Opus forwarded too


def test_call_with_two_browsers_a_bot_and_an_admitted_guest(tmp_path):
    result = run_call(tmp_path, "--browsers")
    assert_everyone_decodes_everyone(result)
    ids = result["participant_ids"]

    # The guest waited, was listed in the host's waiting room and admitted by a click there.
    assert "Greta Gäst" in result["host_lobby_text"]
    assert result["guest_waiting_participant_tiles"] == 0
    host_view = result["browsers"]["host"]
    assert host_view[ids["guest"]]["identity"] == "Gäst: länk och engångskod"
    assert host_view[ids["bot"]]["organisation"] == "Org för Hemtjänst Farsta"
    assert host_view[ids["bot"]]["name"] == "Officer"

    # The meeting chat is the linked conversation: what the host writes there is stored in it, an answer
    # from the conversation shows up live, and the guest has no chat at all.
    chat = result["chat"]
    assert chat["stored"] == ["Rullator levereras fredag", "Hemtjänsten tar emot kl 14"]
    assert chat["answer_status"] == 201
    assert len(chat["host_panel"]) == 2
    assert chat["host_panel"][0].startswith("Nurse") and "Rullator levereras fredag" in chat["host_panel"][0]
    assert chat["host_panel"][1].startswith("Officer") and "Hemtjänsten tar emot kl 14" in chat["host_panel"][1]
    assert chat["guest_panels"] == 0

    # Audio-only mode: no video reaches the bot, audio still does.
    assert result["audio_only"]["video_frames"] == 0 and result["audio_only"]["audio_frames"] > 50

    # A guest who is never admitted gets no media and no participant list.
    assert result["lurker_join"]["state"] == "waiting" and "participants" not in result["lurker_join"]
    assert "ice_servers" not in result["lurker_join"]
    lurker = result["lurker"]
    assert lurker["offers"] == 0
    assert not {"video:offer", "video:participants", "video:lobby"} & set(lurker["events"])
    assert lurker["participants"] == []
    assert lurker["answer"]["ok"] is False and lurker["admit_self"]["ok"] is False

    # Media ran in its own relay process, which stopped when the host ended the meeting.
    assert result["relay_os_pid"] not in (None, result["server_os_pid"])
    assert result["relay_stats"]["streams_out"] == 12  # 3 publishers x 2 subscribers x (audio, video)
    assert "video:ended" in result["bot_events_after_end"]
    assert result["relay_after_end"] is None
    assert result["browser_errors"] == {"host": [], "guest": []}


def test_relay_only_call_through_coturn_with_minted_credentials(tmp_path):
    require_service(shutil.which("turnserver") is not None, "coturn (turnserver)")
    result = run_call(tmp_path, "--browsers", "--relay-only")
    assert_everyone_decodes_everyone(result)
    assert result["ice_routes"] == {"bot": "relay", "host": "relay", "guest": "relay"}
    assert all(server["has_credential"] for server in result["bot_ice_servers"])
    assert result["turn_valid"] == "ok"
    assert "401" in result["turn_expired"]  # coturn refuses credentials past their expiry
