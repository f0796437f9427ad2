"""Operations: audit hash-chain position, signed audit checkpoints, database leases.

Revision ID: 0006_ops
Revises: 0005_video
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.core.db import UTCDateTime
from server.migrate import refuse_to_drop_audit

revision: str = "0006_ops"
down_revision: str | Sequence[str] | None = "0005_video"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("audit_events") as batch:
        batch.add_column(sa.Column("chain_pos", BIGINT, nullable=True))
        batch.create_index("ix_audit_events_chain_pos", ["chain_pos"], unique=True)
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", BIGINT, primary_key=True, autoincrement=True),
        sa.Column("chain_pos", BIGINT, nullable=False),
        sa.Column("seq", BIGINT, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("signature", sa.String(128), nullable=False),
    )
    op.create_index("ix_audit_checkpoints_chain_pos", "audit_checkpoints", ["chain_pos"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("acquired_at", UTCDateTime(), nullable=False),
        sa.Column("renewed_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    refuse_to_drop_audit(
        revision,
        "SELECT (SELECT count(*) FROM audit_checkpoints)"
        " + (SELECT count(*) FROM audit_events WHERE chain_pos IS NOT NULL)",
    )
    op.drop_table("leases")
    op.drop_table("audit_checkpoints")
    with op.batch_alter_table("audit_events") as batch:
        batch.drop_index("ix_audit_events_chain_pos")
        batch.drop_column("chain_pos")
