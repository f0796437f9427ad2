"""The message feed loses its index on message_id (issue 19): nothing looks feed rows up by message
(`sync` reads them by seq and conversation), yet every new message, receipt, edit and escalation
wrote a page of it. One WAL page less per message sent (bench/peers.py prints pages per message).

Revision ID: 0019_feed_without_message_index
Revises: 0018_public_practitioners
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019_feed_without_message_index"
down_revision: str | Sequence[str] | None = "0018_public_practitioners"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_message_feed_message_id", table_name="message_feed")


def downgrade() -> None:
    op.create_index("ix_message_feed_message_id", "message_feed", ["message_id"])
