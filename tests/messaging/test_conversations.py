"""Conversations and messages as users see them: send, resend, sync, read, acknowledge, claim, return, edit."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import fields

from sqlalchemy import select

from server.core.models import AuditEvent
from server.messaging.events import MESSAGING
from server.messaging.models import Message, Receipt
from server.messaging.service import NewMessage, NewReceipt
from tests.messaging.conftest import unit_conversation


async def test_send_is_acked_after_commit_and_resend_returns_same_message(client, ctx, world, connect):
    conversation = await unit_conversation(client, world)
    anna = await connect(world.anna)
    bertil = await connect(world.bertil)
    client_id = str(uuid.uuid4())
    payload = {"conversation_id": conversation["id"], "client_id": client_id, "body": "Patienten är utskrivningsklar."}
    first = await anna.call("message:send", payload)
    assert first["ok"] is True and first["duplicate"] is False
    message = first["message"]
    assert message["body"] == "Patienten är utskrivningsklar."
    received = await bertil.wait_for("message:new", lambda m: m["id"] == message["id"])
    assert received["sender"]["id"] == str(world.anna.user_id)
    again = await anna.call("message:send", payload)
    assert again["ok"] is True and again["duplicate"] is True
    assert again["message"]["id"] == message["id"]
    # stored once, delivered live once
    listed = await client.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=world.bertil.headers)
    assert [m["id"] for m in (await listed.json())["items"]] == [message["id"]]
    await anna.call("sync", {"since": 0})
    assert [m["id"] for m in bertil.events["message:new"]] == [message["id"]]


async def test_new_message_as_sent_live_equals_the_stored_message(client, world, connect):
    """The send path renders new messages without reading them back; what it sends must be what is stored."""
    conversation = await unit_conversation(client, world)
    anna = await connect(world.anna)
    bertil = await connect(world.bertil)
    first = await anna.send(conversation["id"], "Hej")
    urgent = await anna.send(
        conversation["id"],
        "Läkemedelslistan saknas – ring avdelningen.",
        priority="urgent",
        reply_to=first["message"]["id"],
    )
    assert urgent["ok"] is True, urgent
    live = await bertil.wait_for("message:new", lambda m: m["id"] == urgent["message"]["id"])
    listed = await client.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=world.anna.headers)
    stored = {m["id"]: m for m in (await listed.json())["items"]}
    for sent in (first["message"], urgent["message"], live):
        assert sent == stored[sent["id"]]
    assert urgent["message"]["state"] == "open" and urgent["message"]["recipients"][0]["needs_ack"] is True


async def test_sending_connection_gets_the_message_in_its_ack_and_other_devices_live(client, world, connect):
    conversation = await unit_conversation(client, world)
    anna_desk = await connect(world.anna)
    anna_phone = await connect(world.anna)
    bertil = await connect(world.bertil)
    sent = await anna_desk.send(conversation["id"], "Hej")
    message_id = sent["message"]["id"]
    await bertil.wait_for("message:new", lambda m: m["id"] == message_id)
    await anna_phone.wait_for("message:new", lambda m: m["id"] == message_id)
    await asyncio.sleep(0.3)  # the same emit reached the other two; give a stray copy time to arrive
    assert anna_desk.events["message:new"] == []


def test_new_rows_have_exactly_the_table_columns():
    """NewMessage/NewReceipt are inserted as rows: a column added to the table must be added to them too."""
    for row_type, model in ((NewMessage, Message), (NewReceipt, Receipt)):
        assert {f.name for f in fields(row_type)} == {c.key for c in model.__table__.columns}


async def test_sync_returns_everything_after_cursor_in_pages(client, world, connect):
    conversation = await unit_conversation(client, world)
    anna = await connect(world.anna)
    sent = []
    for number in range(7):
        ack = await anna.call(
            "message:send",
            {"conversation_id": conversation["id"], "client_id": str(uuid.uuid4()), "body": f"meddelande {number}"},
        )
        sent.append(ack["message"]["id"])
    bertil = await connect(world.bertil)
    seen, cursor = [], 0
    while True:
        page = await bertil.call("sync", {"since": cursor, "limit": 3})
        assert page["ok"] is True
        seen += [m["id"] for m in page["messages"]]
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    assert seen == sent
    nothing = await bertil.call("sync", {"since": cursor})
    assert nothing["messages"] == [] and nothing["cursor"] == cursor
    # delivery was recorded when Bertil's client synced; Anna sees it per recipient unit
    listed = await client.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=world.anna.headers)
    recipients = (await listed.json())["items"][0]["recipients"]
    assert recipients[0]["unit_id"] == str(world.home_care) and recipients[0]["delivered_at"]


async def test_read_acknowledge_claim_and_receipts(client, world, connect):
    conversation = await unit_conversation(client, world)
    anna = await connect(world.anna)
    bertil = await connect(world.bertil)
    britta = await connect(world.britta)
    sent = await anna.call(
        "message:send",
        {
            "conversation_id": conversation["id"],
            "client_id": str(uuid.uuid4()),
            "body": "Behöver hemtjänst från fredag.",
            "ack_required": True,
        },
    )
    message = sent["message"]
    assert message["state"] == "open"
    read = await bertil.call("message:read", {"conversation_id": conversation["id"], "up_to": message["seq"]})
    assert read == {"ok": True, "marked": 1}
    to_anna = await anna.wait_for("receipt", lambda r: r["kind"] == "read")
    assert to_anna["unit_id"] == str(world.home_care) and to_anna["by"] is None  # other side: unit and time only
    to_britta = await britta.wait_for("receipt", lambda r: r["kind"] == "read")
    assert to_britta["by"]["id"] == str(world.bertil.user_id)  # colleagues see who read it

    claimed = await bertil.call("message:claim", {"message_id": message["id"]})
    assert claimed["ok"] is True
    seen_by_colleague = await britta.wait_for("message:updated", lambda m: m["recipients"][0]["claimed_by"])
    assert seen_by_colleague["recipients"][0]["claimed_by"]["name"] == "Bertil"
    taken = await britta.call("message:claim", {"message_id": message["id"]})
    assert taken["ok"] is False and taken["error"]["code"] == "already_claimed"

    not_mine = await anna.call("message:acknowledge", {"message_id": message["id"]})
    assert not_mine["ok"] is False and not_mine["error"]["code"] == "forbidden"
    acked = await britta.call("message:acknowledge", {"message_id": message["id"]})
    assert acked["ok"] is True
    assert acked["message"]["state"] == "acknowledged"
    receipt = await anna.wait_for("receipt", lambda r: r["kind"] == "acknowledged")
    assert receipt["by"]["name"] == "Britta" and receipt["at"]


async def test_misdirected_message_returns_to_sender(client, ctx, world, connect):
    conversation = await unit_conversation(client, world)
    anna = await connect(world.anna)
    sent = await anna.call(
        "message:send",
        {
            "conversation_id": conversation["id"],
            "client_id": str(uuid.uuid4()),
            "body": "Fel mottagare",
            "priority": "urgent",
        },
    )
    bertil = await connect(world.bertil)
    returned = await bertil.call("message:return", {"message_id": sent["message"]["id"], "reason": "wrong_unit"})
    assert returned["ok"] is True and returned["message"]["state"] == "returned"
    update = await anna.wait_for("message:updated", lambda m: m["state"] == "returned")
    assert update["recipients"][0]["returned_by"]["name"] == "Bertil"
    async with ctx.db.transaction() as session:
        actions = list((await session.execute(select(AuditEvent.action))).scalars())
    assert "message.return.wrong_unit" in actions
    inbox = await client.get(f"/api/v1/units/{world.home_care}/inbox", headers=world.bertil.headers)
    assert (await inbox.json())["unacknowledged"] == 0


async def test_edit_and_retract_keep_the_original_for_the_record(client, ctx, world, connect):
    conversation = await unit_conversation(client, world)
    anna = await connect(world.anna)
    bertil = await connect(world.bertil)
    sent = (
        await anna.call(
            "message:send",
            {"conversation_id": conversation["id"], "client_id": str(uuid.uuid4()), "body": "Hämtas kl 14"},
        )
    )["message"]
    edited = await anna.call("message:edit", {"message_id": sent["id"], "body": "Hämtas kl 15"})
    assert edited["ok"] is True
    assert edited["message"]["body"] == "Hämtas kl 15" and edited["message"]["edited_at"]
    update = await bertil.wait_for("message:updated", lambda m: m["version"] == 2)
    assert update["body"] == "Hämtas kl 15"
    forbidden = await bertil.call("message:edit", {"message_id": sent["id"], "body": "x"})
    assert forbidden["ok"] is False
    retracted = await anna.call("message:retract", {"message_id": sent["id"]})
    assert retracted["message"]["body"] is None and retracted["message"]["retracted_at"]
    history = await ctx.need(MESSAGING).revisions(await _principal(ctx, world.anna.token), uuid.UUID(sent["id"]))
    assert [(version, action, text) for version, action, _at, text in history] == [
        (1, "edit", "Hämtas kl 14"),
        (2, "retract", "Hämtas kl 15"),
    ]
    again = await anna.call("message:edit", {"message_id": sent["id"], "body": "igen"})
    assert again["error"]["code"] == "retracted"


async def test_edit_window_closes(client, ctx, world, connect):
    from datetime import timedelta

    conversation = await unit_conversation(client, world)
    anna = await connect(world.anna)
    sent = (
        await anna.call(
            "message:send", {"conversation_id": conversation["id"], "client_id": str(uuid.uuid4()), "body": "text"}
        )
    )["message"]
    real = ctx.clock
    ctx.clock = lambda: real() + timedelta(minutes=16)
    late = await anna.call("message:edit", {"message_id": sent["id"], "body": "ändrad"})
    assert late["ok"] is False and late["error"]["code"] == "edit_window_closed"


async def _principal(ctx, token):
    from server.identity.tokens import authenticate_token

    async with ctx.db.transaction() as session:
        return await authenticate_token(session, token)


async def test_personal_identity_number_is_refused_in_subject_and_case_ref(client, world):
    for field, value in (
        ("subject", "Utskrivning 19121212-1212"),
        ("case_ref", "191212121212"),
        ("subject", "Patient 121212-1212"),
    ):
        body = {
            "subject": "Utskrivning",
            "from_unit_id": str(world.ward),
            "unit_ids": [str(world.home_care)],
            field: value,
        }
        response = await client.post("/api/v1/conversations", json=body, headers=world.anna.headers)
        assert response.status == 422
        problem = await response.json()
        assert problem["code"] == "personal_number_not_allowed"
        assert "1212" not in problem["detail"]
    ok = await client.post(
        "/api/v1/conversations",
        json={
            "subject": "Vårdplanering rum 1212",
            "case_ref": "LUS-1234567",
            "from_unit_id": str(world.ward),
            "unit_ids": [str(world.home_care)],
        },
        headers=world.anna.headers,
    )
    assert ok.status == 201


async def test_body_length_is_enforced(client, world, connect):
    conversation = await unit_conversation(client, world)
    anna = await connect(world.anna)
    ack = await anna.call(
        "message:send", {"conversation_id": conversation["id"], "client_id": str(uuid.uuid4()), "body": "x" * 8001}
    )
    assert ack["ok"] is False and ack["error"]["code"] == "body_too_long"


async def test_direct_conversation_between_persons(client, world, connect):
    response = await client.post(
        "/api/v1/conversations",
        json={"subject": "Fråga", "user_ids": [str(world.cecilia.user_id)]},
        headers=world.anna.headers,
    )
    assert response.status == 201
    conversation = await response.json()
    assert conversation["kind"] == "direct"
    cecilia = await connect(world.cecilia)
    anna = await connect(world.anna)
    sent = await anna.call(
        "message:send",
        {"conversation_id": conversation["id"], "client_id": str(uuid.uuid4()), "body": "Hej!", "ack_required": True},
    )
    await cecilia.wait_for("message:new", lambda m: m["id"] == sent["message"]["id"])
    acked = await cecilia.call("message:acknowledge", {"message_id": sent["message"]["id"]})
    assert acked["ok"] is True and acked["message"]["state"] == "acknowledged"


async def test_system_notice_reaches_participants(client, ctx, world, connect):
    conversation = await unit_conversation(client, world)
    bertil = await connect(world.bertil)
    service = ctx.need(MESSAGING)
    async with ctx.db.transaction() as session:
        message_id = await service.post_system_notice(
            session, uuid.UUID(conversation["id"]), "meeting_invitation", {"meeting_id": "m-1", "starts_at": "10:00"}
        )
    notice = await bertil.wait_for("message:new", lambda m: m["id"] == str(message_id))
    assert notice["kind"] == "system" and notice["system"] == {
        "kind": "meeting_invitation",
        "data": {"meeting_id": "m-1", "starts_at": "10:00"},
    }


async def test_a_participant_adds_a_unit_which_sees_history_and_live_events_at_once(client, ctx, world, connect):
    """Issue 16 item 3: primary care joins a ward ↔ home care conversation later."""
    conversation = await unit_conversation(client, world)
    cid = conversation["id"]
    anna = await connect(world.anna)
    await connect(world.bertil)
    cecilia = await connect(world.cecilia)
    before = await anna.send(cid, "Hej hemtjänsten")
    assert before["ok"] is True
    url = f"/api/v1/conversations/{cid}/units"
    body = {"unit_ids": [str(world.other)]}
    # Not taking part: 404 like any conversation one cannot see (and no unit added).
    denied = await client.post(url, json=body, headers=world.cecilia.headers)
    assert denied.status == 404
    response = await client.post(url, json=body, headers=world.bertil.headers)
    assert response.status == 200, await response.text()
    units = {p["unit_id"] for p in (await response.json())["participants"]}
    assert units == {str(world.ward), str(world.home_care), str(world.other)}
    # Everyone, the new unit included, gets the system notice live.
    for listener in (anna, cecilia):
        notice = await listener.wait_for("message:new", lambda m: m.get("kind") == "system")
        assert notice["system"]["kind"] == "unit_added"
        assert notice["system"]["data"]["unit_names"] == ["Vårdcentral Norr"]
        assert notice["sender"]["id"] == str(world.bertil.user_id)
    # The new unit reads the history and writes; the others get its message live.
    listed = await client.get(f"/api/v1/conversations/{cid}/messages", headers=world.cecilia.headers)
    assert before["message"]["id"] in [m["id"] for m in (await listed.json())["items"]]
    reply = await cecilia.send(cid, "Vårdcentralen här")
    assert reply["ok"] is True, reply
    await anna.wait_for("message:new", lambda m: m["id"] == reply["message"]["id"])
    # And new messages from the others reach it live, with a receipt for its unit (its inbox counts).
    later = await anna.send(cid, "Välkomna")
    live = await cecilia.wait_for("message:new", lambda m: m["id"] == later["message"]["id"])
    assert str(world.other) in {r["unit_id"] for r in live["recipients"]}
    inbox = await client.get(f"/api/v1/units/{world.other}/inbox", headers=world.cecilia.headers)
    assert cid in {c["conversation_id"] for c in (await inbox.json())["conversations"]}
    # Adding it again is a no-op (no second notice); unknown units and conversations between persons are refused.
    again = await client.post(url, json=body, headers=world.anna.headers)
    assert again.status == 200
    unknown = await client.post(url, json={"unit_ids": [str(uuid.uuid4())]}, headers=world.anna.headers)
    assert unknown.status == 422 and (await unknown.json())["code"] == "unknown_participant"
    direct = await client.post(
        "/api/v1/conversations", json={"subject": "Fråga", "user_ids": [str(world.bertil.user_id)]},
        headers=world.anna.headers,
    )  # fmt: skip
    refused = await client.post(
        f"/api/v1/conversations/{(await direct.json())['id']}/units", json=body, headers=world.anna.headers
    )
    assert refused.status == 403 and (await refused.json())["code"] == "forbidden"
    async with ctx.db.transaction() as session:
        rows = (await session.scalars(select(AuditEvent).where(AuditEvent.action == "conversation.add_unit"))).all()
        notices = (await session.scalars(select(Message).where(Message.system_kind == "unit_added"))).all()
    assert [(r.object_id, r.details) for r in rows] == [(cid, {"added_unit_id": str(world.other)})]
    assert rows[0].actor_unit_id == world.home_care
    assert len(notices) == 1
