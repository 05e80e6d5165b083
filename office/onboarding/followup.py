"""The daily follow-up: decide, for every open checklist item, what today calls for.

For each open item, in this order:

1. **Blocked**: a dependency is neither done nor skipped. It waits, and says on what;
   nothing is sent about it. Once its last dependency closes it is *released*; if its due
   day has passed meanwhile, it is due the business day after the release, so nobody is
   chased for time they never had.
2. **Overdue** (business days after its due day, weekends, federal holidays and closed
   days not counted): the escalation ladder, each step once: the owner on the first day
   overdue, the owner's manager after 2, the compliance officer (compliance items and
   those required by law) or the office manager after 5.
3. **Due soon** (within `remind_days` business days, today included): one reminder to
   its owner.

Then recurring items: one done and expiring within `renew_days` (a HIPAA refresher, a CPR
card) gets its renewal item, due the last business day before expiry, unless it has one.

Everything is read in three statements and written in a handful of `executemany`
statements, and the per-item decision is arithmetic (`BusinessCalendar.between` counts
without walking days), so a run costs the same per item at 200 staff as at 2,000. Mail is
one message per recipient and kind (`office.onboarding.mailing`), queued in the outbox.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import Table, and_, bindparam, exists, insert, select, update
from sqlalchemy.orm import Session, aliased

from office.clock import chunks
from office.models import (
    AuditEntry,
    Checklist,
    ChecklistItem,
    ChecklistStatus,
    ItemStatus,
    Staff,
    StaffStatus,
)
from office.onboarding.calendar import BusinessCalendar
from office.onboarding.directory import Directory
from office.onboarding.mailing import OVERDUE, REMINDER, Notice, queue_notices

__all__ = ["ACTOR", "Decision", "FollowupPlan", "FollowupTally", "decide", "follow_up"]

ACTOR: Final = "flow:onboarding-followup"
MANAGER_AFTER: Final = 2  # business days overdue
OFFICER_AFTER: Final = 5
MAX_ITEMS_PER_MESSAGE: Final = 200
_ITEMS: Table = ChecklistItem.__table__  # type: ignore[assignment]
_AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]
_CLOSED: Final = (ItemStatus.DONE, ItemStatus.SKIPPED)


@dataclass(frozen=True, slots=True)
class FollowupPlan:
    today: date  # the practice's day
    now: datetime
    remind_days: int = 2
    renew_days: int = 30  # calendar days before expiry a renewal is opened


@dataclass
class FollowupTally:
    """Counts only: what the run found and did."""

    counts: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))


@dataclass(frozen=True, slots=True)
class Decision:
    """What today calls for about one open item."""

    item_id: int
    blocked: bool = False
    release_on: date | None = None
    new_due: date | None = None
    remind: bool = False
    escalate_to: int = 0  # the ladder's step reached today, 0 for none


@dataclass(frozen=True, slots=True)
class _Open:
    id: int
    checklist_id: int
    due_on: date
    depends_on: tuple[str, ...]
    released_on: date | None
    reminded_on: date | None
    level: int
    owner_staff_id: int | None
    owner_role: str | None
    compliance: bool


def decide(
    item: _Open,
    done: dict[str, date] | None,
    plan: FollowupPlan,
    calendar: BusinessCalendar,
) -> Decision:
    """Today's decision for one open item; `done` maps its checklist's closed keys to the day."""
    due = item.due_on
    release_on = None
    new_due = None
    if item.depends_on:
        closed = done or {}
        if any(key not in closed for key in item.depends_on):
            return Decision(item.id, blocked=True)
        if item.released_on is None:
            release_on = max(closed[key] for key in item.depends_on)
            if due <= release_on:
                new_due = calendar.add(release_on, 1)
                due = new_due
    if plan.today > due:
        late = calendar.between(due, plan.today)
        step = 3 if late >= OFFICER_AFTER else 2 if late >= MANAGER_AFTER else 1 if late >= 1 else 0
        if step > item.level:
            return Decision(item.id, release_on=release_on, new_due=new_due, escalate_to=step)
        return Decision(item.id, release_on=release_on, new_due=new_due)
    ahead = calendar.between(plan.today, due)
    remind = item.reminded_on is None and ahead <= plan.remind_days
    return Decision(item.id, release_on=release_on, new_due=new_due, remind=remind)


def follow_up(
    session: Session,
    plan: FollowupPlan,
    calendar: BusinessCalendar,
    directory: Directory,
) -> FollowupTally:
    """Decide every open item, write the decisions and queue the mail (the caller commits)."""
    tally = FollowupTally()
    done = _closed_keys(session)
    notices: dict[tuple[str, int, int], list[int]] = defaultdict(list)
    releases: list[dict[str, Any]] = []
    reminders: list[int] = []
    escalations: dict[int, list[int]] = defaultdict(list)  # step -> item ids
    audit: list[tuple[int, str, object, object]] = []
    # One item at a time, keeping only what is written: a list of 30,000 item objects
    # alive makes each of the garbage collector's full passes longer, and their number
    # grows with the practice, so the cost per item would grow with it too.
    for item in _open_items(session):
        decision = decide(item, done.get(item.checklist_id), plan, calendar)
        tally.counts["items"] += 1
        if decision.blocked:
            tally.counts["blocked"] += 1
            continue
        if decision.release_on is not None:
            tally.counts["released"] += 1
            releases.append(
                {
                    "b_id": item.id,
                    "released": decision.release_on,
                    "due": decision.new_due or item.due_on,
                }
            )
            if decision.new_due is not None:
                audit.append((item.id, "due_on", item.due_on, decision.new_due))
        if decision.remind:
            tally.counts["reminders"] += 1
            reminders.append(item.id)
            to = directory.recipient(item.owner_staff_id, item.owner_role)
            if to is not None:
                notices[(REMINDER, to, 0)].append(item.id)
        if decision.escalate_to:
            tally.counts[f"escalated_step_{decision.escalate_to}"] += 1
            escalations[decision.escalate_to].append(item.id)
            audit.append((item.id, "escalation_level", item.level, decision.escalate_to))
            to = directory.escalate_to(
                decision.escalate_to,
                item.owner_staff_id,
                item.owner_role,
                compliance=item.compliance,
            )
            if to is not None:
                notices[(OVERDUE, to, decision.escalate_to)].append(item.id)
        if _overdue(decision, item, plan):
            tally.counts["overdue"] += 1
    _write(session, plan, releases, reminders, escalations, audit)
    tally.counts["renewals"] += _spawn_renewals(session, plan, calendar)
    queued = queue_notices(
        session,
        [
            Notice(kind, to, tuple(part), None, level)
            for (kind, to, level), ids in sorted(notices.items())
            for part in _parts(sorted(ids))
        ],
        {person.id: person.email for person in directory.people.values()},
        day=plan.today,
        now=plan.now,
    )
    tally.counts["messages"] += queued
    return tally


def _overdue(decision: Decision, item: _Open, plan: FollowupPlan) -> bool:
    return plan.today > (decision.new_due or item.due_on)


def _parts(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), MAX_ITEMS_PER_MESSAGE):
        yield ids[start : start + MAX_ITEMS_PER_MESSAGE]


def _open_items(session: Session) -> Iterator[_Open]:
    """Every open item of a person still working, in one statement, read as it is iterated
    (a Core result: the ORM's would build every row first)."""
    rows = (
        session.connection()
        .execute(
            select(
                ChecklistItem.id,
                ChecklistItem.checklist_id,
                ChecklistItem.due_on,
                ChecklistItem.depends_on,
                ChecklistItem.released_on,
                ChecklistItem.reminded_on,
                ChecklistItem.escalation_level,
                ChecklistItem.owner_staff_id,
                ChecklistItem.owner_role,
                ChecklistItem.category,
                ChecklistItem.required_by_law,
            )
            .join(Staff, Staff.id == ChecklistItem.staff_id)
            .where(ChecklistItem.status == ItemStatus.OPEN, Staff.status != StaffStatus.INACTIVE)
        )
        .tuples()
    )
    for row in rows:
        yield _Open(
            id=row[0],
            checklist_id=row[1],
            due_on=row[2],
            depends_on=tuple(row[3] or ()),
            released_on=row[4],
            reminded_on=row[5],
            level=row[6],
            owner_staff_id=row[7],
            owner_role=row[8],
            compliance=row[9] == "compliance_training" or bool(row[10]),
        )


def _closed_keys(session: Session) -> dict[int, dict[str, date]]:
    """Per open checklist, its first-occurrence items done or skipped, with the day."""
    rows = session.execute(
        select(
            ChecklistItem.checklist_id,
            ChecklistItem.key,
            ChecklistItem.completed_on,
            ChecklistItem.updated_at,
        )
        .join(Checklist, Checklist.id == ChecklistItem.checklist_id)
        .where(
            Checklist.status == ChecklistStatus.OPEN,
            ChecklistItem.occurrence == 1,
            ChecklistItem.status.in_(_CLOSED),
        )
    ).tuples()
    found: dict[int, dict[str, date]] = defaultdict(dict)
    for checklist_id, key, completed_on, updated_at in rows:
        found[checklist_id][key] = completed_on or updated_at.date()
    return found


_RELEASE = (
    update(_ITEMS)
    .where(_ITEMS.c.id == bindparam("b_id"))
    .values(released_on=bindparam("released"), due_on=bindparam("due"))
)


def _write(
    session: Session,
    plan: FollowupPlan,
    releases: list[dict[str, Any]],
    reminders: list[int],
    escalations: dict[int, list[int]],
    audit: list[tuple[int, str, object, object]],
) -> None:
    """Releases one row each (each its own due day); reminders and each escalation step as
    one UPDATE per chunk of ids, which costs a third of a row-by-row executemany."""
    connection = session.connection()
    today = plan.today
    if releases:
        connection.execute(_RELEASE, releases)
    for part in chunks(sorted(reminders)):
        connection.execute(update(_ITEMS).where(_ITEMS.c.id.in_(part)).values(reminded_on=today))
    for step, ids in sorted(escalations.items()):
        for part in chunks(sorted(ids)):
            connection.execute(
                update(_ITEMS)
                .where(_ITEMS.c.id.in_(part))
                .values(escalation_level=step, escalated_on=today)
            )
    for rows in chunks(audit):
        entries = [_audit_row(i, name, before, after, plan.now) for i, name, before, after in rows]
        connection.execute(insert(_AUDIT), entries)


def _audit_row(
    item_id: int, name: str, before: object, after: object, now: datetime
) -> dict[str, Any]:
    return {
        "entity": ChecklistItem.__tablename__,
        "entity_id": item_id,
        "field": name,
        "before": None if before is None else str(before),
        "after": str(after),
        "actor": ACTOR,
        "source": "onboarding-followup",
        "at": now,
    }


def _spawn_renewals(session: Session, plan: FollowupPlan, calendar: BusinessCalendar) -> int:
    """A renewal item for each done recurring item expiring soon that has none yet."""
    renewal = aliased(ChecklistItem)
    horizon = plan.today + timedelta(days=plan.renew_days)
    due = session.scalars(
        select(ChecklistItem)
        .join(Staff, Staff.id == ChecklistItem.staff_id)
        .where(
            ChecklistItem.status == ItemStatus.DONE,
            ChecklistItem.expires_on.is_not(None),
            ChecklistItem.expires_on <= horizon,
            Staff.status != StaffStatus.INACTIVE,
            Staff.end_date.is_(None) | (Staff.end_date > plan.today),
            ~exists().where(and_(renewal.renewal_of_id == ChecklistItem.id)),
        )
        .order_by(ChecklistItem.id)
    ).all()
    for previous in due:
        assert previous.expires_on is not None
        item = ChecklistItem(
            checklist_id=previous.checklist_id,
            staff_id=previous.staff_id,
            key=previous.key,
            occurrence=previous.occurrence + 1,
            title=previous.title,
            description=previous.description,
            category=previous.category,
            owner=previous.owner,
            owner_role=previous.owner_role,
            owner_staff_id=previous.owner_staff_id,
            due_on=calendar.roll_back(previous.expires_on - timedelta(days=1)),
            depends_on=[],
            evidence_required=list(previous.evidence_required),
            required_by_law=previous.required_by_law,
            access=previous.access,
            recur_months=previous.recur_months,
            status=ItemStatus.OPEN,
            escalation_level=0,
            evidence={},
            renewal_of_id=previous.id,
            created_at=plan.now,
            updated_at=plan.now,
        )
        session.add(item)
    session.flush()
    return len(due)
