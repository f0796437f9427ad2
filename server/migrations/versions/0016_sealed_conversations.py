"""Conversation subjects and case references sealed at rest (issue 15 item 13; server/core/sealed_columns.py).

`case_ref_hmac`, the blind index, replaces the clear-text index on `case_ref`; existing values are
sealed with the configured key files (server/migrations/sealing.py).

Revision ID: 0016_sealed_conversations
Revises: 0015_escalations_on_deadlines
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from server.migrations.sealing import ClearColumn, refuse_to_unseal, seal_columns

revision: str = "0016_sealed_conversations"
down_revision: str | Sequence[str] | None = "0015_escalations_on_deadlines"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    seal_columns([
        ClearColumn("conversations", "subject"),
        ClearColumn("conversations", "case_ref", indexed=True, old_index="ix_conversations_case_ref"),
    ])  # fmt: skip


def downgrade() -> None:
    refuse_to_unseal(revision)
