"""Partial indexes for the inbox counts: open receipts per unit, open escalations.

Revision ID: 0007_receipt_open_indexes
Revises: 0006_ops
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_receipt_open_indexes"
down_revision: str | Sequence[str] | None = "0006_ops"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Same text as server/messaging/models.py (RECEIPT_OPEN, RECEIPT_ESCALATED_OPEN) at this revision.
OPEN = "returned_at IS NULL AND (read_at IS NULL OR acknowledged_at IS NULL)"
ESCALATED_OPEN = "escalated_at IS NOT NULL AND acknowledged_at IS NULL AND returned_at IS NULL"


def upgrade() -> None:
    for name, column, where in (
        ("ix_message_receipts_open_unit", "unit_id", OPEN),
        ("ix_message_receipts_escalated_open", "message_id", ESCALATED_OPEN),
    ):
        op.create_index(
            name, "message_receipts", [column], sqlite_where=sa.text(where), postgresql_where=sa.text(where)
        )


def downgrade() -> None:
    op.drop_index("ix_message_receipts_escalated_open", table_name="message_receipts")
    op.drop_index("ix_message_receipts_open_unit", table_name="message_receipts")
