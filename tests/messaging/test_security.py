"""At rest and access: no plaintext in the database, key rotation, per-object authorisation, audit, uploads."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import uuid

from sqlalchemy import select

from server.core.app_keys import ENVELOPE
from server.core.envelope import Envelope, KeyRing, associated_data, rotate_keys
from server.core.models import AuditEvent
from server.messaging.events import MESSAGING
from server.messaging.models import Message
from tests.messaging.conftest import unit_conversation

SECRET_TEXT = "Hemligt-anteckning-om-patienten-XYZZY"
PDF = b"%PDF-1.7\n" + b"HEMLIG-BILAGA-" * 200_000 + b"\n%%EOF\n"  # ~2.8 MiB: three encrypted chunks


async def upload(client, conversation_id, person, data, content_type="application/pdf", name="epikris.pdf"):
    return await client.post(
        f"/api/v1/conversations/{conversation_id}/attachments",
        data=data,
        headers={**person.headers, "Content-Type": content_type, "X-Filename": name},
    )


async def test_database_holds_no_plaintext_and_key_rotation_keeps_everything_readable(client, ctx, world, connect):
    conversation = await unit_conversation(client, world)
    uploaded = await upload(client, conversation["id"], world.anna, PDF)
    assert uploaded.status == 201, await uploaded.text()
    attachment = await uploaded.json()
    assert attachment["size"] == len(PDF) and attachment["filename"] == "epikris.pdf"
    anna = await connect(world.anna)
    sent = await anna.call(
        "message:send",
        {
            "conversation_id": conversation["id"],
            "client_id": str(uuid.uuid4()),
            "body": SECRET_TEXT,
            "attachments": [attachment["id"]],
        },
    )
    assert sent["ok"] is True, sent
    edited = await anna.call("message:edit", {"message_id": sent["message"]["id"], "body": SECRET_TEXT + "-v2"})
    assert edited["ok"] is True

    key_file = ctx.settings.effective_key_file
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    db_files = [p for p in ctx.settings.data_dir.iterdir() if p.name.startswith("brygga.db")]
    raw = b"".join(p.read_bytes() for p in db_files)
    assert b"XYZZY" not in raw and SECRET_TEXT.encode("utf-16-le") not in raw
    assert b"HEMLIG-BILAGA" not in raw and b"epikris" not in raw

    # a ciphertext moved to another row does not decrypt (associated data binds it)
    envelope: Envelope = ctx.need(ENVELOPE)
    async with ctx.db.transaction() as session:
        message = (await session.execute(select(Message))).scalars().first()
    from server.core.envelope import Sealed

    try:
        envelope.open(
            Sealed(message.body_kek, message.body_enc),
            associated_data("messages", uuid.uuid4(), message.conversation_id, 2),
        )
        raise AssertionError("ciphertext opened under another row id")
    except Exception as exc:  # cryptography.exceptions.InvalidTag
        assert type(exc).__name__ == "InvalidTag"

    # rotation while the server keeps serving
    old_kek = envelope.keyring.active_id
    rotation = asyncio.create_task(
        rotate_keys(
            KeyRing(key_file) and Envelope(KeyRing(key_file)),
            [ctx.need(MESSAGING).rewrap_batch],
            batch_size=1,
            grace_seconds=0.3,
        )
    )
    during = []
    while not rotation.done():
        ack = await anna.call(
            "message:send",
            {
                "conversation_id": conversation["id"],
                "client_id": str(uuid.uuid4()),
                "body": f"under rotation {len(during)}",
            },
        )
        assert ack["ok"] is True
        during.append(ack["message"]["id"])
        await asyncio.sleep(0.05)
    report = rotation.result()
    assert report.retired == [old_kek] and report.rewrapped >= 3
    assert KeyRing(key_file).retired_ids() == [old_kek]  # kept, wrapped: older backups stay readable

    listed = await client.get(
        f"/api/v1/conversations/{conversation['id']}/messages?limit=200", headers=world.bertil.headers
    )
    bodies = [m["body"] for m in (await listed.json())["items"]]
    assert bodies[0] == SECRET_TEXT + "-v2" and len(bodies) == 1 + len(during)
    history = await ctx.need(MESSAGING).revisions(
        await _principal(ctx, world.anna), uuid.UUID(sent["message"]["id"])
    )
    assert history[0][3] == SECRET_TEXT
    download = await client.get(
        f"/api/v1/conversations/{conversation['id']}/attachments/{attachment['id']}", headers=world.bertil.headers
    )
    assert download.status == 200 and await download.read() == PDF
    assert download.headers["Content-Type"] == "application/pdf"
    assert download.headers["Content-Disposition"].startswith("attachment;")


async def _principal(ctx, person):
    from server.identity.tokens import authenticate_token

    async with ctx.db.transaction() as session:
        return await authenticate_token(session, person.token)


async def test_keys_rotate_cli(settings, migrated):
    env = {**os.environ, "BRYGGA_DATA_DIR": str(settings.data_dir)}
    first = KeyRing(settings.effective_key_file, create=True).active_id
    result = subprocess.run(
        [sys.executable, "-m", "server", "keys", "rotate", "--grace", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Active key is now" in result.stdout and first in result.stdout
    keyring = KeyRing(settings.effective_key_file)
    assert keyring.active_id != first and keyring.retired_ids() == [first]


async def test_outsider_gets_404_and_the_denial_is_audited(client, ctx, world, connect):
    conversation = await unit_conversation(client, world)
    anna = await connect(world.anna)
    sent = await anna.call(
        "message:send",
        {
            "conversation_id": conversation["id"],
            "client_id": str(uuid.uuid4()),
            "body": "Bara för mottagaren",
            "ack_required": True,
        },
    )
    cecilia = await connect(world.cecilia)
    for path in (f"/api/v1/conversations/{conversation['id']}", f"/api/v1/conversations/{conversation['id']}/messages"):
        response = await client.get(path, headers=world.cecilia.headers)
        assert response.status == 404
    denied_socket = await cecilia.call(
        "message:send", {"conversation_id": conversation["id"], "client_id": str(uuid.uuid4()), "body": "intrång"}
    )
    assert denied_socket["ok"] is False and denied_socket["error"]["code"] == "not_found"
    denied_ack = await cecilia.call("message:acknowledge", {"message_id": sent["message"]["id"]})
    assert denied_ack["ok"] is False
    assert (await cecilia.call("sync", {"since": 0}))["messages"] == []
    assert cecilia.events["message:new"] == []
    inbox = await client.get(f"/api/v1/units/{world.home_care}/inbox", headers=world.cecilia.headers)
    assert inbox.status == 403
    async with ctx.db.transaction() as session:
        rows = (
            await session.execute(select(AuditEvent).where(AuditEvent.actor_user_id == world.cecilia.user_id))
        ).scalars()
        denials = {(row.action, row.outcome) for row in rows}
    assert ("conversation.read", "denied") in denials and ("conversation.post", "denied") in denials
    assert ("message.acknowledge", "denied") in denials and ("inbox.read", "denied") in denials


async def test_reads_and_downloads_are_in_the_access_log(client, ctx, world):
    conversation = await unit_conversation(client, world)
    uploaded = await (
        await upload(client, conversation["id"], world.anna, b"Vardplan\nrad 2\n", "text/plain", "v%C3%A5rdplan.txt")
    ).json()
    assert uploaded["filename"] == "vårdplan.txt"
    sent = await client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        headers=world.anna.headers,
        json={"client_id": str(uuid.uuid4()), "body": "Se bilaga", "attachments": [uploaded["id"]]},
    )
    assert sent.status == 201
    await client.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=world.bertil.headers)
    got = await client.get(
        f"/api/v1/conversations/{conversation['id']}/attachments/{uploaded['id']}", headers=world.bertil.headers
    )
    assert await got.read() == b"Vardplan\nrad 2\n"
    async with ctx.db.transaction() as session:
        rows = list(
            (
                await session.execute(select(AuditEvent).where(AuditEvent.actor_user_id == world.bertil.user_id))
            ).scalars()
        )
    by_action = {row.action: row for row in rows}
    assert by_action["conversation.read"].object_id == conversation["id"]
    assert by_action["conversation.read"].actor_unit_id == world.home_care
    assert by_action["conversation.read"].case_ref == "LUS-2026-0042"
    assert by_action["attachment.download"].object_id == uploaded["id"]


async def test_a_pdf_preview_is_inline_in_a_sandbox_only_our_page_may_frame(client, world):
    conversation = await unit_conversation(client, world)
    uploaded = await (await upload(client, conversation["id"], world.anna, b"%PDF-1.4 plan")).json()
    text = await (await upload(client, conversation["id"], world.anna, b"rad", "text/plain", "a.txt")).json()
    sent = await client.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        headers=world.anna.headers,
        json={"client_id": str(uuid.uuid4()), "body": "Bilagor", "attachments": [uploaded["id"], text["id"]]},
    )
    assert sent.status == 201
    base = f"/api/v1/conversations/{conversation['id']}/attachments"
    preview = await client.get(f"{base}/{uploaded['id']}?inline=true", headers=world.bertil.headers)
    assert preview.headers["Content-Disposition"].startswith("inline;")
    assert preview.headers["Content-Security-Policy"] == "default-src 'none'; sandbox; frame-ancestors 'self'"
    assert preview.headers["X-Frame-Options"] == "SAMEORIGIN"
    for url in (f"{base}/{uploaded['id']}", f"{base}/{text['id']}?inline=true"):  # a download; text never inline
        saved = await client.get(url, headers=world.bertil.headers)
        assert saved.headers["Content-Disposition"].startswith("attachment;")
        assert saved.headers["Content-Security-Policy"] == "default-src 'none'; sandbox; frame-ancestors 'none'"
        assert saved.headers["X-Frame-Options"] == "DENY"
        # A streamed response gets the rest of the security headers too, not only those the route sets.
        assert saved.headers["X-Content-Type-Options"] == "nosniff"
        assert saved.headers["Cache-Control"] == "no-store"
        assert saved.headers["Referrer-Policy"] == "no-referrer"
        assert saved.headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert "camera=(self)" in saved.headers["Permissions-Policy"]


async def test_upload_limits_type_and_sniffing(client, ctx, world):
    conversation = await unit_conversation(client, world)
    exe = await upload(
        client, conversation["id"], world.anna, b"MZ\x90\x00" + b"\x00" * 100, "application/x-msdownload"
    )
    assert exe.status == 415 and (await exe.json())["code"] == "unsupported_media_type"
    fake_pdf = await upload(client, conversation["id"], world.anna, b"MZ\x90\x00 not a pdf" * 10)
    assert fake_pdf.status == 415 and (await fake_pdf.json())["code"] == "content_type_mismatch"
    ctx.settings.max_upload_bytes = 1024 * 1024
    # What the web client checks before uploading: the same limit and allow-list the upload enforces.
    limits = await (await client.get("/api/v1/attachment-limits", headers=world.anna.headers)).json()
    assert limits["max_bytes"] == 1024 * 1024
    types = {kind["content_type"]: kind["extensions"] for kind in limits["types"]}
    assert types["application/pdf"] == [".pdf"] and types["image/jpeg"] == [".jpg", ".jpeg"]
    assert "application/x-msdownload" not in types and all(types.values())
    too_big = await upload(client, conversation["id"], world.anna, b"%PDF-" + b"0" * (2 * 1024 * 1024))
    assert too_big.status == 413
    outsider = await upload(client, conversation["id"], world.cecilia, b"%PDF-1.4 x")
    assert outsider.status == 404
    png = await upload(
        client, conversation["id"], world.anna, b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "image/png", "bild.png"
    )
    assert png.status == 201
    # nobody else can fetch an attachment that has not been sent yet
    early = await client.get(
        f"/api/v1/conversations/{conversation['id']}/attachments/{(await png.json())['id']}",
        headers=world.bertil.headers,
    )
    assert early.status == 404
