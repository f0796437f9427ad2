"""The core deadline engine's durable timers (server/core/deadlines.py); discharge clocks are its first kinds.

Revision ID: 0012_deadlines
Revises: 0011_video_admissions
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.core.db import UTCDateTime

revision: str = "0012_deadlines"
down_revision: str | Sequence[str] | None = "0011_video_admissions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deadlines",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deadlines")),
    )
    op.create_index("ix_deadlines_state_due", "deadlines", ["state", "due_at"])
    op.create_index("ix_deadlines_kind_reference", "deadlines", ["kind", "reference"])


def downgrade() -> None:
    op.drop_index("ix_deadlines_kind_reference", table_name="deadlines")
    op.drop_index("ix_deadlines_state_due", table_name="deadlines")
    op.drop_table("deadlines")
