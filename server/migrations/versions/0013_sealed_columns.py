"""Case references of discharge cases and audit rows, meeting titles and guest names sealed at rest
(issue 15 item 13; server/core/sealed_columns.py).

Case references get `case_ref_hmac`, their blind index, which replaces the clear-text index and, for
discharge cases, the uniqueness. Existing values are sealed with the configured key files
(server/migrations/sealing.py). Audit rows keep their hash chain: it covers the case reference
itself, which the chainer and the verifier open.

Revision ID: 0013_sealed_columns
Revises: 0012_deadlines
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from server.migrations.sealing import ClearColumn, refuse_to_unseal, seal_columns

revision: str = "0013_sealed_columns"
down_revision: str | Sequence[str] | None = "0012_deadlines"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    seal_columns([
        ClearColumn("discharge_cases", "case_ref", indexed=True, old_unique="uq_discharge_cases_case_ref"),
        # Audit rows are sealed before their seq exists: not bound to it (the hash chain covers the value).
        ClearColumn("audit_events", "case_ref", key="seq", bound=False, indexed=True,
                    old_index="ix_audit_events_case_ref"),
        ClearColumn("video_meetings", "title"),
        ClearColumn("video_guest_links", "guest_name"),
    ])  # fmt: skip


def downgrade() -> None:
    refuse_to_unseal(revision)
