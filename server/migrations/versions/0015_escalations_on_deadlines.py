"""Messaging escalation timers move onto the core deadline engine: every `message_escalations` row becomes
a `deadlines` row of kind `messaging.escalation` (reference: the receipt id; same id, unit, level, due
time, state and firing time; created now), and the old table is dropped. The downgrade restores it.

Revision ID: 0015_escalations_on_deadlines
Revises: 0014_hsa_local_search
Create Date: 2026-12-03
"""

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from server.core.db import UTCDateTime

revision: str = "0015_escalations_on_deadlines"
down_revision: str | Sequence[str] | None = "0014_hsa_local_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KIND = "messaging.escalation"
BATCH = 5000

deadlines = sa.table(
    "deadlines",
    sa.column("id", sa.Uuid()),
    sa.column("kind", sa.String()),
    sa.column("reference", sa.String()),
    sa.column("unit_id", sa.Uuid()),
    sa.column("level", sa.Integer()),
    sa.column("due_at", UTCDateTime()),
    sa.column("state", sa.String()),
    sa.column("created_at", UTCDateTime()),
    sa.column("fired_at", UTCDateTime()),
    sa.column("payload", sa.JSON()),
)
escalations = sa.table(
    "message_escalations",
    sa.column("id", sa.Uuid()),
    sa.column("receipt_id", sa.Uuid()),
    sa.column("message_id", sa.Uuid()),
    sa.column("unit_id", sa.Uuid()),
    sa.column("level", sa.Integer()),
    sa.column("due_at", UTCDateTime()),
    sa.column("state", sa.String()),
    sa.column("fired_at", UTCDateTime()),
)
receipts = sa.table("message_receipts", sa.column("id", sa.Uuid()), sa.column("message_id", sa.Uuid()))


def batches(query: sa.Select[Any], key: sa.ColumnElement[uuid.UUID]) -> Iterator[list[sa.RowMapping]]:
    """All rows of `query` in batches, by keyset on `key` (no cursor stays open while we write)."""
    connection = op.get_bind()
    last: uuid.UUID | None = None
    while True:
        page = query.order_by(key).limit(BATCH)
        if last is not None:
            page = page.where(key > last)
        rows = list(connection.execute(page).mappings())
        if not rows:
            return
        yield rows
        last = rows[-1][key.name]


def upgrade() -> None:
    connection = op.get_bind()
    now = datetime.now(UTC)
    for rows in batches(sa.select(escalations), escalations.c.id):
        connection.execute(
            deadlines.insert(),
            [
                {
                    "id": row["id"],
                    "kind": KIND,
                    "reference": str(row["receipt_id"]),
                    "unit_id": row["unit_id"],
                    "level": row["level"],
                    "due_at": row["due_at"],
                    "state": row["state"],
                    "created_at": now,
                    "fired_at": row["fired_at"],
                    "payload": None,
                }
                for row in rows
            ],
        )
    with op.batch_alter_table("message_escalations", schema=None) as batch_op:
        batch_op.drop_index("ix_message_escalations_state_due")
        batch_op.drop_index(batch_op.f("ix_message_escalations_receipt_id"))
    op.drop_table("message_escalations")


def downgrade() -> None:
    op.create_table(
        "message_escalations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("receipt_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["receipt_id"],
            ["message_receipts.id"],
            name=op.f("fk_message_escalations_receipt_id_message_receipts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_escalations")),
    )
    with op.batch_alter_table("message_escalations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_escalations_receipt_id"), ["receipt_id"], unique=False)
        batch_op.create_index("ix_message_escalations_state_due", ["state", "due_at"], unique=False)
    connection = op.get_bind()
    for rows in batches(sa.select(deadlines).where(deadlines.c.kind == KIND), deadlines.c.id):
        receipt_ids = {uuid.UUID(row["reference"]) for row in rows}
        found = connection.execute(sa.select(receipts).where(receipts.c.id.in_(receipt_ids))).all()
        message_of = {receipt_id: message_id for receipt_id, message_id in found}
        restored = [
            {
                "id": row["id"],
                "receipt_id": uuid.UUID(row["reference"]),
                "message_id": message_of[uuid.UUID(row["reference"])],
                "unit_id": row["unit_id"],
                "level": row["level"],
                "due_at": row["due_at"],
                "state": row["state"],
                "fired_at": row["fired_at"],
            }
            for row in rows
            if uuid.UUID(row["reference"]) in message_of and row["unit_id"] is not None
        ]  # a timer whose receipt is gone went with it before the engine (ON DELETE CASCADE)
        if restored:
            connection.execute(escalations.insert(), restored)
    connection.execute(deadlines.delete().where(deadlines.c.kind == KIND))
