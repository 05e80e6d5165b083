"""eligibility checks and patient link uses

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 23:37:44.531322
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "eligibility_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trace", sa.String(length=40), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=True),
        sa.Column("coverage_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("payer_id", sa.Integer(), nullable=False),
        sa.Column("date_of_service", sa.Date(), nullable=False),
        sa.Column("service_type", sa.String(length=3), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "active",
                "inactive",
                "unverified",
                "error",
                name="checkstatus",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_key", sa.String(length=80), nullable=True),
        sa.Column("request_summary", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("raw_format", sa.String(length=8), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("copay", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("deductible_remaining", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("plan_end", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_eligibility_checks_appointment_id_appointments"),
        ),
        sa.ForeignKeyConstraint(
            ["coverage_id"],
            ["coverages.id"],
            name=op.f("fk_eligibility_checks_coverage_id_coverages"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_eligibility_checks_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"], ["payers.id"], name=op.f("fk_eligibility_checks_payer_id_payers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_eligibility_checks")),
        sa.UniqueConstraint("trace", name=op.f("uq_eligibility_checks_trace")),
    )
    with op.batch_alter_table("eligibility_checks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_eligibility_checks_appointment", ["appointment_id", "checked_at"], unique=False
        )
        batch_op.create_index(
            "ix_eligibility_checks_coverage_dos", ["coverage_id", "date_of_service"], unique=False
        )

    op.create_table(
        "link_uses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_link_uses_appointment_id_appointments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_uses")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_link_uses_token_hash")),
    )


def downgrade() -> None:

    op.drop_table("link_uses")
    with op.batch_alter_table("eligibility_checks", schema=None) as batch_op:
        batch_op.drop_index("ix_eligibility_checks_coverage_dos")
        batch_op.drop_index("ix_eligibility_checks_appointment")

    op.drop_table("eligibility_checks")
