"""staff board: logins, one-time password links, sessions, login throttles, access records

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:00:00

`staff_logins` holds each person's board login (argon2 hash, role); `staff_login_links`
the one-time set-password links and `staff_sessions` the signed-in browsers, both by
token hash only; `staff_login_throttles` the failed sign-ins per account and address;
`patient_access` who saw which patient's data on the board, and when.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staff_logins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_set_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_staff_logins_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_logins")),
        sa.UniqueConstraint("email", name=op.f("uq_staff_logins_email")),
    )
    op.create_table(
        "staff_login_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("login_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["login_id"],
            ["staff_logins.id"],
            name=op.f("fk_staff_login_links_login_id_staff_logins"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_login_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_login_links_token_hash")),
    )
    op.create_index(
        op.f("ix_staff_login_links_login_id"), "staff_login_links", ["login_id"], unique=False
    )
    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("login_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["login_id"], ["staff_logins.id"], name=op.f("fk_staff_sessions_login_id_staff_logins")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_sessions_token_hash")),
    )
    op.create_index(
        op.f("ix_staff_sessions_login_id"), "staff_sessions", ["login_id"], unique=False
    )
    op.create_table(
        "staff_login_throttles",
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_staff_login_throttles")),
    )
    op.create_table(
        "patient_access",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("login_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=True),
        sa.Column("page", sa.String(length=40), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_patient_access_appointment_id_appointments"),
        ),
        sa.ForeignKeyConstraint(
            ["login_id"], ["staff_logins.id"], name=op.f("fk_patient_access_login_id_staff_logins")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_patient_access_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_access")),
    )
    op.create_index(
        "ix_patient_access_patient_at", "patient_access", ["patient_id", "at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_patient_access_patient_at", table_name="patient_access")
    op.drop_table("patient_access")
    op.drop_table("staff_login_throttles")
    op.drop_index(op.f("ix_staff_sessions_login_id"), table_name="staff_sessions")
    op.drop_table("staff_sessions")
    op.drop_index(op.f("ix_staff_login_links_login_id"), table_name="staff_login_links")
    op.drop_table("staff_login_links")
    op.drop_table("staff_logins")
