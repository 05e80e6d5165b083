"""work queue: one index covering the board's counts and order

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 14:30:00

`ix_work_items_queue` (status, kind, priority, role, due_at, assignee_id) replaces
`ix_work_items_status_kind`: Today's counts per kind and its first page are read from the
index alone instead of 10,000 table rows (SQLite: 24 ms to 1 ms for the counts).
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = ["status", "kind", "priority", "role", "due_at", "assignee_id"]


def upgrade() -> None:
    op.drop_index("ix_work_items_status_kind", table_name="work_items")
    op.create_index("ix_work_items_queue", "work_items", COLUMNS, unique=False)


def downgrade() -> None:
    op.drop_index("ix_work_items_queue", table_name="work_items")
    op.create_index("ix_work_items_status_kind", "work_items", ["status", "kind"], unique=False)
