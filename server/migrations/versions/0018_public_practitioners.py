"""Public practitioners (issue 14, mCSD Practitioner/PractitionerRole): a unit membership may be published in
the directory (`public`, false by default: nobody is published without a decision) with a role title and
an optional role code; `public_id` is the PractitionerRole id, given on first publication and kept.

Revision ID: 0018_public_practitioners
Revises: 0017_sealed_guest_labels
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_public_practitioners"
down_revision: str | Sequence[str] | None = "0017_sealed_guest_labels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("memberships") as batch:
        batch.add_column(sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("role_title", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("role_code", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("public_id", sa.Uuid(), nullable=True))
        batch.create_index("ix_memberships_public_id", ["public_id"], unique=True)


def downgrade() -> None:
    """Drops the publication columns (who was published and their titles); the FHIR version rows of
    Practitioner/PractitionerRole stay in directory_versions, where older code does not read them."""
    with op.batch_alter_table("memberships") as batch:
        batch.drop_index("ix_memberships_public_id")
        for column in ("public_id", "role_code", "role_title", "public"):
            batch.drop_column(column)
