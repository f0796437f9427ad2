"""Membership-admin grants: who may manage an organisation's unit memberships besides unit admins (PDL).

Revision ID: 0010_membership_admin_grants
Revises: 0009_sealed_totp
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.core.db import UTCDateTime

revision: str = "0010_membership_admin_grants"
down_revision: str | Sequence[str] | None = "0009_sealed_totp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "membership_admin_grants",
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column(
            "organisation_id", sa.Uuid(), sa.ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("granted_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("membership_admin_grants")
