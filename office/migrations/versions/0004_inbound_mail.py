"""inbound mail: stored messages with their routing, IMAP positions, acknowledgement log

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 12:30:00

`mail_messages` keeps each inbound message's raw bytes (stored before the server is
told anything) and where the rules routed it; `mailbox_states` the UIDVALIDITY and
last UID read per IMAP mailbox; `mail_ack_senders` the last acknowledgement per
sender, so each gets at most one per period.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(length=40), nullable=False),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("message_id", sa.String(length=250), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("server_ref", sa.String(length=200), nullable=True),
        sa.Column("server_done", sa.Boolean(), nullable=False),
        sa.Column("may_acknowledge", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "stored", "routed", "quarantined", name="mailstatus", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("sender", sa.String(length=254), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("queue", sa.String(length=300), nullable=True),
        sa.Column("rule", sa.String(length=80), nullable=True),
        sa.Column("decision", sa.JSON(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("bounced_outbox_id", sa.Integer(), nullable=True),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("routed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["bounced_outbox_id"],
            ["outbox.id"],
            name=op.f("fk_mail_messages_bounced_outbox_id_outbox"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_mail_messages_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_messages")),
        sa.UniqueConstraint("mailbox", "dedupe_key", name="uq_mail_messages_mailbox_key"),
    )
    op.create_index(
        "ix_mail_messages_status_mailbox", "mail_messages", ["status", "mailbox"], unique=False
    )
    op.create_index(
        "ix_mail_messages_queue_routed", "mail_messages", ["queue", "routed_at"], unique=False
    )
    op.create_table(
        "mailbox_states",
        sa.Column("mailbox", sa.String(length=40), nullable=False),
        sa.Column("uid_validity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mailbox", name=op.f("pk_mailbox_states")),
    )
    op.create_table(
        "mail_ack_senders",
        sa.Column("address", sa.String(length=254), nullable=False),
        sa.Column("last_ack_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mail_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mail_id"],
            ["mail_messages.id"],
            name=op.f("fk_mail_ack_senders_mail_id_mail_messages"),
        ),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_mail_ack_senders")),
    )


def downgrade() -> None:
    op.drop_table("mail_ack_senders")
    op.drop_table("mailbox_states")
    op.drop_index("ix_mail_messages_queue_routed", table_name="mail_messages")
    op.drop_index("ix_mail_messages_status_mailbox", table_name="mail_messages")
    op.drop_table("mail_messages")
