"""Secrets at rest (issue 15, item 6): TOTP secrets are sealed with the key-encryption key (also those
stored before, by the migration), and the SQLite file, its WAL and shared-memory file are 0600."""

from __future__ import annotations

import stat
import uuid
from datetime import UTC, datetime

import pyotp
from sqlalchemy import text

from auth import accounts
from auth.models import OpAccount
from server.core.db import Database
from server.core.envelope import Envelope, KeyRing
from server.migrate import upgrade
from tests.identity.helpers import PASSWORD, local_user, login_via_forms


def raw_database(settings) -> bytes:
    files = sorted(settings.data_dir.glob("brygga.db*"))
    return b"".join(path.read_bytes() for path in files)


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_totp_secret_is_sealed_and_the_database_files_are_private(live):
    _, secret = await local_user(live.ctx, "tove")
    assert (await login_via_forms(live.client, "tove", PASSWORD, secret=secret)).status == 302  # still works
    settings = live.settings
    assert secret.encode() not in raw_database(settings)
    database = settings.data_dir / "brygga.db"
    wal = settings.data_dir / "brygga.db-wal"
    assert wal.exists()
    for path in (database, wal, settings.data_dir / "brygga.db-shm"):
        assert mode(path) == 0o600, (path.name, oct(mode(path)))


async def test_the_migration_seals_secrets_stored_in_clear(tmp_path, monkeypatch):
    key_file = tmp_path / "keys" / "kek.json"
    monkeypatch.setenv("BRYGGA_KEY_FILE", str(key_file))
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    await upgrade(url, "0008_discharge")
    secret = pyotp.random_base32()
    user_id = uuid.uuid4()
    db = Database(url)
    try:
        async with db.transaction() as session:
            now = datetime.now(UTC).isoformat()
            await session.execute(
                text("INSERT INTO users (id, issuer, subject, login, display_name, system_roles, disabled, created_at)"
                     " VALUES (:id, 'local', :id, 'gammal', 'Gammal', '[]', 0, :now)"),
                {"id": user_id.hex, "now": now},
            )  # fmt: skip
            await session.execute(
                text("INSERT INTO op_accounts (user_id, password_hash, totp_secret, totp_confirmed, totp_last_step,"
                     " failed_attempts, updated_at) VALUES (:id, 'x', :secret, 1, 0, 0, :now)"),
                {"id": user_id.hex, "secret": secret, "now": now},
            )  # fmt: skip
    finally:
        await db.close()
    await upgrade(url)
    with open(tmp_path / "old.db", "rb") as raw:
        assert secret.encode() not in raw.read()
    db = Database(url)
    try:
        async with db.transaction() as session:
            account = await session.get(OpAccount, user_id)
            assert account is not None and account.totp_enc is not None
            assert accounts.totp_secret_of(Envelope(KeyRing(key_file)), account) == secret
    finally:
        await db.close()
