"""Rows of the authorisation matrix for the directory, messaging, video and audit domains.

Objects belong to unit A (a route, an endpoint, a conversation between a unit C and unit A, a meeting
organised by unit A). Edits of versioned directory objects are sent with an outdated If-Match: a caller
the policy lets through gets 412, anyone else 403, and nothing changes. Objects a row consumes (a closure,
a message to acknowledge, a meeting to end) are fresh per role. Socket events are emitted on a real
socket.io connection; the ack maps to a status
(ok: 200, forbidden: 403, not_found: 404, ...); anonymous cannot connect (401). Video events are
emitted after video:join: hosts and invitees are in the meeting, anyone else waits in the waiting room.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import socketio
from sqlalchemy import select

from server.core.models import Unit
from tests.conftest import bearer
from tests.identity.test_authz_matrix import ADMINS_OF_A, EVERYONE, ROLES, Case, Request, Setup, World, allow, fixed


@dataclass
class Raw:
    data: bytes
    headers: dict[str, str] = field(default_factory=dict)


STALE = {"If-Match": 'W/"999"'}


def stale(body: dict[str, Any] | None = None) -> Raw:
    """A versioned edit with an outdated If-Match: 412 once authorised, and nothing changes."""
    if body is None:
        return Raw(b"", STALE)
    return Raw(json.dumps(body).encode(), {**STALE, "Content-Type": "application/json"})


ACK_STATUS = {"unauthorized": 401, "forbidden": 403, "not_found": 404, "conflict": 409}


def url_of(client: Any) -> str:
    return str(client.make_url("/")).rstrip("/")


async def emit_event(world: World, role: str, event: str, data: Any) -> int | str:
    if role == "anonymous":
        sio = socketio.AsyncClient(reconnection=False)
        try:
            await sio.connect(url_of(world.client), transports=["websocket"], wait_timeout=10)
        except socketio.exceptions.ConnectionError:
            return 401
        await sio.disconnect()
        return "anonymous connected"
    sio = socketio.AsyncClient(reconnection=False)
    auth = {"token": world.tokens[role]}
    await sio.connect(url_of(world.client), auth=auth, transports=["websocket"], wait_timeout=10)
    try:
        if isinstance(data, dict) and data.pop("join_first", False):
            joined = await sio.call("video:join", {"meeting_id": data["meeting_id"]}, timeout=10)
            assert joined.get("ok"), joined
        authz_only = isinstance(data, dict) and data.pop("authz_only", False)
        ack = await sio.call(event, data, timeout=10)
    finally:
        await sio.disconnect()
    if ack.get("ok"):
        return 200
    code = ack["error"]["code"]
    if authz_only and code not in ACK_STATUS:
        return 200  # past authorisation (the test server may have no media relay: media_unavailable)
    return ACK_STATUS.get(code, code)


async def rest(world: World, role: str, method: str, path: str, body: Any = None, expect: int = 201) -> Any:
    response = await world.client.request(method, path, json=body, headers=bearer(world.tokens[role]))
    assert response.status == expect, (path, await response.text())
    return await response.json() if response.content_type == "application/json" else None


async def cached(world: World, key: str, make: Any) -> Any:
    if key not in world.cache:
        world.cache[key] = await make()
    return world.cache[key]


# --------------------------------------------------------------------------------------------- objects of unit A


async def org_a(world: World) -> uuid.UUID:
    async with world.ctx.db.transaction() as session:
        return (await session.execute(select(Unit.organisation_id).where(Unit.id == world.unit_a))).scalar_one()


async def rest_org(world: World) -> str:
    async def make() -> str:
        body = {"name": "Region Matris", "kind": "region"}
        return (await rest(world, "directory_admin", "POST", "/api/v1/organisations", body))["id"]

    return str(await cached(world, "rest_org", make))


async def rest_unit(world: World) -> str:
    async def make() -> str:
        body = {"organisation_id": await rest_org(world), "name": "Avdelning Matris", "unit_type": "ward"}
        return (await rest(world, "directory_admin", "POST", "/api/v1/units", body))["id"]

    return str(await cached(world, "rest_unit", make))


async def route_a(world: World) -> str:
    async def make() -> str:
        body = {"channel": "phone", "label": "Expedition", "value": "+4681234567", "hours": "always"}
        return (await rest(world, "directory_admin", "POST", f"/api/v1/units/{world.unit_a}/routes", body))["id"]

    return str(await cached(world, "route", make))


async def endpoint_a(world: World) -> str:
    async def make() -> str:
        body = {"unit_id": str(world.unit_a), "name": "Inkorg", "connection_type": "brygga-secure-message",
                "address": "brygga:inbox"}
        return (await rest(world, "directory_admin", "POST", "/api/v1/endpoints", body))["id"]

    return str(await cached(world, "endpoint", make))


async def affiliation_ab(world: World) -> str:
    async def make() -> str:
        body = {"primary_id": str(world.unit_a), "participating_id": str(world.unit_b), "role": "discharge"}
        return (await rest(world, "directory_admin", "POST", "/api/v1/affiliations", body))["id"]

    return str(await cached(world, "affiliation", make))


def closure_body() -> dict[str, Any]:
    start = datetime.now(UTC) + timedelta(days=1)
    return {"starts_at": start.isoformat(), "ends_at": (start + timedelta(hours=2)).isoformat(), "reason": "Stängt"}


async def unit_c_sender(world: World) -> tuple[uuid.UUID, str]:
    """A unit C and one of its staff: C writes to unit A (none of the six roles is in C)."""

    async def make() -> tuple[uuid.UUID, str]:
        unit_c = await world.actors.unit("Enhet C")
        _, token = await world.actors.user("senderc", units={unit_c: "member"})
        world.tokens["sender_c"] = token
        return unit_c, token

    result: tuple[uuid.UUID, str] = await cached(world, "unit_c", make)
    return result


async def conversation_a(world: World) -> str:
    async def make() -> str:
        unit_c, _ = await unit_c_sender(world)
        body = {"subject": "Utskrivning", "from_unit_id": str(unit_c), "unit_ids": [str(world.unit_a)]}
        return (await rest(world, "sender_c", "POST", "/api/v1/conversations", body))["id"]

    return str(await cached(world, "conversation", make))


async def message_in_a(world: World, sender: str) -> str:
    conversation = await conversation_a(world)
    body = {"client_id": str(uuid.uuid4()), "body": "Hej", "ack_required": True}
    return (await rest(world, sender, "POST", f"/api/v1/conversations/{conversation}/messages", body))["id"]


async def attachment_a(world: World) -> str:
    async def make() -> str:
        conversation = await conversation_a(world)
        response = await world.client.post(
            f"/api/v1/conversations/{conversation}/attachments",
            data=b"%PDF-1.4\n%matrix\n",
            headers={**bearer(world.tokens["sender_c"]), "Content-Type": "application/pdf", "X-Filename": "a.pdf"},
        )
        assert response.status == 201, await response.text()
        attachment = (await response.json())["id"]
        body = {"client_id": str(uuid.uuid4()), "body": "Bifogat", "attachments": [attachment]}
        await rest(world, "sender_c", "POST", f"/api/v1/conversations/{conversation}/messages", body)
        return attachment

    return str(await cached(world, "attachment", make))


async def meeting_a(world: World, fresh: bool = False) -> str:
    async def make() -> str:
        start = datetime.now(UTC) + timedelta(hours=1)
        body = {"title": "SIP", "starts_at": start.isoformat(), "organiser_unit_id": str(world.unit_a)}
        return (await rest(world, "member_a", "POST", "/api/v1/meetings", body))["id"]

    if fresh:
        return await make()
    return str(await cached(world, "meeting", make))


async def guest_link(world: World, meeting: str) -> dict[str, Any]:
    link: dict[str, Any] = await rest(world, "member_a", "POST", f"/api/v1/meetings/{meeting}/guest-links", {})
    return link


def new_case(world: World, values: dict[str, Any]) -> dict[str, Any]:
    return {
        "case_ref": f"M-{uuid.uuid4().hex[:12]}", "municipality_code": "0182", "age_band": "65_plus",
        "ward_unit_id": str(world.unit_a), "units": [{"unit_id": str(world.unit_b), "role": "home_care"}],
        "admitted_at": datetime.now(UTC).isoformat(),
    }  # fmt: skip


async def case_a(world: World) -> str:
    async def make() -> str:
        return (await rest(world, "member_a", "POST", "/api/v1/discharge/cases", new_case(world, {})))["id"]

    return str(await cached(world, "case", make))


def deviation_body() -> dict[str, Any]:
    return {"category": "contact_route_unanswered", "occurred_on": "2026-03-02", "text": "Ingen svarade i helgen."}


async def deviation_a(world: World) -> str:
    async def make() -> str:
        return (await rest(world, "member_a", "POST", "/api/v1/deviations", deviation_body()))["id"]

    return str(await cached(world, "deviation", make))


# --------------------------------------------------------------------------------------------- setups


def at(method: str, template: str, body: Any = None, **objects: Any) -> Setup:
    """A request whose path (and body) name objects made by the given makers: {name} in the template."""

    async def setup(world: World, role: str) -> Request:
        values = {"unit_a": world.unit_a, "unit_b": world.unit_b}
        for name, maker in objects.items():
            values[name] = await maker(world)
        payload = body(world, values) if callable(body) else body
        return method, template.format(**values), payload

    return setup


def event(name: str, payload: Any, **objects: Any) -> Setup:
    async def setup(world: World, role: str) -> Request:
        values: dict[str, Any] = {}
        for key, maker in objects.items():
            values[key] = await maker(world)
        data = payload(values) if callable(payload) else payload
        return "EVENT", name, data

    return setup


def fresh_message(sender: str) -> Any:
    async def make(world: World) -> str:
        return await message_in_a(world, sender)

    return make


async def fresh_conversation(world: World) -> str:
    """A new conversation C ↔ A per role: adding a unit changes who takes part."""
    unit_c, _ = await unit_c_sender(world)
    body = {"subject": "Vårdplanering", "from_unit_id": str(unit_c), "unit_ids": [str(world.unit_a)]}
    return str((await rest(world, "sender_c", "POST", "/api/v1/conversations", body))["id"])


async def fresh_meeting(world: World) -> str:
    return await meeting_a(world, fresh=True)


async def fresh_link(world: World) -> str:
    return str((await guest_link(world, await meeting_a(world)))["id"])


async def fresh_closure(world: World) -> str:
    path = f"/api/v1/units/{world.unit_a}/closures"
    return str((await rest(world, "directory_admin", "POST", path, closure_body()))["id"])



async def redeem_request(world: World, role: str) -> Request:
    link = await guest_link(world, await meeting_a(world))
    secret = link["url"].split("#guest=", 1)[1]
    return "POST", "/api/v1/guest-links/redeem", {"link": secret, "name": "Greta", "code": link["code"]}


CONV = "/api/v1/conversations/{conversation}"
MSG = CONV + "/messages/{message}"
MEETING = "/api/v1/meetings/{meeting}"
A_MEMBERS = ("member_a", "unit_admin")  # unit_admin of A is a member of A
# member_a wrote it; unit_admin takes part (403: not the sender); the rest cannot see it (404)
SENDER_ONLY = {**allow(200, "member_a", otherwise=404), "unit_admin": 403}
conv = {"conversation": conversation_a}


def rows() -> list[Case]:
    reading = [
        ("GET /api/v1/units", "/api/v1/units", {}),
        ("GET /api/v1/units/{unit_id}", "/api/v1/units/{unit_a}", {}),
        ("GET /api/v1/units/{unit_id}/reachability", "/api/v1/units/{unit_a}/reachability", {}),
        ("GET /api/v1/units/{unit_id}/inbox-hours", "/api/v1/units/{unit_a}/inbox-hours", {}),
        ("GET /api/v1/organisations", "/api/v1/organisations", {}),
        ("GET /api/v1/organisations/{org_id}", "/api/v1/organisations/{org}", {"org": org_a}),
        ("GET /api/v1/routes/{route_id}", "/api/v1/routes/{route}", {"route": route_a}),
        ("GET /api/v1/endpoints", "/api/v1/endpoints", {}),
        ("GET /api/v1/affiliations", "/api/v1/affiliations", {}),
        ("GET /api/v1/units/{object_id}/history", "/api/v1/units/{u}/history", {"u": rest_unit}),
        ("GET /api/v1/organisations/{object_id}/history", "/api/v1/organisations/{o}/history", {"o": rest_org}),
        ("GET /api/v1/routes/{object_id}/history", "/api/v1/routes/{route}/history", {"route": route_a}),
        ("GET /api/v1/endpoints/{object_id}/history", "/api/v1/endpoints/{ep}/history", {"ep": endpoint_a}),
        ("GET /api/v1/affiliations/{object_id}/history", "/api/v1/affiliations/{af}/history", {"af": affiliation_ab}),
        ("GET /api/v1/directory/changes", "/api/v1/directory/changes", {}),
        ("GET /api/v1/directory/vocabulary", "/api/v1/directory/vocabulary", {}),
    ]
    cases = [Case(op, "any signed-in user reads", at("GET", path, **objs), allow(200, *EVERYONE))
             for op, path, objs in reading]
    da = ("directory_admin",)
    cases += [
        Case("POST /api/v1/organisations", "", at("POST", "/api/v1/organisations",
             {"name": "Ny org", "kind": "region"}), allow(201, *da)),
        Case("PATCH /api/v1/organisations/{org_id}", "stale If-Match",
             at("PATCH", "/api/v1/organisations/{org}", stale({"name": "X"}), org=org_a), allow(412, *da)),
        Case("DELETE /api/v1/organisations/{org_id}", "stale If-Match",
             at("DELETE", "/api/v1/organisations/{org}", stale(), org=org_a), allow(412, *da)),
        Case("POST /api/v1/units", "", at("POST", "/api/v1/units",
             lambda w, v: {"organisation_id": str(v["org"]), "name": "Ny enhet", "unit_type": "ward"}, org=org_a),
             allow(201, *da)),
        Case("PATCH /api/v1/units/{unit_id}", "unit A, stale If-Match",
             at("PATCH", "/api/v1/units/{unit_a}", stale({"description": "x"})), allow(412, *ADMINS_OF_A)),
        Case("PATCH /api/v1/units/{unit_id}", "unit B, stale If-Match",
             at("PATCH", "/api/v1/units/{unit_b}", stale({"description": "x"})), allow(412, *da)),
        Case("DELETE /api/v1/units/{unit_id}", "unit A, stale If-Match",
             at("DELETE", "/api/v1/units/{unit_a}", stale()), allow(412, *da)),
        Case("POST /api/v1/units/{unit_id}/routes", "unit A", at("POST", "/api/v1/units/{unit_a}/routes",
             {"channel": "phone", "label": "Natt", "value": "+4687654321", "hours": "always"}),
             allow(201, *ADMINS_OF_A)),
        Case("POST /api/v1/units/{unit_id}/routes", "unit B", at("POST", "/api/v1/units/{unit_b}/routes",
             {"channel": "phone", "label": "Natt", "value": "+4687654321", "hours": "always"}), allow(201, *da)),
        Case("PATCH /api/v1/routes/{route_id}", "route of A, stale If-Match",
             at("PATCH", "/api/v1/routes/{route}", stale({"label": "Y"}), route=route_a), allow(412, *ADMINS_OF_A)),
        Case("DELETE /api/v1/routes/{route_id}", "route of A, stale If-Match",
             at("DELETE", "/api/v1/routes/{route}", stale(), route=route_a), allow(412, *ADMINS_OF_A)),
        Case("POST /api/v1/units/{unit_id}/closures", "unit A",
             at("POST", "/api/v1/units/{unit_a}/closures", lambda w, v: closure_body()), allow(201, *ADMINS_OF_A)),
        Case("POST /api/v1/units/{unit_id}/closures", "unit B",
             at("POST", "/api/v1/units/{unit_b}/closures", lambda w, v: closure_body()), allow(201, *da)),
        Case("POST /api/v1/units/{unit_id}/hours-preview", "unit A", at("POST", "/api/v1/units/{unit_a}/hours-preview",
             {"hours": "always"}), allow(200, *ADMINS_OF_A)),
        Case("POST /api/v1/units/{unit_id}/hours-preview", "unit B", at("POST", "/api/v1/units/{unit_b}/hours-preview",
             {"hours": "always"}), allow(200, *da)),
        Case("DELETE /api/v1/closures/{closure_id}", "closure of A (fresh per role)",
             at("DELETE", "/api/v1/closures/{closure}", closure=fresh_closure), allow(204, *ADMINS_OF_A)),
        Case("POST /api/v1/endpoints", "of unit A", at("POST", "/api/v1/endpoints",
             lambda w, v: {"unit_id": str(v["unit_a"]), "name": "E", "connection_type": "c", "address": "a"}),
             allow(201, *ADMINS_OF_A)),
        Case("POST /api/v1/endpoints", "of an organisation", at("POST", "/api/v1/endpoints",
             lambda w, v: {"organisation_id": str(v["org"]), "name": "E", "connection_type": "c", "address": "a"},
             org=org_a), allow(201, *da)),
        Case("PATCH /api/v1/endpoints/{endpoint_id}", "endpoint of A, stale If-Match",
             at("PATCH", "/api/v1/endpoints/{ep}", stale({"name": "F"}), ep=endpoint_a), allow(412, *ADMINS_OF_A)),
        Case("DELETE /api/v1/endpoints/{endpoint_id}", "endpoint of A, stale If-Match",
             at("DELETE", "/api/v1/endpoints/{ep}", stale(), ep=endpoint_a), allow(412, *ADMINS_OF_A)),
        Case("POST /api/v1/affiliations", "", at("POST", "/api/v1/affiliations",
             lambda w, v: {"primary_id": str(v["unit_a"]), "participating_id": str(v["unit_b"]), "role": "r"}),
             allow(201, *da)),
        Case("PATCH /api/v1/affiliations/{affiliation_id}", "stale If-Match",
             at("PATCH", "/api/v1/affiliations/{af}", stale({"role": "s"}), af=affiliation_ab), allow(412, *da)),
        Case("DELETE /api/v1/affiliations/{affiliation_id}", "stale If-Match",
             at("DELETE", "/api/v1/affiliations/{af}", stale(), af=affiliation_ab), allow(412, *da)),
        Case("POST /api/v1/directory/import", "dry run", fixed("POST", "/api/v1/directory/import?dry_run=true",
             Raw(b"", {"Content-Type": "text/csv"})), allow(200, *da)),
        Case("GET /api/v1/directory/export", "", fixed("GET", "/api/v1/directory/export"), allow(200, *da)),
    ]
    # ------------------------------------------------------------------------------------- messaging
    participants = A_MEMBERS  # conversation between unit C and unit A
    cases += [
        Case("GET /api/v1/conversations", "own list", fixed("GET", "/api/v1/conversations"), allow(200, *EVERYONE)),
        Case("GET /api/v1/attachment-limits", "any signed-in user", fixed("GET", "/api/v1/attachment-limits"),
             allow(200, *EVERYONE)),
        Case("GET /api/v1/conversations/sync", "own feed", fixed("GET", "/api/v1/conversations/sync"),
             allow(200, *EVERYONE)),
        Case("GET /api/v1/conversations/search", "own conversations only", fixed(
             "GET", "/api/v1/conversations/search?case_ref=X-1&q=S"), allow(200, *EVERYONE)),
        Case("POST /api/v1/conversations", "from unit A", at("POST", "/api/v1/conversations",
             lambda w, v: {"subject": "S", "from_unit_id": str(v["unit_a"]), "unit_ids": [str(v["unit_b"])]}),
             allow(201, *A_MEMBERS)),
        Case("GET /api/v1/conversations/{conversation_id}", "C ↔ A", at("GET", CONV, **conv),
             allow(200, *participants, otherwise=404)),
        Case("POST /api/v1/conversations/{conversation_id}/units", "C ↔ A adds unit B (fresh per role)",
             at("POST", CONV + "/units", lambda w, v: {"unit_ids": [str(v["unit_b"])]},
                conversation=fresh_conversation), allow(200, *participants, otherwise=404)),
        Case("GET /api/v1/conversations/{conversation_id}/messages", "C ↔ A", at("GET", CONV + "/messages", **conv),
             allow(200, *participants, otherwise=404)),
        Case("POST /api/v1/conversations/{conversation_id}/messages", "C ↔ A", at("POST", CONV + "/messages",
             lambda w, v: {"client_id": str(uuid.uuid4()), "body": "Hej"}, **conv),
             allow(201, *participants, otherwise=404)),
        Case("POST /api/v1/conversations/{conversation_id}/read", "C ↔ A",
             at("POST", CONV + "/read", {"up_to": 1}, **conv), allow(200, *participants, otherwise=404)),
        Case("POST /api/v1/conversations/{conversation_id}/typing", "C ↔ A",
             at("POST", CONV + "/typing", {"typing": True}, **conv), allow(204, *participants, otherwise=404)),
        Case("POST /api/v1/conversations/{conversation_id}/attachments", "C ↔ A",
             at("POST", CONV + "/attachments", Raw(b"%PDF-1.4\n%m\n", {"Content-Type": "application/pdf",
                "X-Filename": "b.pdf"}), **conv), allow(201, *participants, otherwise=404)),
        Case("GET /api/v1/conversations/{conversation_id}/attachments/{attachment_id}", "C ↔ A",
             at("GET", CONV + "/attachments/{att}", conversation=conversation_a, att=attachment_a),
             allow(200, *participants, otherwise=404)),
        Case("POST /api/v1/conversations/{conversation_id}/messages/{message_id}/acknowledge",
             "message from C to A (fresh per role)", at("POST", MSG + "/acknowledge",
             conversation=conversation_a, message=fresh_message("sender_c")),
             allow(200, *participants, otherwise=404)),
        Case("POST /api/v1/conversations/{conversation_id}/messages/{message_id}/claim",
             "message from C to A (fresh per role)", at("POST", MSG + "/claim", {},
             conversation=conversation_a, message=fresh_message("sender_c")),
             allow(200, *participants, otherwise=404)),
        Case("POST /api/v1/conversations/{conversation_id}/messages/{message_id}/return",
             "message from C to A (fresh per role)", at("POST", MSG + "/return", {},
             conversation=conversation_a, message=fresh_message("sender_c")),
             allow(200, *participants, otherwise=404)),
        Case("PATCH /api/v1/conversations/{conversation_id}/messages/{message_id}",
             "member_a's message (fresh per role)", at("PATCH", MSG, {"body": "Ändrad"},
             conversation=conversation_a, message=fresh_message("member_a")),
             SENDER_ONLY),
        Case("POST /api/v1/conversations/{conversation_id}/messages/{message_id}/retract",
             "member_a's message (fresh per role)", at("POST", MSG + "/retract",
             conversation=conversation_a, message=fresh_message("member_a")),
             SENDER_ONLY),
        Case("GET /api/v1/units/{unit_id}/inbox", "unit A", at("GET", "/api/v1/units/{unit_a}/inbox"),
             allow(200, *A_MEMBERS)),
        Case("GET /api/v1/units/{unit_id}/awaiting-acknowledgement", "unit A",
             at("GET", "/api/v1/units/{unit_a}/awaiting-acknowledgement"), allow(200, *A_MEMBERS)),
        Case("GET /api/v1/units/{unit_id}/messaging-settings", "unit A",
             at("GET", "/api/v1/units/{unit_a}/messaging-settings"), allow(200, *A_MEMBERS)),
        Case("PUT /api/v1/units/{unit_id}/messaging-settings", "unit A",
             at("PUT", "/api/v1/units/{unit_a}/messaging-settings", {"urgent_minutes": 30, "normal_minutes": 480}),
             allow(200, *ADMINS_OF_A)),
    ]

    def msg_event(name: str, sender: str, extra: dict[str, Any] | None = None) -> Setup:
        return event(name, lambda v: {"message_id": v["message"], **(extra or {})}, message=fresh_message(sender))

    ev = {k: v for k, v in allow(200, *participants, otherwise=404).items()}
    cases += [
        Case("event sync", "own feed", event("sync", {}), allow(200, *EVERYONE)),
        Case("event typing", "C ↔ A", event("typing", lambda v: {"conversation_id": v["c"], "typing": True},
             c=conversation_a), ev),
        Case("event message:send", "C ↔ A", event("message:send", lambda v: {"conversation_id": v["c"],
             "client_id": str(uuid.uuid4()), "body": "Hej"}, c=conversation_a), ev),
        Case("event message:read", "C ↔ A", event("message:read", lambda v: {"conversation_id": v["c"], "up_to": 1},
             c=conversation_a), ev),
        Case("event message:acknowledge", "message from C to A", msg_event("message:acknowledge", "sender_c"), ev),
        Case("event message:claim", "message from C to A", msg_event("message:claim", "sender_c"), ev),
        Case("event message:return", "message from C to A", msg_event("message:return", "sender_c"), ev),
        Case("event message:edit", "member_a's message", msg_event("message:edit", "member_a", {"body": "Ny"}),
             SENDER_ONLY),
        Case("event message:retract", "member_a's message", msg_event("message:retract", "member_a"),
             SENDER_ONLY),
    ]
    # ------------------------------------------------------------------------------------- video
    hosts = A_MEMBERS
    meeting = {"meeting": meeting_a}
    cases += [
        Case("GET /api/v1/meetings", "own list", fixed("GET", "/api/v1/meetings"), allow(200, *EVERYONE)),
        Case("POST /api/v1/meetings", "organised by unit A", at("POST", "/api/v1/meetings",
             lambda w, v: {"title": "M", "starts_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat(),
                           "organiser_unit_id": str(v["unit_a"])}), allow(201, *hosts)),
        Case("GET /api/v1/meetings/{meeting_id}", "meeting of A", at("GET", MEETING, **meeting),
             allow(200, *hosts, otherwise=404)),
        Case("POST /api/v1/meetings/{meeting_id}/end", "meeting of A (fresh per role)",
             at("POST", MEETING + "/end", meeting=fresh_meeting), allow(204, *hosts, otherwise=404)),
        Case("GET /api/v1/meetings/{meeting_id}/guest-links", "meeting of A",
             at("GET", MEETING + "/guest-links", **meeting), allow(200, *hosts, otherwise=404)),
        Case("POST /api/v1/meetings/{meeting_id}/guest-links", "meeting of A",
             at("POST", MEETING + "/guest-links", {}, **meeting), allow(201, *hosts, otherwise=404)),
        Case("DELETE /api/v1/meetings/{meeting_id}/guest-links/{link_id}", "link of A's meeting (fresh per role)",
             at("DELETE", MEETING + "/guest-links/{link}", meeting=meeting_a, link=fresh_link),
             allow(204, *hosts, otherwise=404)),
        Case("POST /api/v1/guest-links/redeem", "public: link + code (fresh per role)", redeem_request,
             allow(200, *ROLES)),
    ]

    def video(name: str, extra: dict[str, Any] | None = None, maker: Any = meeting_a) -> Setup:
        """Join (hosts and invitees enter, anyone else waits in the waiting room), then emit."""
        return event(name, lambda v: {"meeting_id": v["m"], "join_first": True, **(extra or {})}, m=maker)

    target = {"participant_id": "nobody"}
    cases += [
        Case("event video:join", "meeting of A: hosts enter, anyone else knocks (waiting room)",
             event("video:join", lambda v: {"meeting_id": v["m"]}, m=meeting_a), allow(200, *EVERYONE)),
        Case("event video:leave", "meeting of A", video("video:leave"), allow(200, *EVERYONE)),
        Case("event video:answer", "meeting of A, after video:join; authorisation outcome only",
             video("video:answer", {"sdp": "v=0 xxxxxxxx", "authz_only": True}), allow(200, *hosts)),
        Case("event video:candidate", "meeting of A, after video:join; authorisation outcome only",
             video("video:candidate", {"candidate": "", "authz_only": True}), allow(200, *hosts)),
        Case("event video:bandwidth", "meeting of A, after video:join",
             video("video:bandwidth", {"audio_only": True}), allow(200, *hosts)),
        Case("event video:mute", "meeting of A, after video:join", video("video:mute", {"audio": False}),
             allow(200, *hosts)),
        Case("event video:admit", "meeting of A, unknown participant: 404 once authorised",
             video("video:admit", target), allow(404, *hosts)),
        Case("event video:remove", "meeting of A, unknown participant: 404 once authorised",
             video("video:remove", target), allow(404, *hosts)),
        Case("event video:end", "meeting of A (fresh per role)", video("video:end", maker=fresh_meeting),
             allow(200, *hosts)),
    ]
    # ------------------------------------------------------------------------------------- discharge
    # A case of ward A with unit B involved: A's staff send ward notices, B's staff see it and call the SIP.
    involved = ("member_a", "unit_admin", "member_b")
    month = "?first_month=2026-01&last_month=2026-12"
    cases += [
        Case("POST /api/v1/discharge/cases", "ward A", at("POST", "/api/v1/discharge/cases", new_case),
             allow(201, *A_MEMBERS)),
        Case("GET /api/v1/discharge/cases", "unit A's list", at("GET", "/api/v1/discharge/cases?unit_id={unit_a}"),
             allow(200, *A_MEMBERS)),
        Case("GET /api/v1/discharge/cases/{case_id}", "ward A, unit B involved",
             at("GET", "/api/v1/discharge/cases/{case}", case=case_a), allow(200, *involved, otherwise=404)),
        Case("POST /api/v1/discharge/cases/{case_id}/milestones", "ward notice: only ward A sends",
             at("POST", "/api/v1/discharge/cases/{case}/milestones", {"kind": "planning_started"}, case=case_a),
             {**allow(201, *A_MEMBERS, otherwise=404), "member_b": 403}),
        Case("POST /api/v1/discharge/cases/{case_id}/sip-meeting", "any unit of the case",
             at("POST", "/api/v1/discharge/cases/{case}/sip-meeting",
                lambda w, v: {"starts_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()}, case=case_a),
             allow(201, *involved, otherwise=404)),
        Case("GET /api/v1/discharge/rules/{organisation_id}", "", at("GET", "/api/v1/discharge/rules/{org}",
             org=org_a), allow(200, *EVERYONE)),
        Case("PUT /api/v1/discharge/rules/{organisation_id}", "", at("PUT", "/api/v1/discharge/rules/{org}",
             {"admission_notice_hours": 24, "sip_call_days": 3, "payment_days": 3, "payment_day_kind": "calendar",
              "escalation_minutes": 60}, org=org_a), allow(200, "directory_admin")),
        Case("GET /api/v1/discharge/statistics", "no personal data",
             fixed("GET", "/api/v1/discharge/statistics" + month), allow(200, *EVERYONE)),
        Case("GET /api/v1/discharge/statistics.csv", "no personal data",
             fixed("GET", "/api/v1/discharge/statistics.csv" + month), allow(200, *EVERYONE)),
    ]
    # ------------------------------------------------------------------------------------- deviations
    report = "/api/v1/deviations/{report}"
    cases += [
        Case("POST /api/v1/deviations", "", fixed("POST", "/api/v1/deviations", deviation_body()),
             allow(201, *EVERYONE)),
        Case("GET /api/v1/deviations", "follow-up: all, others: their own", fixed("GET", "/api/v1/deviations"),
             allow(200, *EVERYONE)),
        Case("GET /api/v1/deviations/{deviation_id}", "member_a's report", at("GET", report, report=deviation_a),
             allow(200, "member_a", "followup", otherwise=404)),
        Case("PATCH /api/v1/deviations/{deviation_id}", "member_a's report",
             at("PATCH", report, {"status": "mottagen"}, report=deviation_a),
             {**allow(200, "followup", otherwise=404), "member_a": 403}),
        Case("GET /api/v1/deviations/statistics", "", fixed("GET", "/api/v1/deviations/statistics" + month),
             allow(200, "followup")),
        Case("GET /api/v1/deviations/statistics.csv", "", fixed("GET", "/api/v1/deviations/statistics.csv" + month),
             allow(200, "followup")),
    ]
    # ------------------------------------------------------------------------------------- audit
    cases += [
        Case("POST /api/v1/audit/access-log", "by case", fixed("POST", "/api/v1/audit/access-log",
             {"case_ref": "LUS-1"}), allow(200, "auditor")),
        Case("POST /api/v1/audit/access-log.csv", "by case", fixed("POST", "/api/v1/audit/access-log.csv",
             {"case_ref": "LUS-1"}), allow(200, "auditor")),
    ]
    return cases


DOMAIN_CASES = rows()
