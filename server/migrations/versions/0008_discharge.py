"""Discharge cases (units, milestones, clock escalations, per-region clock rules) and deviation reports.

Revision ID: 0008_discharge
Revises: 0007_receipt_open_indexes
Create Date: 2026-12-02 18:37:21.908776
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from server.core.db import UTCDateTime

revision: str = "0008_discharge"
down_revision: str | Sequence[str] | None = "0007_receipt_open_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "discharge_clock_rules",
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("admission_notice_hours", sa.Integer(), nullable=False),
        sa.Column("sip_call_days", sa.Integer(), nullable=False),
        sa.Column("payment_days", sa.Integer(), nullable=False),
        sa.Column("payment_day_kind", sa.String(length=10), nullable=False),
        sa.Column("escalation_minutes", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_discharge_clock_rules_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("organisation_id", name=op.f("pk_discharge_clock_rules")),
    )
    op.create_table(
        "deviation_reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reporter_user_id", sa.Uuid(), nullable=False),
        sa.Column("reporter_unit_id", sa.Uuid(), nullable=True),
        sa.Column("reporter_name", sa.String(length=200), nullable=False),
        sa.Column("reporter_phone", sa.String(length=40), nullable=True),
        sa.Column("reporter_email", sa.String(length=254), nullable=True),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("organisation_ids", sa.JSON(), nullable=False),
        sa.Column("unit_ids", sa.JSON(), nullable=False),
        sa.Column("route_id", sa.Uuid(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("answered_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["answered_by_user_id"], ["users.id"], name=op.f("fk_deviation_reports_answered_by_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["reporter_unit_id"], ["units.id"], name=op.f("fk_deviation_reports_reporter_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["reporter_user_id"], ["users.id"], name=op.f("fk_deviation_reports_reporter_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deviation_reports")),
    )
    with op.batch_alter_table("deviation_reports", schema=None) as batch_op:
        batch_op.create_index("ix_deviation_reports_category_occurred_on", ["category", "occurred_on"], unique=False)
        batch_op.create_index(batch_op.f("ix_deviation_reports_reporter_user_id"), ["reporter_user_id"], unique=False)

    op.create_table(
        "discharge_cases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_ref", sa.String(length=64), nullable=False),
        sa.Column("municipality_code", sa.String(length=4), nullable=False),
        sa.Column("district", sa.String(length=40), nullable=True),
        sa.Column("age_band", sa.String(length=8), nullable=False),
        sa.Column("ward_unit_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("unplanned", sa.Boolean(), nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=True),
        sa.Column("admitted_at", UTCDateTime(), nullable=False),
        sa.Column("admission_notice_at", UTCDateTime(), nullable=True),
        sa.Column("planning_started_at", UTCDateTime(), nullable=True),
        sa.Column("ready_at", UTCDateTime(), nullable=True),
        sa.Column("sip_called_at", UTCDateTime(), nullable=True),
        sa.Column("sip_held_at", UTCDateTime(), nullable=True),
        sa.Column("payment_from", UTCDateTime(), nullable=True),
        sa.Column("discharged_at", UTCDateTime(), nullable=True),
        sa.Column("discharge_month", sa.String(length=7), nullable=True),
        sa.Column("ready_days", sa.Integer(), nullable=False),
        sa.Column("payment_days", sa.Integer(), nullable=False),
        sa.Column("readmitted_7d", sa.Boolean(), nullable=False),
        sa.Column("created_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_user_id"], ["users.id"], name=op.f("fk_discharge_cases_created_by_user_id_users")
        ),
        sa.ForeignKeyConstraint(["ward_unit_id"], ["units.id"], name=op.f("fk_discharge_cases_ward_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discharge_cases")),
        sa.UniqueConstraint("case_ref", name=op.f("uq_discharge_cases_case_ref")),
    )
    with op.batch_alter_table("discharge_cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_discharge_cases_statistics",
            [
                "discharge_month",
                "municipality_code",
                "district",
                "age_band",
                "readmitted_7d",
                "ready_days",
                "payment_days",
            ],
            unique=False,
        )
        batch_op.create_index(
            "ix_discharge_cases_patient_key_admitted_at", ["patient_key", "admitted_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_discharge_cases_ward_unit_id"), ["ward_unit_id"], unique=False)

    op.create_table(
        "discharge_case_units",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=30), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["discharge_cases.id"],
            name=op.f("fk_discharge_case_units_case_id_discharge_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_discharge_case_units_unit_id_units")),
        sa.PrimaryKeyConstraint("case_id", "unit_id", name=op.f("pk_discharge_case_units")),
    )
    with op.batch_alter_table("discharge_case_units", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_discharge_case_units_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "discharge_clock_escalations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("clock", sa.String(length=30), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=True),
        sa.Column("route", sa.JSON(), nullable=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["discharge_cases.id"],
            name=op.f("fk_discharge_clock_escalations_case_id_discharge_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discharge_clock_escalations")),
    )
    with op.batch_alter_table("discharge_clock_escalations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_discharge_clock_escalations_case_id"), ["case_id"], unique=False)

    op.create_table(
        "discharge_milestones",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("effective_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("by_user_id", sa.Uuid(), nullable=True),
        sa.Column("by_unit_id", sa.Uuid(), nullable=True),
        sa.Column("message_id", sa.Uuid(), nullable=True),
        sa.Column("meeting_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["by_unit_id"], ["units.id"], name=op.f("fk_discharge_milestones_by_unit_id_units")),
        sa.ForeignKeyConstraint(["by_user_id"], ["users.id"], name=op.f("fk_discharge_milestones_by_user_id_users")),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["discharge_cases.id"],
            name=op.f("fk_discharge_milestones_case_id_discharge_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discharge_milestones")),
    )
    with op.batch_alter_table("discharge_milestones", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_discharge_milestones_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("discharge_milestones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_discharge_milestones_case_id"))

    op.drop_table("discharge_milestones")
    with op.batch_alter_table("discharge_clock_escalations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_discharge_clock_escalations_case_id"))

    op.drop_table("discharge_clock_escalations")
    with op.batch_alter_table("discharge_case_units", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_discharge_case_units_unit_id"))

    op.drop_table("discharge_case_units")
    with op.batch_alter_table("discharge_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_discharge_cases_ward_unit_id"))
        batch_op.drop_index("ix_discharge_cases_patient_key_admitted_at")
        batch_op.drop_index("ix_discharge_cases_statistics")

    op.drop_table("discharge_cases")
    with op.batch_alter_table("deviation_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deviation_reports_reporter_user_id"))
        batch_op.drop_index("ix_deviation_reports_category_occurred_on")

    op.drop_table("deviation_reports")
    op.drop_table("discharge_clock_rules")
