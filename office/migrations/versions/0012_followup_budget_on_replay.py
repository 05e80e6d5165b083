"""followups: the attempt count at the last replay, so a replay starts a fresh budget

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 09:20:00

A replayed inbox item puts its follow-ups back to pending. One that had given up kept its
four attempts and so gave up again after a single failure. The attempt numbers must go on
counting (each attempt's Prefect run is keyed by its number), so the budget is counted from
this baseline instead.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "followups",
        sa.Column("attempts_at_replay", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    # SQLite drops a plain column in place (3.35+), as 0009 does with coverages.version.
    op.drop_column("followups", "attempts_at_replay")
