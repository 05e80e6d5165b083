"""work queue for people: priority, patient, assignee, close reason; affected visits; role leads

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 13:00:00

Work items get a priority, the patient their subject belongs to, an assignee, and why
they closed (`close_reason`, `close_note`); `work_item_visits` lists the visits each
affects. The unique `dedupe_key` becomes a partial unique index over open items only, so
a problem that comes back after it was closed opens a new item. `staff.role_lead` marks
who gets their role's morning digest.

Existing rows: priorities come from the kinds catalog as it stood at this revision
(copied below, since the catalog changes later); each item about an appointment lists
that visit; and open items of the patient-level kinds (coverage not active, patient data
to fix, ...) are folded into one item per patient and kind, listing every visit the
separate items named; the others close as "merged", with an audit entry each.
"""

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The kinds catalog (office/workqueue/kinds.py) as of this revision.
BLOCKERS = ("not_active", "authorization_required", "referral_needed", "service_not_covered")
INFO = ("plan_ending", "high_deductible")
PATIENT_LEVEL = (
    "not_active",
    "referral_needed",
    "copay_changed",
    "fix_patient_data",
    "ambiguous_match",
    "unverified",
    "payer_corrected_data",
    "coordination_of_benefits",
    "plan_ending",
    "high_deductible",
    "reminder_no_channel",
    "email_rejected",
    "email_bounced",
)
ACTOR = "migration:0005"

_PRIORITY = sa.Enum("blocker", "action", "info", name="workpriority", native_enum=False, length=16)

work_items = sa.table(
    "work_items",
    sa.column("id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("entity", sa.String),
    sa.column("entity_id", sa.Integer),
    sa.column("dedupe_key", sa.String),
    sa.column("priority", sa.String),
    sa.column("patient_id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("due_at", sa.DateTime(timezone=True)),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    sa.column("closed_by", sa.String),
    sa.column("closed_at", sa.DateTime(timezone=True)),
    sa.column("close_reason", sa.String),
    sa.column("close_note", sa.Text),
)
links = sa.table(
    "work_item_visits",
    sa.column("work_item_id", sa.Integer),
    sa.column("appointment_id", sa.Integer),
    sa.column("added_at", sa.DateTime(timezone=True)),
)
appointments = sa.table("appointments", sa.column("id", sa.Integer), sa.column("patient_id"))
patients = sa.table("patients", sa.column("id", sa.Integer))
outbox = sa.table("outbox", sa.column("id", sa.Integer), sa.column("patient_id", sa.Integer))
mail_messages = sa.table(
    "mail_messages", sa.column("id", sa.Integer), sa.column("patient_id", sa.Integer)
)
audit_log = sa.table(
    "audit_log",
    sa.column("entity", sa.String),
    sa.column("entity_id", sa.Integer),
    sa.column("field", sa.String),
    sa.column("before", sa.Text),
    sa.column("after", sa.Text),
    sa.column("actor", sa.String),
    sa.column("source", sa.String),
    sa.column("at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        # Filled from the catalog below; the default lets SQLite copy the rows over.
        batch_op.add_column(
            sa.Column("priority", _PRIORITY, nullable=False, server_default="action")
        )
        batch_op.add_column(sa.Column("patient_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("close_reason", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("close_note", sa.Text(), nullable=True))
        batch_op.drop_constraint("uq_work_items_dedupe_key", type_="unique")
        batch_op.create_foreign_key(
            op.f("fk_work_items_patient_id_patients"), "patients", ["patient_id"], ["id"]
        )
        batch_op.create_foreign_key(
            op.f("fk_work_items_assignee_id_staff"), "staff", ["assignee_id"], ["id"]
        )
    op.create_table(
        "work_item_visits",
        sa.Column("work_item_id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_reason", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_work_item_visits_appointment_id_appointments"),
        ),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["work_items.id"],
            name=op.f("fk_work_item_visits_work_item_id_work_items"),
        ),
        sa.PrimaryKeyConstraint("work_item_id", "appointment_id", name=op.f("pk_work_item_visits")),
    )
    op.create_index(
        "ix_work_item_visits_appointment", "work_item_visits", ["appointment_id"], unique=False
    )
    op.add_column(
        "staff", sa.Column("role_lead", sa.Boolean(), nullable=False, server_default=sa.false())
    )

    _fill_existing(datetime.now(UTC))

    # Plain CREATE INDEX on both backends: rebuilding work_items on SQLite now would drop
    # a table the new visit rows point at.
    op.create_index(
        "uq_work_items_open_key",
        "work_items",
        ["dedupe_key"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index("ix_work_items_patient_status", "work_items", ["patient_id", "status"])
    op.create_index("ix_work_items_closed_at", "work_items", ["closed_at"])
    op.create_index("ix_work_items_created_at", "work_items", ["created_at"])


def _fill_existing(now: datetime) -> None:
    bind = op.get_bind()
    priority = sa.case(
        (work_items.c.kind.in_(BLOCKERS), "blocker"),
        (work_items.c.kind.in_(INFO), "info"),
        else_="action",
    )
    bind.execute(work_items.update().values(priority=priority))
    owners = {
        "appointment": sa.select(appointments.c.patient_id)
        .where(appointments.c.id == work_items.c.entity_id)
        .scalar_subquery(),
        "outbox_item": sa.select(outbox.c.patient_id)
        .where(outbox.c.id == work_items.c.entity_id)
        .scalar_subquery(),
        "mail_message": sa.select(mail_messages.c.patient_id)
        .where(mail_messages.c.id == work_items.c.entity_id)
        .scalar_subquery(),
    }
    for entity, owner in owners.items():
        bind.execute(
            work_items.update().where(work_items.c.entity == entity).values(patient_id=owner)
        )
    # A patient item's subject is the patient, when that patient (still) exists.
    patient = (
        sa.select(patients.c.id).where(patients.c.id == work_items.c.entity_id).scalar_subquery()
    )
    bind.execute(
        work_items.update().where(work_items.c.entity == "patient").values(patient_id=patient)
    )
    bind.execute(
        links.insert().from_select(
            ["work_item_id", "appointment_id", "added_at"],
            sa.select(work_items.c.id, work_items.c.entity_id, work_items.c.created_at)
            .join(appointments, appointments.c.id == work_items.c.entity_id)
            .where(work_items.c.entity == "appointment"),
        )
    )
    _fold_patient_level(bind, now)


def _fold_patient_level(bind: sa.Connection, now: datetime) -> None:
    """One open item per patient and patient-level kind, listing every affected visit."""
    rows = bind.execute(
        sa.select(
            work_items.c.id,
            work_items.c.kind,
            work_items.c.entity,
            work_items.c.patient_id,
            work_items.c.due_at,
        )
        .where(
            work_items.c.status == "open",
            work_items.c.kind.in_(PATIENT_LEVEL),
            work_items.c.patient_id.is_not(None),
        )
        .order_by(work_items.c.id)
    ).all()
    groups: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for row in rows:
        groups[(row.kind, row.patient_id)].append(row)
    for (kind, patient_id), members in groups.items():
        keeper = next((m for m in members if m.entity == "patient"), members[0])
        others = [m.id for m in members if m.id != keeper.id]
        dues = [m.due_at for m in members if m.due_at is not None]
        bind.execute(
            work_items.update()
            .where(work_items.c.id == keeper.id)
            .values(
                entity="patient",
                entity_id=patient_id,
                dedupe_key=f"{kind}:patient:{patient_id}",
                due_at=min(dues) if dues else None,
                updated_at=now,
            )
        )
        if not others:
            continue
        held = set(
            bind.scalars(sa.select(links.c.appointment_id).where(links.c.work_item_id == keeper.id))
        )
        moved = bind.execute(
            sa.select(links.c.appointment_id, links.c.added_at).where(
                links.c.work_item_id.in_(others)
            )
        ).all()
        fresh = {r.appointment_id: r.added_at for r in moved if r.appointment_id not in held}
        if fresh:
            bind.execute(
                links.insert(),
                [
                    {"work_item_id": keeper.id, "appointment_id": a, "added_at": at}
                    for a, at in fresh.items()
                ],
            )
        bind.execute(
            work_items.update()
            .where(work_items.c.id.in_(others))
            .values(
                status="done",
                closed_by=ACTOR,
                closed_at=now,
                close_reason="merged",
                close_note=f"merged into item {keeper.id}",
                updated_at=now,
            )
        )
        bind.execute(
            audit_log.insert(),
            [
                {
                    "entity": "work_items",
                    "entity_id": other,
                    "field": "status",
                    "before": "open",
                    "after": "done",
                    "actor": ACTOR,
                    "source": "office db upgrade",
                    "at": now,
                }
                for other in others
            ],
        )


def downgrade() -> None:
    # Closed items that share a key with a later item keep their history under a key of
    # their own, so the old unique constraint holds again.
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(work_items.c.id, work_items.c.dedupe_key, work_items.c.status).order_by(
            work_items.c.id
        )
    ).all()
    seen: dict[str, int] = {}
    for row in rows:
        seen.setdefault(row.dedupe_key, 0)
        seen[row.dedupe_key] += 1
    for row in rows:
        if seen[row.dedupe_key] > 1 and row.status != "open":
            seen[row.dedupe_key] -= 1
            bind.execute(
                work_items.update()
                .where(work_items.c.id == row.id)
                .values(dedupe_key=f"{row.dedupe_key}#{row.id}"[:200])
            )
    with op.batch_alter_table("staff", schema=None) as batch_op:
        batch_op.drop_column("role_lead")
    op.drop_index("ix_work_item_visits_appointment", table_name="work_item_visits")
    op.drop_table("work_item_visits")
    op.drop_index("ix_work_items_created_at", table_name="work_items")
    op.drop_index("ix_work_items_closed_at", table_name="work_items")
    op.drop_index("ix_work_items_patient_status", table_name="work_items")
    op.drop_index("uq_work_items_open_key", table_name="work_items")
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_work_items_assignee_id_staff"), type_="foreignkey")
        batch_op.drop_constraint(op.f("fk_work_items_patient_id_patients"), type_="foreignkey")
        batch_op.drop_column("close_note")
        batch_op.drop_column("close_reason")
        batch_op.drop_column("assignee_id")
        batch_op.drop_column("patient_id")
        batch_op.drop_column("priority")
        batch_op.create_unique_constraint(op.f("uq_work_items_dedupe_key"), ["dedupe_key"])
