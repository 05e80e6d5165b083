"""patients: an index on date of birth, where matching an incoming record starts

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 22:30:00

A record without an MRN the practice knows is matched against the patients born on its date
of birth. Without this index each import chunk and each HL7 message read the whole patients
table, which grows with the practice.
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_patients_date_of_birth", "patients", ["date_of_birth"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_patients_date_of_birth", table_name="patients")
