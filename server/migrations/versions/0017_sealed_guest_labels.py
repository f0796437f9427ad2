"""Guest-link labels sealed at rest like guest names (issue 15 item 13): a host's note such as
"Anhörig till <name>" may name the patient.

Revision ID: 0017_sealed_guest_labels
Revises: 0016_sealed_conversations
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from server.migrations.sealing import ClearColumn, refuse_to_unseal, seal_columns

revision: str = "0017_sealed_guest_labels"
down_revision: str | Sequence[str] | None = "0016_sealed_conversations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    seal_columns([ClearColumn("video_guest_links", "label")])


def downgrade() -> None:
    refuse_to_unseal(revision)
