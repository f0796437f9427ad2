"""TOTP secrets sealed with the key-encryption key; account lockout columns gone (throttling instead).

Existing secrets are sealed here with the key file of the configured settings (`BRYGGA_KEY_FILE` or
`<BRYGGA_DATA_DIR>/keys/kek.json`, as `brygga serve` reads it), then the clear-text column is dropped.

Revision ID: 0009_sealed_totp
Revises: 0008_discharge
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_sealed_totp"
down_revision: str | Sequence[str] | None = "0008_discharge"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("op_accounts") as batch:
        batch.add_column(sa.Column("totp_kek", sa.String(64), nullable=True))
        batch.add_column(sa.Column("totp_enc", sa.LargeBinary(), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT user_id, totp_secret FROM op_accounts WHERE totp_secret IS NOT NULL")
    ).all()
    if rows:
        import uuid

        from server.core.envelope import Envelope, KeyRing, associated_data
        from server.settings import Settings

        path = Settings().effective_key_file
        envelope = Envelope(KeyRing(path, create=not path.exists()))
        for user_id, secret in rows:
            key = user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id))
            sealed = envelope.seal_text(secret, associated_data("op_accounts", key, "-", "totp"))
            seal = "UPDATE op_accounts SET totp_kek = :kek, totp_enc = :enc, totp_secret = NULL WHERE user_id = :id"
            connection.execute(sa.text(seal), {"kek": sealed.kek_id, "enc": sealed.blob, "id": user_id})
    with op.batch_alter_table("op_accounts") as batch:
        batch.drop_column("totp_secret")
        batch.drop_column("failed_attempts")
        batch.drop_column("locked_until")


def downgrade() -> None:
    # Unsealing would write every TOTP secret back in clear (security item 6): refuse, like the audit guard.
    raise RuntimeError(
        "refusing to downgrade below 0009_sealed_totp: TOTP secrets stay sealed. To go back to an older "
        "release, restore the backup taken before the upgrade (docs/operations.md)."
    )
