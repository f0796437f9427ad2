"""Keys and backups (issue 20, items 1-2): a database never runs beside the wrong keys, retired keys
stay readable, and a backup taken under load restores into a new directory, verifies and serves."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from server.core.app_keys import ENVELOPE
from server.core.envelope import KeyFileError, KeyRing, rotate_keys
from server.messaging.events import MESSAGING
from server.settings import Settings
from tests.messaging.conftest import unit_conversation


def brygga(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BRYGGA_DATA_DIR": str(data_dir), "BRYGGA_LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "server", *args], env=env, capture_output=True, text=True, timeout=120)


def restored_settings(data_dir: Path, like: Settings) -> Settings:
    return Settings(data_dir=data_dir, public_base_url=like.public_base_url, web_dist=like.web_dist)


async def test_restore_drill_backup_under_load_then_rotation_then_verify_serve_and_read_everything(
    client, ctx, world, connect, tmp_path
):
    conversation = await unit_conversation(client, world)
    senders = [await connect(world.anna) for _ in range(3)]
    acked: list[tuple[float, str, str]] = []  # (ack time, id, body)
    stop = asyncio.Event()

    async def send_until_stopped(listener, n: int) -> None:
        i = 0
        while not stop.is_set():
            body = f"drill {n}-{i}"
            ack = await listener.send(conversation["id"], body)
            assert ack["ok"] is True, ack
            acked.append((asyncio.get_running_loop().time(), ack["message"]["id"], body))
            i += 1

    load = [asyncio.create_task(send_until_stopped(sender, n)) for n, sender in enumerate(senders)]
    while len(acked) < 30:
        await asyncio.sleep(0.05)
    # Online backup of the database (SQLite's backup API) while the senders keep going; then the keys.
    backup_started = asyncio.get_running_loop().time()
    source = ctx.settings.data_dir / "brygga.db"
    backup_db = tmp_path / "backup" / "brygga.db"
    backup_db.parent.mkdir()

    def online_backup() -> None:
        with sqlite3.connect(source) as src, sqlite3.connect(backup_db) as dst:
            src.backup(dst, pages=16)

    await asyncio.to_thread(online_backup)
    while len(acked) < 60:
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*load)
    before_backup = {message_id: body for at, message_id, body in acked if at < backup_started}
    everything = {message_id: body for _at, message_id, body in acked}

    # A rotation after the backup: the key backup taken now must still open the older database backup.
    key_file = ctx.settings.effective_key_file
    old_kek = KeyRing(key_file).active_id
    report = await rotate_keys(ctx.need(ENVELOPE), [ctx.need(MESSAGING).rewrap_batch], grace_seconds=0)
    assert report.retired == [old_kek] and report.dropped == []
    keys_backup = tmp_path / "backup" / "keys"
    shutil.copytree(key_file.parent, keys_backup)

    # Restore into a new directory, verify the pair, serve it and read everything.
    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(backup_db, restored / "brygga.db")
    shutil.copytree(keys_backup, restored / "keys")
    verified = brygga(restored, "backup", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Backup OK" in verified.stdout and "ok   records: all" in verified.stdout
    status = brygga(restored, "keys", "status")
    assert status.returncode == 0, status.stderr
    assert old_kek in status.stdout and "retired" in status.stdout

    async with TestClient(TestServer(create_app(restored_settings(restored, ctx.settings)))) as served:
        listed = await served.get(
            f"/api/v1/conversations/{conversation['id']}/messages?limit=200", headers=world.bertil.headers
        )
        assert listed.status == 200, await listed.text()
        read = {item["id"]: item["body"] for item in (await listed.json())["items"]}
    assert before_backup.items() <= read.items()  # everything acked before the backup began, readable
    assert read.items() <= everything.items()  # and nothing else
    print(f"\nrestore drill: {len(acked)} acked under load, {len(before_backup)} before the backup began, "
          f"{len(read)} in the backup, all readable after a rotation")  # fmt: skip


async def test_a_database_never_starts_beside_missing_or_foreign_keys(client, ctx, world, connect, tmp_path):
    conversation = await unit_conversation(client, world)
    anna = await connect(world.anna)
    assert (await anna.send(conversation["id"], "förseglad"))["ok"] is True
    kek_id = KeyRing(ctx.settings.effective_key_file).active_id
    restored = tmp_path / "restored"
    restored.mkdir()
    with sqlite3.connect(ctx.settings.data_dir / "brygga.db") as src, sqlite3.connect(restored / "brygga.db") as dst:
        src.backup(dst)
    settings = restored_settings(restored, ctx.settings)

    # No key file: no throwaway key is created, the server does not start, and says which key it needs.
    with pytest.raises(KeyFileError, match=kek_id):
        async with TestClient(TestServer(create_app(settings))):
            pass
    assert not settings.effective_key_file.exists()
    verified = brygga(restored, "backup", "verify")
    assert verified.returncode == 1 and kek_id in verified.stdout
    status = brygga(restored, "keys", "status")
    assert status.returncode == 2 and "MISSING" in status.stdout and kek_id in status.stderr

    # Another installation's key file: refused the same way, naming the key it lacks.
    KeyRing(settings.effective_key_file, create=True)
    with pytest.raises(KeyFileError, match=kek_id):
        async with TestClient(TestServer(create_app(settings))):
            pass

    # A key file with the retired key dropped (`--drop-retired`): `keys status` flags it.
    shutil.copy(ctx.settings.effective_key_file, settings.effective_key_file)
    ring = KeyRing(settings.effective_key_file)
    ring.add_active()
    assert ring.retire_all_but_active(drop=True) == ([kek_id], [kek_id])
    status = brygga(restored, "keys", "status")
    assert status.returncode == 2 and f"{kek_id}" in status.stdout and "MISSING" in status.stdout


def test_key_file_is_created_only_beside_a_database_without_sealed_records(tmp_path):
    with pytest.raises(KeyFileError, match="does not exist"):
        KeyRing(tmp_path / "kek.json")
    assert not (tmp_path / "kek.json").exists()
    assert KeyRing(tmp_path / "kek.json", create=True).active_id.startswith("kek-")


async def test_one_unreadable_message_is_a_placeholder_and_the_rest_of_the_sync_page_stays_readable(
    client, ctx, world, connect
):
    conversation = await unit_conversation(client, world)
    anna = await connect(world.anna)
    ids = [(await anna.send(conversation["id"], f"meddelande {i}"))["message"]["id"] for i in range(3)]
    with sqlite3.connect(ctx.settings.data_dir / "brygga.db") as raw:  # sealed with a key this file lacks
        raw.execute("UPDATE messages SET body_kek = 'kek-lost' WHERE id = ?", (uuid.UUID(ids[1]).hex,))
    bertil = await connect(world.bertil)
    page = await bertil.call("sync", {"since": 0})
    assert page["ok"] is True, page
    by_id = {message["id"]: message for message in page["messages"]}
    assert [by_id[i]["body"] for i in ids] == ["meddelande 0", None, "meddelande 2"]
    assert by_id[ids[1]]["system"] == {"kind": "unreadable", "data": {"message_id": ids[1], "kek_id": "kek-lost"}}


async def test_send_rate_during_key_rotation_is_printed(client, ctx, world, connect):
    """Rotation rewraps in small transactions and pauses between them, so sending goes on (figures printed;
    the speed target lives in docs, not in this assertion)."""
    config = ctx.need(MESSAGING).config
    config.connection_events_per_window = config.user_events_per_window = config.user_sends_per_window = 10**6
    conversation = await unit_conversation(client, world)
    senders = [await connect(world.anna) for _ in range(4)]
    loop = asyncio.get_running_loop()

    async def send_for(seconds: float) -> list[float]:
        acked: list[float] = []
        end = loop.time() + seconds

        async def one(sender) -> None:
            while loop.time() < end:
                ack = await sender.send(conversation["id"], "rotation under last")
                assert ack["ok"] is True, ack
                acked.append(loop.time())

        await asyncio.gather(*(one(sender) for sender in senders))
        return acked

    await send_for(4)  # a backlog to rewrap
    before = len(await send_for(2)) / 2
    messaging = ctx.need(MESSAGING)
    rotation = asyncio.create_task(
        rotate_keys(ctx.need(ENVELOPE), [messaging.rewrap_batch], batch_size=50, grace_seconds=0)
    )
    started = loop.time()
    acked: list[float] = []
    while not rotation.done():
        acked += await send_for(0.5)
    took = loop.time() - started
    report = rotation.result()
    during = len(acked) / took
    print(f"\nsend rate: {before:.0f} acked msgs/s before, {during:.0f} during rotation "
          f"({report.rewrapped} data keys rewrapped in {took:.1f} s, batches of 50)")  # fmt: skip
    assert report.rewrapped > 0 and acked
