"""Durable waiting room and admissions for video meetings (they survive the node running the room).

Revision ID: 0011_video_admissions
Revises: 0010_membership_admin_grants
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.core.db import UTCDateTime

revision: str = "0011_video_admissions"
down_revision: str | Sequence[str] | None = "0010_membership_admin_grants"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "video_admissions",
        sa.Column(
            "meeting_id",
            sa.Uuid(),
            sa.ForeignKey(
                "video_meetings.id", ondelete="CASCADE", name="fk_video_admissions_meeting_id_video_meetings"
            ),
            primary_key=True,
        ),
        sa.Column("subject", sa.Uuid(), primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("participant_id", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("video_admissions")
