"""The REST API does what the socket.io events do, with the same semantics (for integrations)."""

from __future__ import annotations

import uuid

from openapi_spec_validator import validate

from tests.messaging.conftest import unit_conversation


async def test_rest_parity_with_events(client, world, connect):
    conversation = await unit_conversation(client, world)
    base = f"/api/v1/conversations/{conversation['id']}"
    bertil_socket = await connect(world.bertil)
    anna_socket = await connect(world.anna)

    client_id = str(uuid.uuid4())
    body = {"client_id": client_id, "body": "Via REST", "ack_required": True}
    first = await client.post(f"{base}/messages", json=body, headers=world.anna.headers)
    assert first.status == 201
    message = await first.json()
    again = await client.post(f"{base}/messages", json=body, headers=world.anna.headers)
    assert again.status == 200 and (await again.json())["id"] == message["id"]
    live = await bertil_socket.wait_for("message:new", lambda m: m["id"] == message["id"])
    assert live["body"] == "Via REST" and len(bertil_socket.events["message:new"]) == 1

    # sync over REST = sync over socket.io
    rest_sync = await (await client.get("/api/v1/conversations/sync?since=0", headers=world.bertil.headers)).json()
    socket_sync = await bertil_socket.call("sync", {"since": 0})
    assert [m["id"] for m in rest_sync["messages"]] == [m["id"] for m in socket_sync["messages"]] == [message["id"]]
    assert rest_sync["cursor"] == socket_sync["cursor"]

    read = await client.post(f"{base}/read", json={"up_to": message["seq"]}, headers=world.bertil.headers)
    assert read.status == 200 and (await read.json()) == {"marked": 1}
    await anna_socket.wait_for("receipt", lambda r: r["kind"] == "read")

    typing = await client.post(f"{base}/typing", json={"typing": True}, headers=world.bertil.headers)
    assert typing.status == 204
    await anna_socket.wait_for("typing", lambda t: t["user"]["id"] == str(world.bertil.user_id))

    claim = await client.post(f"{base}/messages/{message['id']}/claim", json={}, headers=world.bertil.headers)
    assert claim.status == 200 and (await claim.json())["recipients"][0]["claimed_by"]["name"] == "Bertil"
    conflict = await client.post(f"{base}/messages/{message['id']}/claim", json={}, headers=world.britta.headers)
    assert conflict.status == 409 and (await conflict.json())["code"] == "already_claimed"

    ack = await client.post(f"{base}/messages/{message['id']}/acknowledge", headers=world.bertil.headers)
    assert ack.status == 200 and (await ack.json())["state"] == "acknowledged"
    await anna_socket.wait_for("receipt", lambda r: r["kind"] == "acknowledged")

    # Acknowledged: the text can no longer change (a correction is a new message replying to it).
    refused = await client.patch(f"{base}/messages/{message['id']}", json={"body": "X"}, headers=world.anna.headers)
    assert refused.status == 409 and (await refused.json())["code"] == "recipient_responded"
    draft = await (
        await client.post(
            f"{base}/messages", json={"client_id": str(uuid.uuid4()), "body": "Utkast"}, headers=world.anna.headers
        )
    ).json()
    edit = await client.patch(f"{base}/messages/{draft['id']}", json={"body": "Ändrad"}, headers=world.anna.headers)
    assert edit.status == 200 and (await edit.json())["body"] == "Ändrad"
    await bertil_socket.wait_for("message:updated", lambda m: m["body"] == "Ändrad")
    retract = await client.post(f"{base}/messages/{draft['id']}/retract", headers=world.anna.headers)
    assert retract.status == 200 and (await retract.json())["body"] is None

    second = await (
        await client.post(
            f"{base}/messages", json={"client_id": str(uuid.uuid4()), "body": "Fel"}, headers=world.anna.headers
        )
    ).json()
    returned = await client.post(
        f"{base}/messages/{second['id']}/return", json={"reason": "wrong_unit"}, headers=world.britta.headers
    )
    assert returned.status == 200 and (await returned.json())["state"] == "returned"

    listed = await (await client.get(f"{base}/messages", headers=world.bertil.headers)).json()
    assert [m["id"] for m in listed["items"]] == [message["id"], draft["id"], second["id"]]
    conversations = await (await client.get("/api/v1/conversations", headers=world.bertil.headers)).json()
    assert [c["id"] for c in conversations["items"]] == [conversation["id"]]
    one = await (await client.get(base, headers=world.bertil.headers)).json()
    assert {p["unit_name"] for p in one["participants"]} == {"Avdelning 12", "Hemtjänst Solna"}


async def test_rest_errors_are_problems(client, world):
    conversation = await unit_conversation(client, world)
    other = await unit_conversation(client, world)
    base = f"/api/v1/conversations/{conversation['id']}"
    sent = await (
        await client.post(
            f"{base}/messages",
            json={"client_id": str(uuid.uuid4()), "body": "x", "ack_required": True},
            headers=world.anna.headers,
        )
    ).json()
    wrong_path = await client.post(
        f"/api/v1/conversations/{other['id']}/messages/{sent['id']}/acknowledge", headers=world.bertil.headers
    )
    assert wrong_path.status == 404  # the message is not in that conversation; nothing was acknowledged
    still_open = await (await client.get(f"{base}/messages", headers=world.bertil.headers)).json()
    assert still_open["items"][0]["state"] == "open"
    bad = await client.post(f"{base}/messages", json={"client_id": "nope", "body": ""}, headers=world.anna.headers)
    assert bad.status == 422 and (await bad.json())["code"] == "validation_error"
    junk = await client.get("/api/v1/conversations/not-a-uuid", headers=world.anna.headers)
    assert junk.status == 404
    reuse = await client.post(
        f"/api/v1/conversations/{other['id']}/messages",
        json={"client_id": sent["client_id"], "body": "x"},
        headers=world.anna.headers,
    )
    assert reuse.status == 409 and (await reuse.json())["code"] == "client_id_reused"


async def test_openapi_documents_messaging(client):
    spec = await (await client.get("/api/openapi.json")).json()
    validate(spec)
    paths = spec["paths"]
    for path in (
        "/api/v1/conversations",
        "/api/v1/conversations/sync",
        "/api/v1/conversations/{conversation_id}/messages",
        "/api/v1/conversations/{conversation_id}/attachments",
        "/api/v1/units/{unit_id}/inbox",
    ):
        assert path in paths
    send = paths["/api/v1/conversations/{conversation_id}/messages"]["post"]
    assert send["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("MessageSendBody")


async def test_absurd_cursor_is_a_validation_error(client, actors):
    _, token = await actors.user("cursor")
    response = await client.get(
        "/api/v1/conversations/sync?since=6271963130383315238912", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 422
    assert (await response.json())["code"] == "validation_error"


async def test_resend_of_a_message_with_an_attachment_returns_the_stored_message(client, world, connect):
    """The ack was lost: the client sends the same client_id with the same (already linked) file again."""
    conversation = await unit_conversation(client, world)
    uploaded = await client.post(
        f"/api/v1/conversations/{conversation['id']}/attachments",
        data=b"%PDF-1.7\nepikris\n%%EOF\n",
        headers={**world.anna.headers, "Content-Type": "application/pdf", "X-Filename": "epikris.pdf"},
    )
    attachment = await uploaded.json()
    anna = await connect(world.anna)
    payload = {
        "conversation_id": conversation["id"],
        "client_id": str(uuid.uuid4()),
        "body": "Epikris bifogad",
        "attachments": [attachment["id"]],
    }
    first = await anna.call("message:send", payload)
    again = await anna.call("message:send", payload)
    assert first["ok"] is True and again["ok"] is True, again
    assert again["message"]["id"] == first["message"]["id"] and again["duplicate"] is True
    listed = await (
        await client.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=world.anna.headers)
    ).json()
    assert [m["body"] for m in listed["items"] if m["kind"] == "text"] == ["Epikris bifogad"]


async def test_inbox_preview_is_the_last_message_people_wrote_and_each_preview_is_logged(client, ctx, world):
    from sqlalchemy import select

    from server.core.models import AuditEvent

    conversation = await unit_conversation(client, world)
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    for body in ("Första", "Patienten   behöver\nrullator " + "x" * 200):
        sent = await client.post(path, headers=world.anna.headers, json={"client_id": str(uuid.uuid4()), "body": body})
        assert sent.status == 201
    listed = f"/api/v1/conversations?unit_id={world.home_care}"
    plain = await (await client.get(listed, headers=world.bertil.headers)).json()
    assert plain["items"][0]["last_message"] is None  # no preview unless asked: nothing decrypted, nothing logged

    async def preview_rows() -> list[AuditEvent]:
        async with ctx.db.transaction() as session:
            query = select(AuditEvent).where(
                AuditEvent.actor_user_id == world.bertil.user_id, AuditEvent.action == "conversation.preview"
            )
            return list((await session.execute(query)).scalars())

    assert await preview_rows() == []
    items = (await (await client.get(listed + "&preview=true", headers=world.bertil.headers)).json())["items"]
    last = items[0]["last_message"]
    assert last["text"] == "Patienten behöver rullator " + "x" * 93 and len(last["text"]) == 120
    assert last["sender_name"] and last["retracted"] is False and last["attachments"] == 0
    rows = await preview_rows()
    assert [(row.object_id, row.case_ref) for row in rows] == [(conversation["id"], "LUS-2026-0042")]

    retracted = await client.post(f"{path}/{last['id']}/retract", headers=world.anna.headers)
    assert retracted.status == 200, await retracted.text()
    items = (await (await client.get(listed + "&preview=true", headers=world.bertil.headers)).json())["items"]
    assert items[0]["last_message"]["retracted"] is True and items[0]["last_message"]["text"] is None
