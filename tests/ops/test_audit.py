"""The access log is tamper-evident: hash chain, signed checkpoints, `brygga audit verify`, auditor export."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
import uuid

import asyncpg
import pytest
from sqlalchemy import func, select

from server.audit import chain
from server.audit.service import record
from server.core.db import Database
from server.core.models import AuditEvent
from server.core.principal import Principal
from server.migrate import upgrade
from server.settings import Settings
from tests.conftest import bearer, with_keys


def brygga(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BRYGGA_DATA_DIR": str(settings.data_dir), "BRYGGA_DATABASE_URL": settings.database_url}
    return subprocess.run([sys.executable, "-m", "server", *args], env=env, capture_output=True, text=True, timeout=60)


async def fill(db: Database, rows: int, *, case_ref: str = "case-1") -> None:
    actor = Principal(user_id=uuid.uuid4(), display_name="Anna")
    for index in range(rows):
        async with db.transaction() as session:
            await record(
                session, actor=actor, action="conversation.read", object_type="conversation",
                object_id=uuid.uuid4(), case_ref=case_ref, details={"n": index, "text": "åäö"},
            )  # fmt: skip


async def seal(db: Database, settings: Settings) -> None:
    await chain.chain_pending(db)
    assert await chain.write_checkpoint(db, chain.load_or_create_signing_key(settings.data_dir)) is not None


def seq_named(result: subprocess.CompletedProcess[str]) -> int | None:
    return json.loads(result.stdout)["first_tampered_seq"]


async def check_tamper_detection(settings: Settings, edit_row) -> None:
    db = with_keys(Database(settings.effective_database_url), settings)
    try:
        await fill(db, 12)
        await seal(db, settings)
        await fill(db, 5)  # chained but after the last checkpoint
        await chain.chain_pending(db)
        untouched = brygga(settings, "audit", "verify")
        assert untouched.returncode == 0, untouched.stderr
        assert "Checked 17 chained rows and 1 signed checkpoints" in untouched.stdout
        async with db.transaction() as session:
            seqs = list((await session.execute(select(AuditEvent.seq).order_by(AuditEvent.seq))).scalars())
    finally:
        await db.close()

    for victim in (seqs[6], seqs[14]):  # one before and one after the checkpoint
        await edit_row(victim, "action", "'conversation.list'")
        tampered = brygga(settings, "audit", "verify")
        assert tampered.returncode == 1
        assert f"first tampered row is seq {victim}." in tampered.stderr
        assert seq_named(brygga(settings, "audit", "verify", "--json")) == victim
        await edit_row(victim, "action", "'conversation.read'")  # put it back
        assert brygga(settings, "audit", "verify").returncode == 0

    # An editor who also recomputes the row's hash is caught at the very next link and by the checkpoint.
    db = with_keys(Database(settings.effective_database_url), settings)
    try:
        async with db.transaction() as session:
            row = (await session.execute(select(AuditEvent).where(AuditEvent.seq == seqs[3]))).scalar_one()
            row.object_type = "attachment"
            row.hash = chain.row_hash(row.prev_hash or chain.GENESIS, row)
    finally:
        await db.close()
    result = json.loads(brygga(settings, "audit", "verify", "--json").stdout)
    assert result["ok"] is False
    assert result["first_tampered_seq"] == seqs[4]
    assert any("rewritten" in finding["problem"] for finding in result["findings"])


async def test_verify_names_the_edited_row_on_sqlite(migrated):
    db_file = migrated.data_dir / "brygga.db"
    migrated.database_url = migrated.effective_database_url

    async def edit_row(seq: int, column: str, value_sql: str) -> None:
        with sqlite3.connect(db_file) as raw:
            raw.execute(f"UPDATE audit_events SET {column} = {value_sql} WHERE seq = ?", (seq,))

    await check_tamper_detection(migrated, edit_row)


@pytest.mark.postgres
async def test_verify_names_the_edited_row_on_postgresql(settings, pg_database):
    await upgrade(pg_database)
    settings.database_url = pg_database
    raw_url = pg_database.replace("postgresql+asyncpg://", "postgresql://")

    async def edit_row(seq: int, column: str, value_sql: str) -> None:
        connection = await asyncpg.connect(raw_url)
        try:
            await connection.execute(f"UPDATE audit_events SET {column} = {value_sql} WHERE seq = $1", seq)
        finally:
            await connection.close()

    await check_tamper_detection(settings, edit_row)


async def sealed_sqlite(settings: Settings, rows: int) -> Database:
    """The test's SQLite database with `rows` audit rows, chained and sealed by a checkpoint."""
    settings.database_url = settings.effective_database_url
    db = with_keys(Database(settings.database_url), settings)
    await fill(db, rows)
    await seal(db, settings)
    return db


async def test_deleted_row_and_forged_checkpoint_are_reported(migrated):
    db = await sealed_sqlite(migrated, 6)
    try:
        async with db.transaction() as session:
            seqs = list((await session.execute(select(AuditEvent.seq).order_by(AuditEvent.seq))).scalars())
    finally:
        await db.close()
    with sqlite3.connect(migrated.data_dir / "brygga.db") as raw:
        raw.execute("DELETE FROM audit_events WHERE seq = ?", (seqs[2],))
    result = json.loads(brygga(migrated, "audit", "verify", "--json").stdout)
    assert result["first_tampered_seq"] == seqs[3]
    assert "missing" in result["findings"][0]["problem"]

    with sqlite3.connect(migrated.data_dir / "brygga.db") as raw:
        raw.execute("UPDATE audit_checkpoints SET key_id = 'ffff'")
    result = json.loads(brygga(migrated, "audit", "verify", "--json").stdout)
    assert any("untrusted key" in finding["problem"] for finding in result["findings"])


@pytest.mark.postgres
async def test_concurrent_appends_with_rollbacks_chain_completely_on_postgresql(settings, pg_database):
    """Sequence gaps (rolled-back inserts) and out-of-order commits while the chainer runs."""
    await upgrade(pg_database)
    db = Database(pg_database)
    actor = Principal(user_id=uuid.uuid4(), display_name="Bo")

    async def writer(index: int) -> None:
        for round_ in range(10):
            try:
                async with db.transaction() as session:
                    await record(session, actor=actor, action="message.send", object_type="message", object_id=index)
                    await session.flush()
                    await asyncio.sleep(0.001 * ((index * 7 + round_) % 5))  # commits finish out of seq order
                    if (index + round_) % 4 == 0:
                        raise RuntimeError("rolled back")
            except RuntimeError:
                pass

    async def chainer(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await chain.chain_pending(db)
            await asyncio.sleep(0.005)

    stop = asyncio.Event()
    try:
        chaining = asyncio.create_task(chainer(stop))
        await asyncio.gather(*(writer(index) for index in range(12)))
        stop.set()
        await chaining
        await chain.chain_pending(db)
        report = await chain.verify(db, [])
        async with db.transaction() as session:
            total = (await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one()
            max_seq = (await session.execute(select(func.max(AuditEvent.seq)))).scalar_one()
        assert report.ok, report.findings
        assert report.unchained == 0
        assert report.rows_checked == total == 90  # 120 attempts, 30 rolled back
        assert max_seq > total  # the sequence really has gaps
    finally:
        await db.close()


async def test_server_chains_in_the_background(client, ctx, actors):
    _, token = await actors.user("greta", roles=["auditor"])
    response = await client.post("/api/v1/audit/access-log", json={"case_ref": "x"}, headers=bearer(token))
    assert response.status == 200
    for _ in range(50):
        report = await chain.verify(ctx.db, [])
        if report.rows_checked >= 1 and report.unchained == 0:
            break
        await asyncio.sleep(0.1)
    assert report.ok and report.rows_checked >= 1 and report.unchained == 0


async def test_auditor_exports_access_log_for_a_case_and_a_user(client, ctx, actors):
    unit = await actors.unit("Avdelning 42")
    nurse_id, _ = await actors.user("hanna", units={unit: "member"})
    auditor_id, auditor_token = await actors.user("ivar", roles=["auditor"])
    _, other_token = await actors.user("jonna", units={unit: "member"})
    nurse = Principal(user_id=nurse_id, display_name="Hanna")
    for index in range(5):
        async with ctx.db.transaction() as session:
            await record(
                session, actor=nurse, action="conversation.read", object_type="conversation",
                object_id=f"c{index}", unit_id=unit, case_ref="case-77" if index < 3 else "case-88",
            )  # fmt: skip

    denied = await client.post("/api/v1/audit/access-log", json={"case_ref": "case-77"}, headers=bearer(other_token))
    assert denied.status == 403

    first = await client.post(
        "/api/v1/audit/access-log", json={"case_ref": "case-77", "limit": 2}, headers=bearer(auditor_token)
    )
    assert first.status == 200
    page = await first.json()
    assert [item["object_id"] for item in page["items"]] == ["c0", "c1"]
    entry = page["items"][0]
    assert entry["actor_name"] == "Hanna" and entry["unit_name"] == "Avdelning 42" and entry["at"].startswith("20")
    second = await client.post(
        "/api/v1/audit/access-log",
        json={"case_ref": "case-77", "limit": 2, "after_seq": page["next_after_seq"]},
        headers=bearer(auditor_token),
    )
    rest = await second.json()
    # The auditor's own first read of this case is part of the case's access log too.
    assert [(item["action"], item["object_id"]) for item in rest["items"]] == [
        ("conversation.read", "c2"),
        ("audit.export", None),
    ]
    assert rest["next_after_seq"] == rest["items"][-1]["seq"]

    by_user = await client.post(
        "/api/v1/audit/access-log.csv", json={"user_id": str(nurse_id)}, headers=bearer(auditor_token)
    )
    assert by_user.status == 200 and by_user.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await by_user.text())))
    assert [row["object_id"] for row in rows] == ["c0", "c1", "c2", "c3", "c4"]
    assert {row["unit_name"] for row in rows} == {"Avdelning 42"}

    both = await client.post(
        "/api/v1/audit/access-log", json={"case_ref": "a", "user_id": str(nurse_id)}, headers=bearer(auditor_token)
    )
    assert both.status == 422

    # Reads of the audit log are themselves in the audit log, and so is the denied attempt.
    async with ctx.db.transaction() as session:
        reads = list((await session.execute(select(AuditEvent).where(AuditEvent.action == "audit.export"))).scalars())
    assert [(row.outcome, row.actor_user_id == auditor_id) for row in reads] == [
        ("denied", False),
        ("allowed", True),
        ("allowed", True),
        ("allowed", True),
    ]
    assert reads[1].case_ref == "case-77" and reads[1].details["rows"] == 2
    assert reads[3].object_id == str(nurse_id) and reads[3].details["format"] == "csv"


async def test_downgrade_past_the_audit_migrations_is_refused_and_overdue_unchained_rows_are_reported(migrated):
    db = await sealed_sqlite(migrated, 5)
    try:
        # An operator's downgrade to a release before the audit chain (0005) would drop the chain and the
        # signed checkpoints: refused (sealed columns and TOTP secrets refuse on the way, before the audit
        # guard).
        env = {**os.environ, "BRYGGA_DATA_DIR": str(migrated.data_dir), "BRYGGA_DATABASE_URL": migrated.database_url}
        downgrade = subprocess.run(
            [sys.executable, "-m", "alembic", "-c", "alembic.ini", "downgrade", "0005_video"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert downgrade.returncode != 0 and "refusing to downgrade below" in downgrade.stderr
        tables = {row[0] for row in sqlite3.connect(migrated.data_dir / "brygga.db").execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}  # fmt: skip
        assert {"audit_events", "audit_checkpoints"} <= tables
        assert brygga(migrated, "audit", "verify").returncode == 0  # chain and checkpoint intact

        # A chain reset some other way (columns emptied, checkpoints gone) leaves old rows unchained:
        # reported, not "Audit log OK". Rows written a moment ago and not chained yet are normal.
        with sqlite3.connect(migrated.data_dir / "brygga.db") as raw:
            raw.execute("DELETE FROM audit_checkpoints")
            raw.execute("UPDATE audit_events SET chain_pos = NULL, prev_hash = NULL, hash = NULL")
            raw.execute("UPDATE audit_events SET at = datetime(at, '-1 hour')")
        await fill(db, 2)
    finally:
        await db.close()
    verified = brygga(migrated, "audit", "verify")
    assert verified.returncode == 1, verified.stdout
    assert "5 rows written over 0:10:00 ago are not chained" in verified.stderr
