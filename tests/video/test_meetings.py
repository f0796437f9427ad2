"""Meetings over REST: booking, visibility, upcoming per unit; guest links: once, expiry, revocation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import socketio

from server.core.principal import Principal
from server.video.service import identity_method
from tests.conftest import bearer


def url_of(client) -> str:
    return str(client.make_url("/")).rstrip("/")


async def book(client, token, **extra):
    body = {"title": "SIP-möte inför utskrivning", "starts_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    body.update(extra)
    response = await client.post("/api/v1/meetings", json=body, headers=bearer(token))
    assert response.status == 201, await response.text()
    return await response.json()


async def conversation_between(client, token, from_unit, to_unit, subject="Utskrivning fredag") -> str:
    created = await client.post(
        "/api/v1/conversations",
        json={"subject": subject, "from_unit_id": str(from_unit), "unit_ids": [str(to_unit)]},
        headers=bearer(token),
    )
    assert created.status == 201, await created.text()
    return str((await created.json())["id"])


async def redeemed_guest_link(client, host_token, meeting_id, name="Gunnar") -> tuple[str, str]:
    """A guest link made by the host and redeemed with its code: (guest token, link id)."""
    link = await (
        await client.post(f"/api/v1/meetings/{meeting_id}/guest-links", json={}, headers=bearer(host_token))
    ).json()
    redeemed = await client.post(
        "/api/v1/guest-links/redeem", json={"link": link["url"].split("#guest=")[1], "name": name, "code": link["code"]}
    )
    return (await redeemed.json())["guest_token"], link["id"]


async def setup_people(actors):
    ward = await actors.unit("Avdelning 12")
    home_care = await actors.unit("Hemtjänst Söder", org_kind="municipality")
    outsider_unit = await actors.unit("Vårdcentral Norr")
    _, nurse = await actors.user("nurse", units={ward: "member"})
    _, officer = await actors.user("officer", units={home_care: "member"})
    _, outsider = await actors.user("outsider", units={outsider_unit: "member"})
    return ward, home_care, outsider_unit, nurse, officer, outsider


async def test_book_meeting_and_see_it_per_unit(client, actors):
    ward, home_care, _outsider_unit, nurse, officer, outsider = await setup_people(actors)
    meeting = await book(client, nurse, invited_unit_ids=[str(home_care)], duration_minutes=45)
    assert meeting["organiser_unit_id"] == str(ward)
    assert [unit["unit_name"] for unit in meeting["invited_units"]] == ["Hemtjänst Söder"]
    assert meeting["join_path"] == f"/meeting#meeting={meeting['id']}"
    assert meeting["can_host"] is True

    seen = await client.get(f"/api/v1/meetings/{meeting['id']}", headers=bearer(officer))
    assert seen.status == 200
    assert (await seen.json())["can_host"] is False
    upcoming = await client.get(f"/api/v1/meetings?unit_id={home_care}", headers=bearer(officer))
    assert [item["id"] for item in (await upcoming.json())["items"]] == [meeting["id"]]

    hidden = await client.get(f"/api/v1/meetings/{meeting['id']}", headers=bearer(outsider))
    assert hidden.status == 404
    other_unit = await client.get(f"/api/v1/meetings?unit_id={home_care}", headers=bearer(outsider))
    assert other_unit.status == 403
    own = await client.get("/api/v1/meetings", headers=bearer(outsider))
    assert (await own.json())["items"] == []


async def test_cannot_organise_for_a_foreign_unit(client, actors):
    ward, _home_care, *_rest, officer, _outsider = await setup_people(actors)
    response = await client.post(
        "/api/v1/meetings",
        json={"title": "x", "starts_at": datetime.now(UTC).isoformat(), "organiser_unit_id": str(ward)},
        headers=bearer(officer),
    )
    assert response.status == 403


async def test_guest_link_works_once_and_can_be_revoked(client, actors):
    _ward, _home, _out, nurse, officer, _outsider = await setup_people(actors)
    meeting = await book(client, nurse)
    created = await client.post(
        f"/api/v1/meetings/{meeting['id']}/guest-links", json={"label": "Patient"}, headers=bearer(nurse)
    )
    assert created.status == 201
    link = await created.json()
    assert "#guest=" in link["url"] and link["url"].startswith("http://127.0.0.1/meeting")
    secret = link["url"].split("#guest=", 1)[1]
    not_host = await client.post(f"/api/v1/meetings/{meeting['id']}/guest-links", json={}, headers=bearer(officer))
    assert not_host.status == 404  # not invited: cannot even see the meeting

    wrong = await client.post(
        "/api/v1/guest-links/redeem",
        json={"link": secret, "name": "Greta", "code": "000000" if link["code"] != "000000" else "111111"},
    )
    assert wrong.status == 403 and (await wrong.json())["code"] == "guest_code_invalid"
    redeemed = await client.post(
        "/api/v1/guest-links/redeem", json={"link": secret, "name": "Greta", "code": link["code"]}
    )
    assert redeemed.status == 200, await redeemed.text()
    guest = await redeemed.json()
    assert guest["meeting_id"] == meeting["id"] and guest["guest_token"].startswith("brg_")
    again = await client.post(
        "/api/v1/guest-links/redeem", json={"link": secret, "name": "Greta", "code": link["code"]}
    )
    assert again.status == 410 and (await again.json())["code"] == "guest_link_used"

    # The guest token is for the meeting's socket only, never the HTTP API.
    assert (await client.get(f"/api/v1/meetings/{meeting['id']}", headers=bearer(guest["guest_token"]))).status == 401
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(
        url_of(client), auth={"guest_token": guest["guest_token"]}, transports=["websocket"], wait_timeout=10
    )
    other_domain = await sio.call("no:such:event", {}, timeout=5)
    assert other_domain["ok"] is False
    # Revoking the link ends the guest session: a new connection is refused.
    listed = await (await client.get(f"/api/v1/meetings/{meeting['id']}/guest-links", headers=bearer(nurse))).json()
    assert listed["items"][0]["guest_name"] == "Greta" and "code" not in listed["items"][0]
    revoke = await client.delete(f"/api/v1/meetings/{meeting['id']}/guest-links/{link['id']}", headers=bearer(nurse))
    assert revoke.status == 204
    await sio.disconnect()
    refused = socketio.AsyncClient(reconnection=False)
    try:
        await refused.connect(
            url_of(client), auth={"guest_token": guest["guest_token"]}, transports=["websocket"], wait_timeout=10
        )
        raise AssertionError("a revoked guest session connected")
    except socketio.exceptions.ConnectionError:
        pass


async def test_guest_link_expires_and_revoked_link_is_refused(client, actors, ctx):
    *_rest, nurse, _officer, _outsider = await setup_people(actors)
    meeting = await book(client, nurse)
    links = []
    for _ in range(2):
        response = await client.post(
            f"/api/v1/meetings/{meeting['id']}/guest-links", json={"ttl_minutes": 10}, headers=bearer(nurse)
        )
        links.append(await response.json())
    revoke = await client.delete(
        f"/api/v1/meetings/{meeting['id']}/guest-links/{links[1]['id']}", headers=bearer(nurse)
    )
    assert revoke.status == 204

    real_clock = ctx.clock
    ctx.clock = lambda: real_clock() + timedelta(minutes=11)
    try:
        secret = links[0]["url"].split("#guest=")[1]
        expired = await client.post(
            "/api/v1/guest-links/redeem", json={"link": secret, "name": "G", "code": links[0]["code"]}
        )
        assert expired.status == 410 and (await expired.json())["code"] == "guest_link_expired"
    finally:
        ctx.clock = real_clock
    secret = links[1]["url"].split("#guest=")[1]
    revoked = await client.post(
        "/api/v1/guest-links/redeem", json={"link": secret, "name": "G", "code": links[1]["code"]}
    )
    assert revoked.status == 410 and (await revoked.json())["code"] == "guest_link_revoked"


async def test_wrong_codes_lock_the_link(client, actors):
    *_rest, nurse, _officer, _outsider = await setup_people(actors)
    meeting = await book(client, nurse)
    link = await (
        await client.post(f"/api/v1/meetings/{meeting['id']}/guest-links", json={}, headers=bearer(nurse))
    ).json()
    secret = link["url"].split("#guest=")[1]
    wrong_code = "000000" if link["code"] != "000000" else "111111"
    codes = []
    for _ in range(5):
        response = await client.post(
            "/api/v1/guest-links/redeem", json={"link": secret, "name": "G", "code": wrong_code}
        )
        codes.append((await response.json())["code"])
    assert codes == ["guest_code_invalid"] * 4 + ["guest_link_locked"]
    right = await client.post("/api/v1/guest-links/redeem", json={"link": secret, "name": "G", "code": link["code"]})
    assert right.status == 410


async def test_booking_from_a_conversation_posts_the_invitation_there(client, actors):
    ward, home_care, _outsider_unit, nurse, officer, outsider = await setup_people(actors)
    conversation_id = await conversation_between(client, nurse, ward, home_care)

    refused = await client.post(
        "/api/v1/meetings",
        json={"title": "x", "starts_at": datetime.now(UTC).isoformat(), "conversation_id": conversation_id},
        headers=bearer(outsider),
    )
    assert refused.status == 404  # not a participant: the conversation does not exist for them

    meeting = await book(client, nurse, invited_unit_ids=[str(home_care)], conversation_id=conversation_id)
    feed = await (await client.get("/api/v1/conversations/sync?since=0", headers=bearer(officer))).json()
    notices = [m for m in feed["messages"] if m["conversation_id"] == conversation_id and m["kind"] == "system"]
    assert len(notices) == 1
    invitation = notices[0]["system"]
    assert invitation["kind"] == "video_meeting_booked"
    assert invitation["data"]["meeting_id"] == meeting["id"]
    assert invitation["data"]["join_path"] == meeting["join_path"]


def test_identification_method_is_a_known_name_never_a_raw_urn():
    def method(auth_method: str, acr: str | None) -> str:
        return identity_method(Principal(uuid.uuid4(), "N", auth_method=auth_method, acr=acr))

    assert method("session", "urn:brygga:loa:2fa") == "password_otp"  # the built-in provider
    assert method("session", "http://id.elegnamnden.se/loa/1.0/loa3") == "eid_loa3"
    assert method("session", "urn:example:siths:loa3") == "siths"
    assert method("session", "urn:oid:1.2.752.201.3.2") == "other"  # unknown assurance: no URN shown
    assert method("session", None) == "session"
    assert method("token", None) == "token"
    assert method("saml-weird", None) == "other"
