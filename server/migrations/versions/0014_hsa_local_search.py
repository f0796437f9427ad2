"""Search by an HSA-id's local part ("7AV52" for SE2321000016-7AV52), any case: an expression index.

Revision ID: 0014_hsa_local_search
Revises: 0013_sealed_columns
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014_hsa_local_search"
down_revision: str | Sequence[str] | None = "0013_sealed_columns"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Same expressions as server/directory/search.py (hsa_local); the name keeps it out of autogenerate
# (directory models: UNMANAGED_PREFIX).
EXPRESSIONS = {
    "sqlite": "upper(substr(hsa_id, instr(hsa_id, '-') + 1))",
    "postgresql": "upper(split_part(hsa_id, '-', 2))",
}


def upgrade() -> None:
    expression = EXPRESSIONS[op.get_bind().dialect.name]
    op.execute(f"CREATE INDEX unit_search_hsa_local ON units ({expression})")


def downgrade() -> None:
    op.execute("DROP INDEX unit_search_hsa_local")
