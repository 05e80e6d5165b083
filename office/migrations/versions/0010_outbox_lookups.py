"""outbox: indexes for finding a sent message by its Message-ID or its recipient

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 19:00:00

A bounce report names the message it bounces (Message-ID) or, failing that, the address
it failed for; route-mail finds the outbox row from either. Without these indexes each
batch's lookup read the whole outbox, which grows with every reminder the practice sends.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_message_id", "outbox", ["message_id"], unique=False)
    op.create_index("ix_outbox_recipient_status", "outbox", ["recipient", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_recipient_status", table_name="outbox")
    op.drop_index("ix_outbox_message_id", table_name="outbox")
