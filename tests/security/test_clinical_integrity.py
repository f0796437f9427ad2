"""A message that a recipient has read, acknowledged or claimed cannot be edited or retracted (issue 15,
item 1): "kvitterat av" must stay true of the text that was acknowledged. A correction is a new message
replying to the old one; the old text stays in the record."""

from __future__ import annotations

import uuid

import pytest

from tests.messaging.conftest import unit_conversation


@pytest.mark.parametrize("response", ["read", "acknowledge", "claim"])
async def test_no_edit_or_retract_after_a_recipient_responded(client, world, response):
    conversation = await unit_conversation(client, world)
    base = f"/api/v1/conversations/{conversation['id']}"
    sent = await client.post(
        f"{base}/messages",
        json={"client_id": str(uuid.uuid4()), "body": "Furosemid 40 mg", "ack_required": True},
        headers=world.anna.headers,
    )
    message = await sent.json()
    if response == "read":
        answer = await client.post(f"{base}/read", json={"up_to": message["seq"]}, headers=world.bertil.headers)
    else:
        answer = await client.post(f"{base}/messages/{message['id']}/{response}", json={}, headers=world.bertil.headers)
    assert answer.status == 200

    edit = await client.patch(
        f"{base}/messages/{message['id']}", json={"body": "Furosemid 80 mg"}, headers=world.anna.headers
    )
    assert edit.status == 409 and (await edit.json())["code"] == "recipient_responded"
    retract = await client.post(f"{base}/messages/{message['id']}/retract", headers=world.anna.headers)
    assert retract.status == 409 and (await retract.json())["code"] == "recipient_responded"

    correction = await client.post(
        f"{base}/messages",
        json={"client_id": str(uuid.uuid4()), "body": "Rättelse: Furosemid 80 mg", "reply_to": message["id"]},
        headers=world.anna.headers,
    )
    assert correction.status == 201 and (await correction.json())["reply_to"] == message["id"]
    listed = await (await client.get(f"{base}/messages", headers=world.bertil.headers)).json()
    bodies = {item["id"]: item["body"] for item in listed["items"]}
    assert bodies[message["id"]] == "Furosemid 40 mg"  # what was acknowledged stays as it was
