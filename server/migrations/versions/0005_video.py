"""Video meetings: meetings, invited units and users, guest links.

Revision ID: 0005_video
Revises: 0004_messaging
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.core.db import UTCDateTime

revision: str = "0005_video"
down_revision: str | Sequence[str] | None = "0004_messaging"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "video_meetings",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column(
            "organiser_user_id",
            sa.Uuid(),
            sa.ForeignKey("users.id", name="fk_video_meetings_organiser_user_id_users"),
            nullable=False,
        ),
        sa.Column(
            "organiser_unit_id",
            sa.Uuid(),
            sa.ForeignKey("units.id", name="fk_video_meetings_organiser_unit_id_units"),
            nullable=False,
        ),
        sa.Column("conversation_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_video_meetings_conversation_id", "video_meetings", ["conversation_id"])
    op.create_index(
        "ix_video_meetings_organiser_unit_id_starts_at", "video_meetings", ["organiser_unit_id", "starts_at"]
    )
    op.create_table(
        "video_meeting_units",
        sa.Column(
            "meeting_id",
            sa.Uuid(),
            sa.ForeignKey(
                "video_meetings.id", ondelete="CASCADE", name="fk_video_meeting_units_meeting_id_video_meetings"
            ),
            primary_key=True,
        ),
        sa.Column(
            "unit_id",
            sa.Uuid(),
            sa.ForeignKey("units.id", ondelete="CASCADE", name="fk_video_meeting_units_unit_id_units"),
            primary_key=True,
        ),
    )
    op.create_index("ix_video_meeting_units_unit_id", "video_meeting_units", ["unit_id"])
    op.create_table(
        "video_meeting_users",
        sa.Column(
            "meeting_id",
            sa.Uuid(),
            sa.ForeignKey(
                "video_meetings.id", ondelete="CASCADE", name="fk_video_meeting_users_meeting_id_video_meetings"
            ),
            primary_key=True,
        ),
        sa.Column(
            "user_id",
            sa.Uuid(),
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_video_meeting_users_user_id_users"),
            primary_key=True,
        ),
    )
    op.create_index("ix_video_meeting_users_user_id", "video_meeting_users", ["user_id"])
    op.create_table(
        "video_guest_links",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "meeting_id",
            sa.Uuid(),
            sa.ForeignKey(
                "video_meetings.id", ondelete="CASCADE", name="fk_video_guest_links_meeting_id_video_meetings"
            ),
            nullable=False,
        ),
        sa.Column("label", sa.String(100), nullable=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column(
            "created_by",
            sa.Uuid(),
            sa.ForeignKey("users.id", name="fk_video_guest_links_created_by_users"),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("redeemed_at", UTCDateTime(), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("guest_name", sa.String(100), nullable=True),
        sa.Column("session_hash", sa.String(64), nullable=True),
        sa.Column("session_expires_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("secret_hash", name="uq_video_guest_links_secret_hash"),
        sa.UniqueConstraint("session_hash", name="uq_video_guest_links_session_hash"),
    )
    op.create_index("ix_video_guest_links_meeting_id", "video_guest_links", ["meeting_id"])


def downgrade() -> None:
    op.drop_table("video_guest_links")
    op.drop_table("video_meeting_users")
    op.drop_table("video_meeting_units")
    op.drop_table("video_meetings")
