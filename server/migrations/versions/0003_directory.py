"""Directory: unit address/aliases/validity, contact routes, time spans, closures, endpoints, affiliations,
version history and the search index (SQLite FTS5 via triggers; PostgreSQL pg_trgm + unaccent).

Revision ID: 0003_directory
Revises: 0002_identity
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.core.db import UTCDateTime

revision: str = "0003_directory"
down_revision: str | Sequence[str] | None = "0002_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_SEARCH = [
    # Folded text is written by the application (server.directory.text.fold); unicode61 with
    # remove_diacritics 2 folds anything that arrives unfolded. Prefix indexes make `term*` cheap.
    "CREATE VIRTUAL TABLE unit_search USING fts5(name, body, "
    "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3 4', detail = 'column')",
    "CREATE VIRTUAL TABLE unit_search_vocab USING fts5vocab(unit_search, 'row')",
    "CREATE TRIGGER unit_search_ai AFTER INSERT ON units WHEN new.search_key IS NOT NULL BEGIN "
    "INSERT INTO unit_search(rowid, name, body) VALUES (new.search_key, new.search_name, new.search_text); END",
    "CREATE TRIGGER unit_search_ad AFTER DELETE ON units WHEN old.search_key IS NOT NULL BEGIN "
    "DELETE FROM unit_search WHERE rowid = old.search_key; END",
    "CREATE TRIGGER unit_search_au AFTER UPDATE OF search_name, search_text, search_key ON units BEGIN "
    "DELETE FROM unit_search WHERE rowid = old.search_key; "
    "INSERT INTO unit_search(rowid, name, body) SELECT new.search_key, new.search_name, new.search_text "
    "WHERE new.search_key IS NOT NULL; END",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    # Plain ADD COLUMN (no table rebuild: rebuilding `units` would cascade-delete memberships on SQLite).
    for column in (
        sa.Column("source", sa.String(20), nullable=False, server_default="manual"),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
    ):
        op.add_column("organisations", column)
    for column in (
        sa.Column("aliases", sa.JSON(), nullable=False, server_default="[]"),
        sa.Column("street", sa.String(200), nullable=True),
        sa.Column("postal_code", sa.String(5), nullable=True),
        sa.Column("town", sa.String(100), nullable=True),
        sa.Column("description", sa.String(1000), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("search_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("search_text", sa.String(2000), nullable=False, server_default=""),
        sa.Column("search_key", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(20), nullable=False, server_default="manual"),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
    ):
        op.add_column("units", column)
    op.create_index("ix_units_search_key", "units", ["search_key"], unique=True)
    op.create_index("ix_units_search_name", "units", ["search_name", "id"])

    op.create_table(
        "directory_endpoints",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "organisation_id",
            sa.Uuid(),
            sa.ForeignKey(
                "organisations.id", ondelete="CASCADE", name="fk_directory_endpoints_organisation_id_organisations"
            ),
            nullable=True,
        ),
        sa.Column(
            "unit_id",
            sa.Uuid(),
            sa.ForeignKey("units.id", ondelete="CASCADE", name="fk_directory_endpoints_unit_id_units"),
            nullable=True,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("connection_type", sa.String(40), nullable=False),
        sa.Column("address", sa.String(500), nullable=False),
        sa.Column("payload_types", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_directory_endpoints_unit_id", "directory_endpoints", ["unit_id"])
    op.create_table(
        "contact_routes",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "unit_id",
            sa.Uuid(),
            sa.ForeignKey("units.id", ondelete="CASCADE", name="fk_contact_routes_unit_id_units"),
            nullable=False,
        ),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("value", sa.String(300), nullable=False),
        sa.Column("audience", sa.String(10), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(1000), nullable=True),
        sa.Column(
            "endpoint_id",
            sa.Uuid(),
            sa.ForeignKey(
                "directory_endpoints.id", ondelete="SET NULL", name="fk_contact_routes_endpoint_id_directory_endpoints"
            ),
            nullable=True,
        ),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_contact_routes_unit_id", "contact_routes", ["unit_id"])
    op.create_table(
        "time_spans",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "route_id",
            sa.Uuid(),
            sa.ForeignKey("contact_routes.id", ondelete="CASCADE", name="fk_time_spans_route_id_contact_routes"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("from_day", sa.Integer(), nullable=False),
        sa.Column("to_day", sa.Integer(), nullable=False),
        sa.Column("all_day", sa.Boolean(), nullable=False),
        sa.Column("from_time", sa.Time(), nullable=True),
        sa.Column("to_time", sa.Time(), nullable=True),
        sa.Column("from_date", sa.Date(), nullable=True),
        sa.Column("to_date", sa.Date(), nullable=True),
        sa.Column("holiday_rule", sa.String(20), nullable=False),
        sa.Column("comment", sa.String(200), nullable=True),
    )
    op.create_index("ix_time_spans_route_id", "time_spans", ["route_id"])
    op.create_table(
        "directory_closures",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "unit_id",
            sa.Uuid(),
            sa.ForeignKey("units.id", ondelete="CASCADE", name="fk_directory_closures_unit_id_units"),
            nullable=False,
        ),
        sa.Column(
            "route_id",
            sa.Uuid(),
            sa.ForeignKey(
                "contact_routes.id", ondelete="CASCADE", name="fk_directory_closures_route_id_contact_routes"
            ),
            nullable=True,
        ),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
    )
    op.create_index("ix_directory_closures_unit_id", "directory_closures", ["unit_id"])
    op.create_table(
        "directory_affiliations",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("primary_id", sa.Uuid(), nullable=False),
        sa.Column("participating_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(60), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_directory_affiliations_primary_id", "directory_affiliations", ["primary_id"])
    op.create_index("ix_directory_affiliations_participating_id", "directory_affiliations", ["participating_id"])
    op.create_table(
        "directory_versions",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("resource_type", sa.String(20), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("operation", sa.String(10), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("diff", sa.JSON(), nullable=False),
    )
    op.create_index(
        "uq_directory_versions_object", "directory_versions", ["resource_type", "resource_id", "version"], unique=True
    )
    op.create_index("ix_directory_versions_type_at", "directory_versions", ["resource_type", "at"])

    if dialect == "sqlite":
        for statement in SQLITE_SEARCH:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        op.execute("CREATE INDEX unit_search_trgm ON units USING gin (search_text gin_trgm_ops)")
        op.execute("CREATE INDEX unit_search_name_trgm ON units USING gin (search_name gin_trgm_ops)")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in ("unit_search_ai", "unit_search_ad", "unit_search_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS unit_search_vocab")
        op.execute("DROP TABLE IF EXISTS unit_search")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS unit_search_trgm")
        op.execute("DROP INDEX IF EXISTS unit_search_name_trgm")
    for table in (
        "directory_versions",
        "directory_affiliations",
        "directory_closures",
        "time_spans",
        "contact_routes",
        "directory_endpoints",
    ):
        op.drop_table(table)
    op.drop_index("ix_units_search_name", "units")
    op.drop_index("ix_units_search_key", "units")
    with op.batch_alter_table("units") as batch:
        for column in (
            "aliases",
            "street",
            "postal_code",
            "town",
            "description",
            "valid_from",
            "valid_to",
            "search_name",
            "search_text",
            "search_key",
            "source",
            "updated_by",
            "deleted_at",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("organisations") as batch:
        for column in ("source", "updated_by", "deleted_at"):
            batch.drop_column(column)
