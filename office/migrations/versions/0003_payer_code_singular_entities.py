"""payer_code for the X12 payer identifier; singular work-item entities

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 12:00:00

`payers.payer_id` held the clearinghouse's payer identifier while every other `payer_id`
is a database id: it becomes `payer_code`, and so does the key of that identifier in
stored eligibility results. Work items name their record by the model's singular
snake-case name ("appointment", not "appointments"), dedupe keys (`kind:entity:id`)
included, so the same record gets the same key from every flow. Kinds belong to one
flow each, so no rewritten key can meet an existing one; should one, the unique key
stops the migration rather than drop a person's work item. A downgrade leaves the
entities singular (see `downgrade`).
"""

from collections.abc import Mapping

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SINGULAR = {
    "appointments": "appointment",
    "patients": "patient",
    "appointment_types": "appointment_type",
    "outbox": "outbox_item",
}

work_items = sa.table(
    "work_items",
    sa.column("id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("entity", sa.String),
    sa.column("entity_id", sa.Integer),
    sa.column("dedupe_key", sa.String),
)
eligibility_checks = sa.table(
    "eligibility_checks",
    sa.column("id", sa.Integer),
    sa.column("result", sa.JSON),
)


def upgrade() -> None:
    _rename_payer_column("payer_id", "payer_code")
    _rename_entities(SINGULAR)
    _rename_result_key("payer_id", "payer_code")


def downgrade() -> None:
    # Work items keep their singular entities: before 0003 both spellings were in use
    # ("appointment" by eligibility, "appointments" by reminders), so no one inverse is right.
    _rename_result_key("payer_code", "payer_id")
    _rename_payer_column("payer_code", "payer_id")


def _rename_payer_column(old: str, new: str) -> None:
    """Rename the column and its unique constraint (named by the models' convention)."""
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("payers", old, new_column_name=new)
        op.execute(f"ALTER TABLE payers RENAME CONSTRAINT uq_payers_{old} TO uq_payers_{new}")
        return
    # SQLite renames a constraint only by rebuilding the table, and dropping a table that
    # coverages and checks point at fails while foreign keys are enforced (they cannot be
    # switched off inside the migration's transaction). So the checks wait for the commit,
    # the rows wait in a copy, the emptied table is rebuilt, and the rows go back, each
    # insert settling the checks its deletion had left open.
    op.execute("PRAGMA defer_foreign_keys = ON")
    op.execute("CREATE TEMP TABLE payers_0003 AS SELECT * FROM payers")
    op.execute("DELETE FROM payers")
    with op.batch_alter_table("payers", schema=None) as batch_op:
        batch_op.alter_column(
            old, new_column_name=new, existing_type=sa.String(length=80), existing_nullable=False
        )
    with op.batch_alter_table("payers", schema=None, recreate="always") as batch_op:
        batch_op.drop_constraint(f"uq_payers_{old}", type_="unique")
        batch_op.create_unique_constraint(f"uq_payers_{new}", [new])
    columns = "id, name, {}, adapter, adapter_settings, concurrency_limit, rate_per_second"
    op.execute(
        f"INSERT INTO payers ({columns.format(new)}) SELECT {columns.format(old)} FROM payers_0003"
    )
    op.execute("DROP TABLE payers_0003")


def _rename_entities(names: Mapping[str, str]) -> None:
    for old, new in names.items():
        op.execute(
            work_items.update()
            .where(work_items.c.entity == old)
            .values(
                entity=new,
                dedupe_key=work_items.c.kind
                + ":"
                + new
                + ":"
                + sa.cast(work_items.c.entity_id, sa.String),
            )
        )


def _rename_result_key(old: str, new: str) -> None:
    """Rename a top-level key of every stored result, a page of rows at a time."""
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.select(eligibility_checks.c.id, eligibility_checks.c.result)
            .where(eligibility_checks.c.id > last, eligibility_checks.c.result.is_not(None))
            .order_by(eligibility_checks.c.id)
            .limit(500)
        ).all()
        if not rows:
            return
        changed = [
            {"row_id": row.id, "result": _renamed(row.result, old, new)}
            for row in rows
            if isinstance(row.result, dict) and old in row.result
        ]
        if changed:
            bind.execute(
                eligibility_checks.update()
                .where(eligibility_checks.c.id == sa.bindparam("row_id"))
                .values(result=sa.bindparam("result")),
                changed,
            )
        last = rows[-1].id


def _renamed(result: dict[str, object], old: str, new: str) -> dict[str, object]:
    return {(new if key == old else key): value for key, value in result.items()}
