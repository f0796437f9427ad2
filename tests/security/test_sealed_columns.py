"""Sealed columns (issue 15 item 13): conversation subjects, case references, meeting titles, guest names and
guest-link labels are stored only as envelope ciphertext; case references are found by their keyed blind
index; rotation rewraps them; the migration seals values stored in clear, and the audit hash chain survives it."""

from __future__ import annotations

import functools
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from server.audit import chain
from server.core.db import Database
from server.core.envelope import rotate_keys
from server.core.models import AuditEvent
from server.core.sealed_columns import rewrap_sealed_columns
from server.discharge.models import DischargeCase
from server.messaging.models import Conversation
from server.migrate import upgrade
from server.video.models import GuestLink, Meeting
from tests.conftest import bearer, with_keys

CASES = "/api/v1/discharge/cases"
REF = "SEALREF-4711"
GUEST = "Gunnhild Sealstedt"
LABEL = "Dotter till Sealmark"
SUBJECT = "Zetaämne om fallet"


def raw_files(data_dir) -> bytes:
    """The SQLite database file, its WAL and shared memory: everything on disk."""
    return b"".join(path.read_bytes() for path in sorted(data_dir.glob("brygga.db*")))


async def sealed_rows(db: Database) -> list[bytes]:
    """Every stored column of the tables this change seals, as bytes."""
    rows: list[bytes] = []
    async with db.transaction() as session:
        for table in ("conversations", "discharge_cases", "audit_events", "video_meetings", "video_guest_links"):
            for row in (await session.execute(text(f"SELECT * FROM {table}"))).all():
                rows.extend(value if isinstance(value, bytes) else str(value).encode() for value in row)
    return rows


async def case_with_meeting_and_guest(client, actors) -> tuple[dict, str, str, dict]:
    ward = await actors.unit("Avdelning 52")
    home = await actors.unit("Hemtjänst Södermalm", unit_type="home_care", org_kind="municipality")
    _, nurse = await actors.user("sara", units={ward: "member"})
    await actors.user("hanna", units={home: "member"})
    opening = {
        "case_ref": REF, "municipality_code": "0180", "district": "Södermalm", "age_band": "65_plus",
        "ward_unit_id": str(ward), "units": [{"unit_id": str(home), "role": "home_care"}],
        "admitted_at": datetime.now(UTC).isoformat(),
    }  # fmt: skip
    response = await client.post(CASES, json=opening, headers=bearer(nurse))
    assert response.status == 201, await response.text()
    case = await response.json()
    conversation = {"subject": SUBJECT, "case_ref": REF, "from_unit_id": str(ward), "unit_ids": [str(home)]}
    created = await client.post("/api/v1/conversations", json=conversation, headers=bearer(nurse))
    assert created.status == 201, await created.text()
    start = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    booked = await client.post(f"{CASES}/{case['id']}/sip-meeting", json={"starts_at": start}, headers=bearer(nurse))
    assert booked.status == 201, await booked.text()
    meeting_id = (await booked.json())["meeting_id"]
    link = await (
        await client.post(f"/api/v1/meetings/{meeting_id}/guest-links", json={"label": LABEL}, headers=bearer(nurse))
    ).json()
    redeemed = await client.post(
        "/api/v1/guest-links/redeem",
        json={"link": link["url"].split("#guest=")[1], "name": GUEST, "code": link["code"]},
    )
    assert redeemed.status == 200, await redeemed.text()
    return case, meeting_id, nurse, opening


async def test_case_refs_meeting_titles_and_guest_names_are_sealed_and_still_found(client, ctx, actors, migrated):
    case, meeting_id, nurse, opening = await case_with_meeting_and_guest(client, actors)
    # Readers see the values.
    assert (await (await client.get(f"{CASES}/{case['id']}", headers=bearer(nurse))).json())["case_ref"] == REF
    meeting = await (await client.get(f"/api/v1/meetings/{meeting_id}", headers=bearer(nurse))).json()
    assert meeting["title"] == f"SIP {REF}"
    links = await (await client.get(f"/api/v1/meetings/{meeting_id}/guest-links", headers=bearer(nurse))).json()
    assert (links["items"][0]["guest_name"], links["items"][0]["label"]) == (GUEST, LABEL)
    # The same case reference, written differently, is still the same case (the blind index is normalised).
    duplicate = await client.post(CASES, json={**opening, "case_ref": "sealref-4711"}, headers=bearer(nurse))
    assert duplicate.status == 409 and (await duplicate.json())["code"] == "case_exists"
    # The auditor finds the case's access log by its reference.
    _, auditor = await actors.user("greta", roles=["auditor"])
    found = await client.post("/api/v1/audit/access-log", json={"case_ref": REF}, headers=bearer(auditor))
    actions = {item["action"] for item in (await found.json())["items"]}
    assert {"discharge.case.create", "discharge.case.read"} <= actions
    assert all(item["case_ref"] == REF for item in (await found.json())["items"])
    # Stored: neither the reference, nor the title, nor the guest's name, in any column of these tables.
    stored = b"\n".join(await sealed_rows(ctx.db))
    for clear in (REF.encode(), b"Sealstedt", b"Sealmark", b"SIP ", SUBJECT.encode(), b"Utskrivning"):
        assert clear not in stored, clear
    on_disk = raw_files(migrated.data_dir)  # the file, its WAL and shared memory
    for clear in (REF.encode(), b"Sealstedt", b"Sealmark", SUBJECT.encode(), "Zetaämne".encode("utf-16-le")):
        assert clear not in on_disk, clear
    async with ctx.db.transaction() as session:
        row = (await session.execute(select(DischargeCase))).scalar_one()
        assert row.case_ref_hmac == ctx.db.sealer.blind_index(" sealref-4711 ")
        assert row.case_ref_kek == ctx.db.sealer.envelope.keyring.active_id


async def test_rotation_rewraps_sealed_columns(client, ctx, actors):
    case, meeting_id, _, _ = await case_with_meeting_and_guest(client, actors)
    envelope = ctx.db.sealer.envelope
    old = envelope.keyring.active_id
    report = await rotate_keys(envelope, [functools.partial(rewrap_sealed_columns, ctx.db)], grace_seconds=0)
    assert report.new_kek_id != old and old in report.retired
    async with ctx.db.transaction() as session:
        for model, column in ((DischargeCase, "case_ref"), (AuditEvent, "case_ref"), (Meeting, "title"),
                              (GuestLink, "guest_name"), (GuestLink, "label"), (Conversation, "subject"),
                              (Conversation, "case_ref")):  # fmt: skip
            kek = getattr(model, f"{column}_kek")
            in_use = set((await session.execute(select(kek).where(kek.is_not(None)))).scalars())
            assert in_use == {report.new_kek_id}, (model.__name__, in_use)
        meeting = await session.get(Meeting, uuid.UUID(meeting_id))
        assert meeting is not None and meeting.title == f"SIP {REF}"
        discharge_case = await session.get(DischargeCase, uuid.UUID(case["id"]))
        assert discharge_case is not None and discharge_case.case_ref == REF
        thread = await session.get(Conversation, uuid.UUID(case["conversation_id"]))
        assert thread is not None and (thread.subject, thread.case_ref) == (f"Utskrivning {REF}", REF)


async def test_the_migration_seals_case_refs_and_keeps_the_audit_chain_on_sqlite(settings, monkeypatch):
    conversation_id = uuid.uuid4()

    def old_conversation() -> None:  # stored in clear by an older release
        user_id = uuid.uuid4().hex
        with sqlite3.connect(settings.data_dir / "brygga.db") as raw:
            raw.execute(
                "INSERT INTO users (id, issuer, subject, login, display_name, system_roles, disabled, created_at)"
                " VALUES (?, 'local', ?, 'gammal', 'Gammal', '[]', 0, '2026-01-01 00:00:00')",
                (user_id, user_id),
            )
            raw.execute(
                "INSERT INTO conversations (id, kind, subject, case_ref, created_by_user_id, created_at, last_seq)"
                " VALUES (?, 'units', 'OLDSUBJECT om utskrivning', 'OLDREF-1', ?, '2026-01-01 00:00:00', 0)",
                (conversation_id.hex, user_id),
            )

    db = await check_migration(settings, monkeypatch, settings.effective_database_url, before=old_conversation)
    try:
        async with db.transaction() as session:
            key = db.sealer.blind_index("OLDREF-1")
            found = (await session.execute(select(Conversation).where(Conversation.case_ref_hmac == key))).scalar_one()
            assert (found.id, found.subject, found.case_ref) == (
                conversation_id,
                "OLDSUBJECT om utskrivning",
                "OLDREF-1",
            )
    finally:
        await db.close()
    with sqlite3.connect(settings.data_dir / "brygga.db") as raw:
        raw.execute("VACUUM")
    assert b"OLDREF" not in raw_files(settings.data_dir) and b"OLDSUBJECT" not in raw_files(settings.data_dir)


@pytest.mark.postgres
async def test_the_migration_seals_case_refs_and_keeps_the_audit_chain_on_postgresql(
    settings, monkeypatch, pg_database
):
    await (await check_migration(settings, monkeypatch, pg_database)).close()


async def check_migration(settings, monkeypatch, url: str, before=lambda: None) -> Database:
    """Audit rows chained in clear before the migration: sealed after it, the chain still verifies, and
    their case reference is found by its blind index."""
    monkeypatch.setenv("BRYGGA_DATA_DIR", str(settings.data_dir))
    settings.data_dir.mkdir(parents=True)
    settings.database_url = url
    await upgrade(url, "0012_deadlines")
    db = Database(url)
    try:
        previous = chain.GENESIS
        async with db.transaction() as session:
            for position in range(1, 4):
                event = AuditEvent(
                    seq=position, chain_pos=position, at=datetime(2026, 1, position, tzinfo=UTC),
                    action="conversation.read", object_type="conversation", object_id=str(position),
                    case_ref=f"OLDREF-{position % 2}", outcome="allowed", ip=None, details={},
                )  # fmt: skip
                digest = chain.row_hash(previous, event)
                await session.execute(
                    text("INSERT INTO audit_events (seq, at, action, object_type, object_id, case_ref, outcome,"
                         " details, prev_hash, hash, chain_pos) VALUES (:seq, :at, 'conversation.read', 'conversation',"
                         " :oid, :ref, 'allowed', '{}', :prev, :hash, :pos)"),
                    {"seq": position, "at": event.at.replace(tzinfo=None), "oid": str(position),
                     "ref": f"OLDREF-{position % 2}", "prev": previous, "hash": digest, "pos": position},
                )  # fmt: skip
                previous = digest
    finally:
        await db.close()
    before()
    await upgrade(url)
    db = with_keys(Database(url), settings)
    report = await chain.verify(db, [])
    assert report.ok and report.rows_checked == 3, report.findings
    assert b"OLDREF" not in b"\n".join(await sealed_rows(db))
    async with db.transaction() as session:
        key = db.sealer.blind_index("oldref-1")
        rows = (await session.execute(select(AuditEvent).where(AuditEvent.case_ref_hmac == key))).scalars().all()
        assert sorted(row.seq for row in rows) == [1, 3] and {row.case_ref for row in rows} == {"OLDREF-1"}
    return db
