"""What migrations that seal a clear-text column share (server/core/sealed_columns.py describes the columns).

`seal_column` adds `<column>_kek`/`<column>_enc` (and `<column>_hmac`, the blind index), seals every
existing value with the key files of the configured settings (as `brygga serve` reads them; created
only if missing, like 0009), and drops the clear-text column with its index or unique constraint.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from alembic import op

from server.core import keyfiles
from server.core.envelope import Envelope, KeyRing, Sealer
from server.core.sealed_columns import column_aad


@dataclass(frozen=True)
class ClearColumn:
    table: str
    column: str
    key: str = "id"  # primary key; bound into the associated data unless `bound` is False
    bound: bool = True
    indexed: bool = False  # add `<column>_hmac`
    old_index: str | None = None  # clear-text index to drop
    old_unique: str | None = None  # clear-text unique constraint: the blind index becomes unique instead


def _sealer() -> Sealer:
    from server.settings import Settings

    settings = Settings()
    path = settings.effective_key_file
    envelope = Envelope(KeyRing(path, create=not path.exists()))
    return Sealer(envelope, keyfiles.secret(settings.effective_index_key_file))


def seal_columns(columns: list[ClearColumn]) -> None:
    for spec in columns:
        with op.batch_alter_table(spec.table) as batch:
            batch.add_column(sa.Column(f"{spec.column}_kek", sa.String(64), nullable=True))
            batch.add_column(sa.Column(f"{spec.column}_enc", sa.LargeBinary(), nullable=True))
            if spec.indexed:
                batch.add_column(sa.Column(f"{spec.column}_hmac", sa.String(64), nullable=True))
    connection = op.get_bind()
    sealer: Sealer | None = None
    for spec in columns:
        table, column, key = spec.table, spec.column, spec.key
        # Table and column names come from the migration's fixed specs; values are bound parameters.
        query = f"SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL"  # noqa: S608  # nosec B608
        index = f", {column}_hmac = :hmac" if spec.indexed else ""
        store = f"UPDATE {table} SET {column}_kek = :kek, {column}_enc = :enc{index} WHERE {key} = :id"  # noqa: S608  # nosec B608
        for row_id, value in connection.execute(sa.text(query)).all():
            sealer = sealer or _sealer()  # the key files are opened (or created) only if there is a value
            row = (row_id if isinstance(row_id, uuid.UUID) else uuid.UUID(str(row_id))) if spec.bound else None
            sealed = sealer.seal_value(column_aad(table, row, column), value)
            values = {"kek": sealed.kek_id, "enc": sealed.blob, "hmac": sealer.blind_index(value), "id": row_id}
            connection.execute(sa.text(store), values)
    for spec in columns:
        with op.batch_alter_table(spec.table) as batch:
            if spec.old_index:
                batch.drop_index(spec.old_index)
            if spec.old_unique:
                batch.drop_constraint(spec.old_unique, type_="unique")
            batch.drop_column(spec.column)
            if spec.old_unique:
                batch.create_unique_constraint(f"uq_{spec.table}_{spec.column}_hmac", [f"{spec.column}_hmac"])
            elif spec.indexed:
                batch.create_index(f"ix_{spec.table}_{spec.column}_hmac", [f"{spec.column}_hmac"])


def refuse_to_unseal(revision: str) -> None:
    """In a sealing migration's `downgrade()`: values are never put back in clear text."""
    raise RuntimeError(
        f"refusing to downgrade below {revision}: sealed values are not written back in clear text. To go back "
        "to an older release, restore the backup taken before the upgrade (docs/operations.md)."
    )
