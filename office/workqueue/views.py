"""Read models of the work queue for people: Today, a visit, trends, an item's history.

The board and `office queue` render these; each returns plain frozen dataclasses (no ORM
object leaves), reads in a few statements whatever the queue's size, and shows times in
the clinic's own zone. They carry patient names: they are for staff behind a login,
never for logs, flow parameters or mail.

Who sees what: the office manager (and `viewer_role=None`, the CLI's operator) sees every
item, their own role's first; anyone else sees their role's items and those assigned to
them (minimum necessary).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from office.clock import chunks
from office.models import (
    Appointment,
    AppointmentType,
    AuditEntry,
    EligibilityCheck,
    LinkUse,
    Location,
    OutboxItem,
    Patient,
    Payer,
    Provider,
    Staff,
    WorkItem,
    WorkItemVisit,
    WorkPriority,
    WorkStatus,
    utcnow,
)
from office.workqueue.kinds import (
    MANAGER_ROLE,
    PRIORITY_LABELS,
    ROLE_LABELS,
    CloseReason,
    kind_of,
    note_kinds,
)

__all__ = [
    "AnswerRow",
    "CoverageSummary",
    "DayCount",
    "HistoryEntry",
    "ItemRow",
    "KindCount",
    "NotFound",
    "PriorityGroup",
    "ReminderRow",
    "RoleGroup",
    "TodayView",
    "TrendView",
    "VisitRef",
    "VisitView",
    "counts",
    "history",
    "practice_zone",
    "today",
    "trends",
    "visit",
]

PRIORITIES = (WorkPriority.BLOCKER, WorkPriority.ACTION, WorkPriority.INFO)
_REMINDER_KINDS = ("reminder", "confirmation", "cancellation", "reschedule")


class NotFound(LookupError):
    """The record asked for does not exist."""


@dataclass(frozen=True, slots=True)
class VisitRef:
    """One affected visit, at the clinic's local time."""

    appointment_id: int
    starts_at: datetime  # aware, in the clinic's zone
    clinic_id: int
    clinic: str
    status: str


@dataclass(frozen=True, slots=True)
class ItemRow:
    """One work item as a person reads it."""

    id: int
    kind: str
    title: str  # what is wrong, in a few words
    priority: WorkPriority
    role: str
    summary: str  # what is wrong, in detail
    next_step: str  # what to do
    note: bool  # information shown on the visit, not a task
    status: WorkStatus
    patient_id: int | None
    patient_name: str | None
    mrn: str | None
    visit_at: datetime | None  # the first affected visit, local to its clinic
    clinic: str | None
    visits: tuple[VisitRef, ...]
    assignee_id: int | None
    assignee_name: str | None
    due_at: datetime | None  # UTC
    overdue: bool
    created_at: datetime
    closed_at: datetime | None = None
    closed_by: str | None = None
    close_reason: str | None = None
    close_note: str | None = None
    entity: str = ""  # what the item is about, when not a patient or visit: "record_review"
    entity_id: int = 0


@dataclass(frozen=True, slots=True)
class RoleGroup:
    role: str
    label: str
    items: tuple[ItemRow, ...]


@dataclass(frozen=True, slots=True)
class PriorityGroup:
    priority: WorkPriority
    label: str
    roles: tuple[RoleGroup, ...]

    @property
    def count(self) -> int:
        return sum(len(group.items) for group in self.roles)


@dataclass(frozen=True, slots=True)
class KindCount:
    kind: str
    title: str
    priority: WorkPriority
    role: str
    count: int
    overdue: int


@dataclass(frozen=True, slots=True)
class TodayView:
    """Open items grouped by priority then role, and counts per kind (of all visible items)."""

    groups: tuple[PriorityGroup, ...]
    counts: tuple[KindCount, ...]
    total: int  # visible open items matching the filters
    shown: int  # at most `limit` of them are in `groups`
    overdue: int
    viewer_role: str | None
    generated_at: datetime

    @property
    def items(self) -> tuple[ItemRow, ...]:
        return tuple(i for g in self.groups for r in g.roles for i in r.items)


@dataclass(frozen=True, slots=True)
class CoverageSummary:
    """What the last answered eligibility check said about the visit's coverage."""

    check_id: int
    status: str
    checked_at: datetime | None
    payer: str
    plan: str | None
    plan_begin: date | None
    plan_end: date | None
    copay: Decimal | None
    deductible_remaining: Decimal | None
    pcp: str | None
    notes: tuple[str, ...]  # the payer's messages


@dataclass(frozen=True, slots=True)
class ReminderRow:
    id: int
    kind: str
    channel: str
    status: str
    due_at: datetime | None
    sent_at: datetime | None
    error: str | None


@dataclass(frozen=True, slots=True)
class AnswerRow:
    """A patient's answer (confirm, cancel, reschedule request) or a change of status."""

    at: datetime
    what: str
    by: str


@dataclass(frozen=True, slots=True)
class VisitView:
    appointment_id: int
    patient_id: int
    patient_name: str
    mrn: str
    starts_at: datetime  # local to the clinic
    clinic: str
    provider: str
    visit_type: str
    status: str
    coverage: CoverageSummary | None
    reminders: tuple[ReminderRow, ...]
    answers: tuple[AnswerRow, ...]
    items: tuple[ItemRow, ...]  # open tasks listing this visit
    notes: tuple[ItemRow, ...]  # open notes listing this visit
    closed: tuple[ItemRow, ...]  # items and notes about it that have closed


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    opened: int
    closed: int
    open_at_end: int


@dataclass(frozen=True, slots=True)
class TrendView:
    days: tuple[DayCount, ...]
    median_hours_to_close: float | None  # over items closed in the period
    closed_in_period: int
    zone: str


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    by: str
    what: str  # the field changed
    before: str | None
    after: str | None
    source: str


# --- Today --------------------------------------------------------------------------------


def today(
    session: Session,
    *,
    viewer_role: str | None,
    clinic_id: int | None = None,
    role: str | None = None,
    kind: str | None = None,
    limit: int = 500,
    viewer_staff_id: int | None = None,
    notes_as_tasks: Collection[str] = (),
    now: datetime | None = None,
) -> TodayView:
    """The open items a viewer sees, most urgent first (see the module doc for who sees what).

    Args:
        viewer_role: The viewer's role; None or "office_manager" sees everything.
        clinic_id, role, kind: Filters (an item matches a clinic when a visit it lists is there).
        limit: At most this many items in the groups; counts cover them all.
        viewer_staff_id: The viewer, so items assigned to them show whatever their role.
        notes_as_tasks: Note kinds the practice wants as tasks (its settings).
        now: For "overdue"; the real clock by default.
    """
    moment = now or utcnow()
    notes = note_kinds(notes_as_tasks)
    where = _visible(viewer_role, viewer_staff_id, notes, clinic_id=clinic_id, role=role)
    counts = _counts(session, where, moment)
    if kind is not None:
        where.append(WorkItem.kind == kind)
    order = [
        case({p.value: n for n, p in enumerate(PRIORITIES)}, value=WorkItem.priority, else_=9),
        case((WorkItem.role == (viewer_role or MANAGER_ROLE), 0), else_=1),
        WorkItem.role,
        WorkItem.due_at.is_(None),
        WorkItem.due_at,
        WorkItem.id,
    ]
    # The first `limit` ids in order, then their patients and assignees: the sort never
    # carries the joined columns of the thousands of rows it passes over.
    first = select(WorkItem.id).where(*where).order_by(*order).limit(limit).subquery()
    rows = session.execute(
        _item_query().join(first, first.c.id == WorkItem.id).order_by(*order)
    ).all()
    visits = _visits_of(session, [row.id for row in rows])
    items = [_item_row(row, visits.get(row.id, ()), notes, moment) for row in rows]
    total = sum(c.count for c in counts if kind is None or c.kind == kind)
    overdue = sum(c.overdue for c in counts if kind is None or c.kind == kind)
    return TodayView(
        groups=_group(items, viewer_role),
        counts=tuple(counts),
        total=total,
        shown=len(items),
        overdue=overdue,
        viewer_role=viewer_role,
        generated_at=moment,
    )


def counts(
    session: Session,
    *,
    viewer_role: str | None,
    notes_as_tasks: Collection[str] = (),
    now: datetime | None = None,
) -> tuple[KindCount, ...]:
    """Open items per kind a viewer sees (Today's counts, without the items): the digest's."""
    where = _visible(viewer_role, None, note_kinds(notes_as_tasks), clinic_id=None, role=None)
    return tuple(_counts(session, where, now or utcnow()))


def _visible(
    viewer_role: str | None,
    viewer_staff_id: int | None,
    notes: frozenset[str],
    *,
    clinic_id: int | None,
    role: str | None,
) -> list[Any]:
    where: list[Any] = [WorkItem.status == WorkStatus.OPEN]
    if notes:
        where.append(WorkItem.kind.not_in(notes))
    if viewer_role is not None and viewer_role != MANAGER_ROLE:
        own: Any = WorkItem.role == viewer_role
        if viewer_staff_id is not None:
            own = or_(own, WorkItem.assignee_id == viewer_staff_id)
        where.append(own)
    if role is not None:
        where.append(WorkItem.role == role)
    if clinic_id is not None:
        where.append(
            select(WorkItemVisit.work_item_id)
            .join(Appointment, Appointment.id == WorkItemVisit.appointment_id)
            .where(
                WorkItemVisit.work_item_id == WorkItem.id,
                WorkItemVisit.cleared_at.is_(None),
                Appointment.location_id == clinic_id,
            )
            .exists()
        )
    return where


def _counts(session: Session, where: Sequence[Any], now: datetime) -> list[KindCount]:
    late = func.sum(case((and_(WorkItem.due_at.is_not(None), WorkItem.due_at < now), 1), else_=0))
    rows = session.execute(
        select(WorkItem.kind, WorkItem.priority, WorkItem.role, func.count(), late)
        .where(*where)
        .group_by(WorkItem.kind, WorkItem.priority, WorkItem.role)
    ).all()
    merged: dict[str, list[Any]] = {}
    for kind, priority, role, count, overdue in rows:
        entry = merged.setdefault(kind, [priority, role, 0, 0])
        entry[2] += count
        entry[3] += int(overdue or 0)
    counts = [
        KindCount(kind, kind_of(kind).title, priority, role, count, overdue)
        for kind, (priority, role, count, overdue) in merged.items()
    ]
    rank = {p: n for n, p in enumerate(PRIORITIES)}
    return sorted(counts, key=lambda c: (rank.get(c.priority, 9), -c.count, c.kind))


def _item_query() -> Select[*tuple[Any, ...]]:
    assignee = aliased(Staff)
    return select(
        WorkItem.id,
        WorkItem.kind,
        WorkItem.entity,
        WorkItem.entity_id,
        WorkItem.priority,
        WorkItem.role,
        WorkItem.summary,
        WorkItem.status,
        WorkItem.patient_id,
        WorkItem.assignee_id,
        WorkItem.due_at,
        WorkItem.created_at,
        WorkItem.closed_at,
        WorkItem.closed_by,
        WorkItem.close_reason,
        WorkItem.close_note,
        Patient.first_name,
        Patient.last_name,
        Patient.mrn,
        assignee.first_name.label("assignee_first"),
        assignee.last_name.label("assignee_last"),
    ).select_from(
        WorkItem.__table__.outerjoin(Patient, Patient.id == WorkItem.patient_id).outerjoin(
            assignee, assignee.id == WorkItem.assignee_id
        )
    )


def _visits_of(
    session: Session, item_ids: Sequence[int], *, cleared: bool = False
) -> dict[int, tuple[VisitRef, ...]]:
    """The visits each item lists (still affected ones, unless `cleared`), earliest first."""
    query = (
        select(
            WorkItemVisit.work_item_id,
            Appointment.id,
            Appointment.start_at,
            Appointment.status,
            Location.id.label("clinic_id"),
            Location.name,
            Location.timezone,
        )
        .join(Appointment, Appointment.id == WorkItemVisit.appointment_id)
        .join(Location, Location.id == Appointment.location_id)
        .order_by(Appointment.start_at, Appointment.id)
    )
    if not cleared:
        query = query.where(WorkItemVisit.cleared_at.is_(None))
    if isinstance(item_ids, Select):
        batches = [query.where(WorkItemVisit.work_item_id.in_(item_ids))]
    else:
        batches = [
            query.where(WorkItemVisit.work_item_id.in_(chunk)) for chunk in chunks(sorted(item_ids))
        ]
    found: dict[int, list[VisitRef]] = defaultdict(list)
    for batch in batches:
        for item_id, appointment_id, start, status, clinic_id, clinic, zone in session.execute(
            batch
        ).tuples():
            found[item_id].append(
                VisitRef(
                    appointment_id, start.astimezone(_zone(zone)), clinic_id, clinic, status.value
                )
            )
    return {item_id: tuple(refs) for item_id, refs in found.items()}


def _item_row(
    row: Any, visits: tuple[VisitRef, ...], notes: frozenset[str], now: datetime
) -> ItemRow:
    spec = kind_of(row.kind, role=row.role)
    first = visits[0] if visits else None
    name = f"{row.first_name} {row.last_name}" if row.first_name is not None else None
    assignee = f"{row.assignee_first} {row.assignee_last}" if row.assignee_first else None
    is_open = row.status is WorkStatus.OPEN
    return ItemRow(
        id=row.id,
        kind=row.kind,
        title=spec.title,
        priority=row.priority,
        role=row.role,
        summary=row.summary,
        next_step=spec.next_step,
        note=row.kind in notes,
        status=row.status,
        patient_id=row.patient_id,
        patient_name=name,
        mrn=row.mrn,
        visit_at=first.starts_at if first else None,
        clinic=first.clinic if first else None,
        visits=visits,
        assignee_id=row.assignee_id,
        assignee_name=assignee,
        due_at=row.due_at,
        overdue=is_open and row.due_at is not None and row.due_at < now,
        created_at=row.created_at,
        closed_at=row.closed_at,
        closed_by=row.closed_by,
        close_reason=row.close_reason,
        close_note=row.close_note,
        entity=row.entity,
        entity_id=row.entity_id,
    )


def _group(items: Sequence[ItemRow], viewer_role: str | None) -> tuple[PriorityGroup, ...]:
    """Items (already in order) grouped by priority, then role: the viewer's role first."""
    by_priority: dict[WorkPriority, dict[str, list[ItemRow]]] = {}
    for item in items:
        by_priority.setdefault(item.priority, {}).setdefault(item.role, []).append(item)
    first = viewer_role or MANAGER_ROLE
    groups = []
    for priority in PRIORITIES:
        roles = by_priority.get(priority)
        if not roles:
            continue
        order = sorted(roles, key=lambda r: (r != first, r))
        groups.append(
            PriorityGroup(
                priority,
                PRIORITY_LABELS[priority],
                tuple(RoleGroup(r, role_label(r), tuple(roles[r])) for r in order),
            )
        )
    return tuple(groups)


def role_label(role: str) -> str:
    return ROLE_LABELS.get(role, role.replace("_", " ").capitalize())


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


# --- a visit ------------------------------------------------------------------------------


def visit(
    session: Session,
    appointment_id: int,
    *,
    notes_as_tasks: Collection[str] = (),
    now: datetime | None = None,
) -> VisitView:
    """Everything about one visit the office acts on: coverage, reminders, answers, items.

    Raises:
        NotFound: No such appointment.
    """
    moment = now or utcnow()
    row = session.execute(
        select(
            Appointment.id,
            Appointment.patient_id,
            Appointment.start_at,
            Appointment.status,
            Patient.first_name,
            Patient.last_name,
            Patient.mrn,
            Location.name.label("clinic"),
            Location.timezone,
            Provider.first_name.label("provider_first"),
            Provider.last_name.label("provider_last"),
            Provider.credential,
            AppointmentType.name.label("visit_type"),
        )
        .join(Patient, Patient.id == Appointment.patient_id)
        .join(Location, Location.id == Appointment.location_id)
        .join(Provider, Provider.id == Appointment.provider_id)
        .join(AppointmentType, AppointmentType.id == Appointment.appointment_type_id)
        .where(Appointment.id == appointment_id)
    ).first()
    if row is None:
        raise NotFound(f"appointment {appointment_id} does not exist")
    notes = note_kinds(notes_as_tasks)
    item_ids = list(
        session.scalars(
            select(WorkItemVisit.work_item_id).where(WorkItemVisit.appointment_id == appointment_id)
        )
    )
    rows = session.execute(_item_query().where(WorkItem.id.in_(item_ids))).all() if item_ids else []
    visits = _visits_of(session, item_ids, cleared=True)
    all_items = [_item_row(r, visits.get(r.id, ()), notes, moment) for r in rows]
    all_items.sort(key=lambda i: (PRIORITIES.index(i.priority), i.due_at or moment, i.id))
    provider = f"{row.provider_first} {row.provider_last}"
    return VisitView(
        appointment_id=row.id,
        patient_id=row.patient_id,
        patient_name=f"{row.first_name} {row.last_name}",
        mrn=row.mrn,
        starts_at=row.start_at.astimezone(_zone(row.timezone)),
        clinic=row.clinic,
        provider=f"{provider}, {row.credential}" if row.credential else provider,
        visit_type=row.visit_type,
        status=row.status.value,
        coverage=_coverage(session, appointment_id),
        reminders=_reminders(session, appointment_id),
        answers=_answers(session, appointment_id),
        items=tuple(i for i in all_items if i.status is WorkStatus.OPEN and not i.note),
        notes=tuple(i for i in all_items if i.status is WorkStatus.OPEN and i.note),
        closed=tuple(i for i in all_items if i.status is not WorkStatus.OPEN),
    )


def _coverage(session: Session, appointment_id: int) -> CoverageSummary | None:
    row = session.execute(
        select(EligibilityCheck, Payer.name)
        .join(Payer, Payer.id == EligibilityCheck.payer_id)
        .where(
            EligibilityCheck.appointment_id == appointment_id,
            EligibilityCheck.checked_at.is_not(None),
        )
        .order_by(EligibilityCheck.checked_at.desc(), EligibilityCheck.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    check, payer = row
    result: dict[str, Any] = check.result or {}
    pcp = result.get("pcp") or {}
    messages: list[str] = []
    for benefit in result.get("benefits", ()):
        for text in benefit.get("messages", ()):
            if text not in messages:
                messages.append(text)
    return CoverageSummary(
        check_id=check.id,
        status=check.status.value,
        checked_at=check.checked_at,
        payer=payer,
        plan=result.get("plan_name"),
        plan_begin=_day(result.get("plan_begin") or result.get("eligibility_begin")),
        plan_end=check.plan_end or _day(result.get("plan_end")),
        copay=check.copay,
        deductible_remaining=check.deductible_remaining,
        pcp=pcp.get("name") or pcp.get("identifier"),
        notes=tuple(messages[:10]),
    )


def _day(value: object) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) and value else None


def _reminders(session: Session, appointment_id: int) -> tuple[ReminderRow, ...]:
    rows = session.execute(
        select(
            OutboxItem.id,
            OutboxItem.kind,
            OutboxItem.channel,
            OutboxItem.status,
            OutboxItem.due_at,
            OutboxItem.sent_at,
            OutboxItem.error,
        )
        .where(OutboxItem.appointment_id == appointment_id, OutboxItem.kind.in_(_REMINDER_KINDS))
        .order_by(OutboxItem.due_at, OutboxItem.id)
    )
    return tuple(
        ReminderRow(r.id, r.kind, r.channel.value, r.status.value, r.due_at, r.sent_at, r.error)
        for r in rows
    )


def _answers(session: Session, appointment_id: int) -> tuple[AnswerRow, ...]:
    """Link answers and status changes, oldest first."""
    answers = [
        AnswerRow(use.used_at, f"{use.purpose} link used", "patient")
        for use in session.scalars(select(LinkUse).where(LinkUse.appointment_id == appointment_id))
    ]
    changes = session.scalars(
        select(AuditEntry).where(
            AuditEntry.entity == Appointment.__tablename__,
            AuditEntry.entity_id == appointment_id,
            AuditEntry.field.in_(("status", "reschedule_requested")),
        )
    )
    for entry in changes:
        if entry.field == "status":
            what = f"status {entry.before or 'none'} → {entry.after}"
        else:
            what = "asked to reschedule"
        answers.append(AnswerRow(entry.at, what, entry.actor))
    return tuple(sorted(answers, key=lambda a: a.at))


# --- trends -------------------------------------------------------------------------------


def trends(
    session: Session,
    *,
    today: date,
    days: int = 30,
    zone: str | None = None,
    notes_as_tasks: Collection[str] = (),
) -> TrendView:
    """Items opened and closed per day (the practice's days) and the median time to close.

    Args:
        today: The last day shown, in the practice's zone.
        zone: The practice's zone; by default its first clinic's (else UTC).
    """
    name = zone or practice_zone(session)
    tz = _zone(name)
    first = today - timedelta(days=days - 1)
    start = datetime.combine(first, time(), tz).astimezone(UTC)
    end = datetime.combine(today + timedelta(days=1), time(), tz).astimezone(UTC)
    rows = session.execute(
        select(WorkItem.created_at, WorkItem.closed_at).where(
            WorkItem.kind.not_in(note_kinds(notes_as_tasks)),
            WorkItem.created_at < end,
            or_(WorkItem.closed_at.is_(None), WorkItem.closed_at >= start),
            or_(WorkItem.close_reason.is_(None), WorkItem.close_reason != CloseReason.MERGED),
        )
    ).all()
    opened: dict[date, int] = defaultdict(int)
    closed: dict[date, int] = defaultdict(int)
    durations: list[float] = []
    carried = 0  # open at the start of the period
    for created_at, closed_at in rows:
        if created_at >= start:
            opened[created_at.astimezone(tz).date()] += 1
        else:
            carried += 1
        if closed_at is not None and closed_at < end:
            closed[closed_at.astimezone(tz).date()] += 1
            durations.append((closed_at - created_at).total_seconds() / 3600)
    series = []
    open_now = carried
    for n in range(days):
        day = first + timedelta(days=n)
        open_now += opened[day] - closed[day]
        series.append(DayCount(day, opened[day], closed[day], open_now))
    median = round(statistics.median(durations), 1) if durations else None
    return TrendView(tuple(series), median, len(durations), name)


def practice_zone(session: Session) -> str:
    """The practice's zone as its data says: its first clinic's, else UTC."""
    found = session.scalar(select(Location.timezone).order_by(Location.id).limit(1))
    return found or "UTC"


# --- an item's history ----------------------------------------------------------------------


def history(session: Session, item_id: int) -> tuple[HistoryEntry, ...]:
    """Who did what to one item, when: from the audit ledger, oldest first.

    Raises:
        NotFound: No such item.
    """
    if session.get(WorkItem, item_id) is None:
        raise NotFound(f"work item {item_id} does not exist")
    entries = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.entity == WorkItem.__tablename__, AuditEntry.entity_id == item_id)
        .order_by(AuditEntry.at, AuditEntry.id)
    )
    return tuple(HistoryEntry(e.at, e.actor, e.field, e.before, e.after, e.source) for e in entries)
