"""records in: sender ids, record reviews, "not a duplicate" decisions, follow-ups

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 15:00:00

`patient_identifiers` maps a sending system's patient id to ours; `record_reviews` holds
record changes waiting for a person (possible duplicates, patients' own edits of reviewed
fields, stale updates, merges) with their diff; `distinct_patients` remembers "not a
duplicate"; `followups` records what must run after an inbound payload, before it runs.
`coverages.version` gives coverages the optimistic concurrency patients have;
`patients.merged_into_id` marks a record a person merged into another.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "patient_identifiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=80), nullable=False),
        sa.Column("value", sa.String(length=80), nullable=False),
        _when("created_at"),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_patient_identifiers_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_identifiers")),
        sa.UniqueConstraint("system", "value", name="uq_patient_identifiers_key"),
    )
    op.create_index(
        op.f("ix_patient_identifiers_patient_id"), "patient_identifiers", ["patient_id"]
    )
    op.create_table(
        "record_reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("inbox_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("submitter", sa.String(length=16), nullable=False),
        sa.Column("proposed", sa.JSON(), nullable=False),
        sa.Column("current", sa.JSON(), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=True),
        _when("created_at"),
        sa.Column("decided_by", sa.String(length=80), nullable=True),
        _when("decided_at", nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("result_patient_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_record_reviews_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["inbox_id"], ["inbox.id"], name=op.f("fk_record_reviews_inbox_id_inbox")
        ),
        sa.ForeignKeyConstraint(
            ["result_patient_id"],
            ["patients.id"],
            name=op.f("fk_record_reviews_result_patient_id_patients"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_record_reviews")),
    )
    op.create_index(op.f("ix_record_reviews_patient_id"), "record_reviews", ["patient_id"])
    op.create_index("ix_record_reviews_status_kind", "record_reviews", ["status", "kind"])
    op.create_table(
        "distinct_patients",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("other_patient_id", sa.Integer(), nullable=False),
        sa.Column("decided_by", sa.String(length=80), nullable=False),
        _when("decided_at"),
        sa.Column("review_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_distinct_patients_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["other_patient_id"],
            ["patients.id"],
            name=op.f("fk_distinct_patients_other_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["record_reviews.id"],
            name=op.f("fk_distinct_patients_review_id_record_reviews"),
        ),
        sa.PrimaryKeyConstraint(
            "patient_id", "other_patient_id", name=op.f("pk_distinct_patients")
        ),
    )
    op.create_table(
        "followups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inbox_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        _when("next_attempt_at"),
        _when("created_at"),
        _when("started_at", nullable=True),
        _when("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["inbox_id"], ["inbox.id"], name=op.f("fk_followups_inbox_id_inbox")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followups")),
        sa.UniqueConstraint("inbox_id", "name", "entity_id", name="uq_followups_inbox_name_entity"),
    )
    op.create_index("ix_followups_status_next", "followups", ["status", "next_attempt_at"])
    op.add_column(
        "coverages",
        sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1")),
    )
    # Added in place with its reference (SQLite allows that for a NULL column), so no table
    # that others point at is rebuilt while foreign keys are enforced.
    name = op.f("fk_patients_merged_into_id_patients")
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE patients ADD COLUMN merged_into_id INTEGER "
            f"CONSTRAINT {name} REFERENCES patients (id)"
        )
    else:
        op.add_column("patients", sa.Column("merged_into_id", sa.Integer(), nullable=True))
        op.create_foreign_key(name, "patients", "patients", ["merged_into_id"], ["id"])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # As in 0003: dropping a table others point at fails while foreign keys are enforced,
        # so the checks wait for the commit, the rows wait in a copy, the emptied table is
        # rebuilt, and the rows go back, each insert settling the checks its deletion opened.
        kept = [c["name"] for c in sa.inspect(bind).get_columns("patients")]
        columns = ", ".join(name for name in kept if name != "merged_into_id")
        op.execute("PRAGMA defer_foreign_keys = ON")
        op.execute("CREATE TEMP TABLE patients_0009 AS SELECT * FROM patients")
        op.execute("DELETE FROM patients")
        with op.batch_alter_table("patients", recreate="always") as batch:
            batch.drop_column("merged_into_id")
        op.execute(f"INSERT INTO patients ({columns}) SELECT {columns} FROM patients_0009")
        op.execute("DROP TABLE patients_0009")
    else:
        op.drop_constraint(
            op.f("fk_patients_merged_into_id_patients"), "patients", type_="foreignkey"
        )
        op.drop_column("patients", "merged_into_id")
    # SQLite drops a plain column in place (3.35+): no rebuild of a table checks point at.
    op.drop_column("coverages", "version")
    op.drop_index("ix_followups_status_next", table_name="followups")
    op.drop_table("followups")
    op.drop_table("distinct_patients")
    op.drop_index("ix_record_reviews_status_kind", table_name="record_reviews")
    op.drop_index(op.f("ix_record_reviews_patient_id"), table_name="record_reviews")
    op.drop_table("record_reviews")
    op.drop_index(op.f("ix_patient_identifiers_patient_id"), table_name="patient_identifiers")
    op.drop_table("patient_identifiers")
