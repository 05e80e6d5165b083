"""onboarding: checklists, their items, and the practice's closed days

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 16:00:00

`checklists` holds one person's onboarding (from the start date) or offboarding (to the
last day), built from a role template whose version it keeps; `checklist_items` its items,
copied from the template with owners, due dates, dependencies, evidence and what each
grants or revokes; `practice_closed_days` the days the practice is closed besides the US
federal holidays, which are not business days.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=16)


def upgrade() -> None:
    op.create_table(
        "practice_closed_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("added_by", sa.String(length=80), nullable=False),
        _when("added_at"),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_practice_closed_days")),
    )
    op.create_table(
        "checklists",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("kind", _enum("checklistkind", "onboarding", "offboarding"), nullable=False),
        sa.Column("template", sa.String(length=40), nullable=False),
        sa.Column("template_version", sa.String(length=64), nullable=False),
        sa.Column("anchor_on", sa.Date(), nullable=False),
        sa.Column("status", _enum("checkliststatus", "open", "done", "withdrawn"), nullable=False),
        sa.Column("basis", sa.String(length=16), nullable=False),
        _when("created_at"),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        _when("closed_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_checklists_staff_id_staff")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checklists")),
        sa.UniqueConstraint(
            "staff_id", "kind", "anchor_on", name="uq_checklists_staff_kind_anchor"
        ),
    )
    op.create_index("ix_checklists_staff_id", "checklists", ["staff_id"], unique=False)
    op.create_index("ix_checklists_status_kind", "checklists", ["status", "kind"], unique=False)
    op.create_table(
        "checklist_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checklist_id", sa.Integer(), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=40), nullable=False),
        sa.Column("owner_role", sa.String(length=40), nullable=True),
        sa.Column("owner_staff_id", sa.Integer(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("depends_on", sa.JSON(), nullable=False),
        sa.Column("evidence_required", sa.JSON(), nullable=False),
        sa.Column("required_by_law", sa.Boolean(), nullable=False),
        sa.Column("access", sa.String(length=60), nullable=True),
        sa.Column("recur_months", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            _enum("itemstatus", "open", "done", "skipped", "withdrawn"),
            nullable=False,
        ),
        sa.Column("released_on", sa.Date(), nullable=True),
        sa.Column("reminded_on", sa.Date(), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("escalated_on", sa.Date(), nullable=True),
        sa.Column("completed_on", sa.Date(), nullable=True),
        _when("completed_at", nullable=True),
        sa.Column("completed_by", sa.String(length=80), nullable=True),
        sa.Column("completed_via", sa.String(length=16), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("renewal_of_id", sa.Integer(), nullable=True),
        sa.Column("revokes_item_id", sa.Integer(), nullable=True),
        sa.Column("closed_reason", sa.Text(), nullable=True),
        _when("created_at"),
        _when("updated_at"),
        sa.ForeignKeyConstraint(
            ["checklist_id"],
            ["checklists.id"],
            name=op.f("fk_checklist_items_checklist_id_checklists"),
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name=op.f("fk_checklist_items_staff_id_staff")
        ),
        sa.ForeignKeyConstraint(
            ["owner_staff_id"],
            ["staff.id"],
            name=op.f("fk_checklist_items_owner_staff_id_staff"),
        ),
        sa.ForeignKeyConstraint(
            ["renewal_of_id"],
            ["checklist_items.id"],
            name=op.f("fk_checklist_items_renewal_of_id_checklist_items"),
        ),
        sa.ForeignKeyConstraint(
            ["revokes_item_id"],
            ["checklist_items.id"],
            name=op.f("fk_checklist_items_revokes_item_id_checklist_items"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checklist_items")),
        sa.UniqueConstraint("checklist_id", "key", "occurrence", name="uq_checklist_items_key"),
    )
    op.create_index(
        "ix_checklist_items_checklist_id", "checklist_items", ["checklist_id"], unique=False
    )
    op.create_index(
        "ix_checklist_items_status_due", "checklist_items", ["status", "due_on"], unique=False
    )
    op.create_index(
        "ix_checklist_items_owner_status",
        "checklist_items",
        ["owner_staff_id", "status"],
        unique=False,
    )
    op.create_index(
        "ix_checklist_items_staff_status", "checklist_items", ["staff_id", "status"], unique=False
    )
    op.create_index(
        "ix_checklist_items_renewal_of", "checklist_items", ["renewal_of_id"], unique=False
    )


def downgrade() -> None:
    op.drop_table("checklist_items")
    op.drop_table("checklists")
    op.drop_table("practice_closed_days")
