"""Identity: browser sessions, logout-token replay cache, permission-change feed, built-in provider tables.

Revision ID: 0002_identity
Revises: 0001_core
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.core.db import UTCDateTime

revision: str = "0002_identity"
down_revision: str | Sequence[str] | None = "0001_core"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _user_fk(table: str) -> sa.ForeignKey:
    return sa.ForeignKey("users.id", ondelete="CASCADE", name=f"fk_{table}_user_id_users")


def upgrade() -> None:
    op.create_table(
        "sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Uuid(), _user_fk("sessions"), nullable=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("issuer", sa.String(300), nullable=True),
        sa.Column("idp_sid", sa.String(255), nullable=True),
        sa.Column("acr", sa.String(200), nullable=True),
        sa.Column("amr", sa.JSON(), nullable=False),
        sa.Column("id_token", sa.String(8000), nullable=True),
        sa.Column("pending", sa.JSON(), nullable=False),
        sa.Column("user_agent", sa.String(300), nullable=True),
    )
    op.create_index("ix_sessions_user_id", "sessions", ["user_id"])
    op.create_index("ix_sessions_expires_at", "sessions", ["expires_at"])
    op.create_index("ix_sessions_idp_sid", "sessions", ["idp_sid"])
    op.create_table(
        "logout_tokens_seen",
        sa.Column("issuer", sa.String(300), primary_key=True),
        sa.Column("jti", sa.String(255), primary_key=True),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_logout_tokens_seen_expires_at", "logout_tokens_seen", ["expires_at"])
    op.create_table(
        "identity_changes",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("session_hash", sa.String(64), nullable=True),
    )
    op.create_table(
        "op_accounts",
        sa.Column("user_id", sa.Uuid(), _user_fk("op_accounts"), primary_key=True),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("totp_secret", sa.String(64), nullable=True),
        sa.Column("totp_confirmed", sa.Boolean(), nullable=False),
        sa.Column("totp_last_step", sa.Integer(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "op_clients",
        sa.Column("client_id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=True),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("post_logout_redirect_uris", sa.JSON(), nullable=False),
        sa.Column("backchannel_logout_uri", sa.String(500), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "op_codes",
        sa.Column("code_hash", sa.String(64), primary_key=True),
        sa.Column("client_id", sa.String(100), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("redirect_uri", sa.String(500), nullable=False),
        sa.Column("scope", sa.String(300), nullable=False),
        sa.Column("nonce", sa.String(255), nullable=True),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("code_challenge_method", sa.String(10), nullable=False),
        sa.Column("sid", sa.String(64), nullable=False),
        sa.Column("auth_time", sa.Integer(), nullable=False),
        sa.Column("acr", sa.String(100), nullable=False),
        sa.Column("amr", sa.JSON(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_op_codes_expires_at", "op_codes", ["expires_at"])
    op.create_table(
        "op_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("sid", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Uuid(), _user_fk("op_sessions"), nullable=False),
        sa.Column("auth_time", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("acr", sa.String(100), nullable=False),
        sa.Column("amr", sa.JSON(), nullable=False),
        sa.Column("client_ids", sa.JSON(), nullable=False),
        sa.UniqueConstraint("sid", name="uq_op_sessions_sid"),
    )
    op.create_index("ix_op_sessions_user_id", "op_sessions", ["user_id"])


def downgrade() -> None:
    for table in (
        "op_sessions",
        "op_codes",
        "op_clients",
        "op_accounts",
        "identity_changes",
        "logout_tokens_seen",
        "sessions",
    ):
        op.drop_table(table)
