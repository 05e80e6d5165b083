"""The work queue's rules: one open item per problem and subject, closed when its cause clears.

- Opening (`open_work_items`, many at once; `open_work_item` for one): the kinds catalog
  (`office.workqueue.kinds`) decides the subject. A patient-level kind raised about a
  visit becomes one item for the patient listing every affected visit; a visit-level
  kind is one item per visit. A repeat while the item is open refreshes it (and adds the
  visit); once it was closed or dismissed, the problem coming back opens a new item.
- Closing by a person (`close_work_item`): done with a note, or dismissed with a reason;
  an item already closed is a `LedgerError`.
- Closing by itself (`clear_work`, `sweep_work`): a later clean check, the visit cancelled
  or past, a new booking: each clears the visits it names from the items whose kind closes
  on that cause; an item none of whose visits is left closes, with the cause as reason.

Every status change, assignment and visit added or cleared is written to the audit
ledger under entity "work_items": that is each item's history.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from office.clock import chunks
from office.ledgers.audit import apply_changes
from office.ledgers.errors import LedgerError
from office.models import (
    Appointment,
    AppointmentStatus,
    AuditEntry,
    MailMessage,
    OutboxItem,
    WorkItem,
    WorkItemVisit,
    WorkStatus,
    utcnow,
)
from office.workqueue.kinds import AUTOMATIC, CloseReason, Kind, Subject, kind_of, note_kinds

__all__ = [
    "SYSTEM",
    "Cleared",
    "WorkNeeded",
    "clear_work",
    "close_work_item",
    "open_item",
    "open_items_by_kind",
    "open_work_item",
    "open_work_items",
    "sweep_work",
]

SYSTEM = "officeflows"
"""The actor of what the ledger does by itself (opening, auto-closing)."""

_ENTITY = WorkItem.__tablename__
# Rows are inserted through the tables (Core): the ORM's bulk insert splits a lot by which
# values are None and sent much of it a row at a time (measured: storing 2,000 eligibility
# answers ran 1,400 INSERTs, over half the writes' time).
_ITEMS: Table = WorkItem.__table__  # type: ignore[assignment]
_VISITS: Table = WorkItemVisit.__table__  # type: ignore[assignment]
_AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]
_GONE = (AppointmentStatus.CANCELLED,)
_OVER = (AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW)


@dataclass(frozen=True, slots=True)
class WorkNeeded:
    """One problem a person must act on, about one record (`entity` is the model's
    singular snake-case name: "appointment", "patient", "outbox_item", ...).

    `patient_id` and `visits` are optional: the ledger finds the patient and the visit
    of an appointment, outbox message or mail itself; `visits` adds more affected visits.
    """

    kind: str
    entity: str
    entity_id: int
    summary: str
    role: str
    due_at: datetime | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    patient_id: int | None = None
    visits: tuple[int, ...] = ()

    @property
    def dedupe_key(self) -> str:
        return f"{self.kind}:{self.entity}:{self.entity_id}"


@dataclass(frozen=True, slots=True)
class Cleared:
    """A cause that went away, for one visit, one subject, or every item of one patient.

    Args:
        reason: The cause (`CloseReason.CHECK_CLEAN`, `VISIT_CANCELLED`, ...).
        appointment_id: The visit no longer affected: cleared from every open item that
            lists it; an item with no visit left closes.
        subject: ("patient", id) or another record: its open items with no visit close.
        patient_id: Every open item of the patient closes (a new booking).
        kinds: Only these kinds (else every kind that closes on `reason`).
        note: Said on the items it closes ("check 17").
    """

    reason: CloseReason
    appointment_id: int | None = None
    subject: tuple[str, int] | None = None
    patient_id: int | None = None
    kinds: frozenset[str] | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        targets = [self.appointment_id, self.subject, self.patient_id]
        if sum(target is not None for target in targets) != 1:
            raise ValueError("name exactly one of appointment_id, subject, patient_id")
        if self.reason not in AUTOMATIC:
            raise ValueError(f"{self.reason} is a person's decision, not a cause that clears")


# --- opening --------------------------------------------------------------------------


def open_work_items(
    session: Session,
    wanted: Iterable[WorkNeeded],
    *,
    now: datetime | None = None,
    actor: str = SYSTEM,
) -> dict[str, tuple[int, bool]]:
    """Open (or refresh) an item per problem; (item id, created) per `WorkNeeded.dedupe_key`.

    A few statements for the lot, whatever its size. Should another writer open one of
    the same items meanwhile, the insert is undone and the lot applied again, so that
    writer's item is refreshed instead of duplicated.
    """
    needs = list(wanted)
    if not needs:
        return {}
    moment = now or utcnow()
    try:
        return _open(session, needs, moment, actor)
    except IntegrityError:
        return _open(session, needs, moment, actor)


def open_work_item(
    session: Session,
    *,
    kind: str,
    entity: str,
    entity_id: int,
    summary: str,
    role: str,
    due_at: datetime | None = None,
    detail: Mapping[str, Any] | None = None,
    patient_id: int | None = None,
    visits: Sequence[int] = (),
) -> tuple[WorkItem, bool]:
    """`open_work_items` for one problem; returns the item and whether it is new."""
    wanted = WorkNeeded(
        kind,
        entity,
        entity_id,
        summary,
        role,
        due_at,
        dict(detail or {}),
        patient_id,
        tuple(visits),
    )
    item_id, created = open_work_items(session, [wanted])[wanted.dedupe_key]
    # The statements above bypass the identity map; read the row as it now stands.
    return session.get_one(WorkItem, item_id, populate_existing=True), created


@dataclass
class _Target:
    """What one open item should say once this lot is applied."""

    key: str
    spec: Kind
    entity: str
    entity_id: int
    patient_id: int | None
    summary: str
    due_at: datetime | None
    detail: dict[str, Any]
    visits: set[int]
    asked: list[str]  # the callers' dedupe keys that landed here


@dataclass(frozen=True, slots=True)
class _Owner:
    patient_id: int | None
    appointment_id: int | None


def _open(
    session: Session, needs: list[WorkNeeded], now: datetime, actor: str
) -> dict[str, tuple[int, bool]]:
    owners = _owners(session, needs)
    targets: dict[str, _Target] = {}
    for need in needs:
        spec = kind_of(need.kind, role=need.role)
        owner = owners.get((need.entity, need.entity_id), _Owner(None, None))
        patient_id = need.patient_id if need.patient_id is not None else owner.patient_id
        visits = set(need.visits)
        if owner.appointment_id is not None:
            visits.add(owner.appointment_id)
        entity, entity_id = need.entity, need.entity_id
        if spec.subject is Subject.PATIENT and patient_id is not None:
            entity, entity_id = "patient", patient_id
        key = f"{need.kind}:{entity}:{entity_id}"
        target = targets.get(key)
        if target is None:
            targets[key] = _Target(
                key,
                spec,
                entity,
                entity_id,
                patient_id,
                need.summary,
                need.due_at,
                dict(need.detail),
                visits,
                [need.dedupe_key],
            )
        else:
            target.summary, target.detail = need.summary, dict(need.detail)
            target.due_at = _earliest(target.due_at, need.due_at)
            target.visits |= visits
            target.asked.append(need.dedupe_key)
    existing: dict[str, int] = {}
    for chunk in chunks(sorted(targets)):
        rows = session.execute(
            select(WorkItem.dedupe_key, WorkItem.id).where(
                WorkItem.dedupe_key.in_(chunk), WorkItem.status == WorkStatus.OPEN
            )
        )
        existing.update((row.dedupe_key, row.id) for row in rows)
    refreshed = [
        {
            "id": existing[key],
            "summary": target.summary[:300],
            "detail": target.detail,
            "priority": target.spec.priority,
            "role": target.spec.role,
            "updated_at": now,
        }
        for key, target in targets.items()
        if key in existing
    ]
    if refreshed:
        session.execute(update(WorkItem), refreshed)
    ids = dict(existing)
    starts = _starts(session, {v for target in targets.values() for v in target.visits})
    fresh = [
        _new_row(target, _due(target, _first(target.visits, starts), now), now)
        for key, target in targets.items()
        if key not in existing
    ]
    if fresh:
        with session.begin_nested():
            created = session.execute(
                insert(_ITEMS).returning(_ITEMS.c.id, _ITEMS.c.dedupe_key), fresh
            )
            ids.update((row.dedupe_key, row.id) for row in created)
        _audit(
            session,
            [(ids[row["dedupe_key"]], "status", None, WorkStatus.OPEN.value) for row in fresh],
            actor=actor,
            source=f"work:{fresh[0]['kind']}" if len(fresh) == 1 else "work",
            now=now,
        )
        # A new item's first visits are part of its opening: listed, not audited one by one.
        listed = [
            {"work_item_id": ids[row["dedupe_key"]], "appointment_id": visit, "added_at": now}
            for row in fresh
            for visit in sorted(targets[row["dedupe_key"]].visits)
        ]
        if listed:
            session.execute(insert(_VISITS), listed)
    if existing:
        kept = {existing[key]: target for key, target in targets.items() if key in existing}
        _link(session, {item_id: target.visits for item_id, target in kept.items()}, now, actor)
        _set_due(session, kept, now)
    return {
        asked: (ids[key], key not in existing)
        for key, target in targets.items()
        for asked in target.asked
    }


def _starts(session: Session, appointment_ids: set[int]) -> dict[int, datetime]:
    """When each visit starts, cancelled ones left out (they no longer set a due date)."""
    found: dict[int, datetime] = {}
    for chunk in chunks(sorted(appointment_ids)):
        rows = session.execute(
            select(Appointment.id, Appointment.start_at).where(
                Appointment.id.in_(chunk), Appointment.status.not_in(_GONE)
            )
        )
        found.update((appointment_id, start) for appointment_id, start in rows.tuples())
    return found


def _first(visits: set[int], starts: Mapping[int, datetime]) -> datetime | None:
    known = [starts[v] for v in visits if v in starts]
    return min(known) if known else None


def _due(target: _Target, first_visit: datetime | None, now: datetime) -> datetime | None:
    """Due: before the first visit affected, else as the caller said, else soon after now."""
    spec = target.spec
    if spec.note:
        return None
    if first_visit is not None:
        return first_visit - spec.due_before
    if target.due_at is not None:
        return target.due_at
    return now + spec.due_within if spec.due_within is not None else None


def _owners(session: Session, needs: Sequence[WorkNeeded]) -> dict[tuple[str, int], _Owner]:
    """The patient and visit behind each record named: an appointment, a message, a mail."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for need in needs:
        wanted[need.entity].add(need.entity_id)
    owners: dict[tuple[str, int], _Owner] = {}
    for patient_id in wanted.get("patient", ()):
        owners[("patient", patient_id)] = _Owner(patient_id, None)
    for chunk in chunks(sorted(wanted.get("appointment", ()))):
        rows = session.execute(
            select(Appointment.id, Appointment.patient_id).where(Appointment.id.in_(chunk))
        )
        for appointment_id, patient_id in rows.tuples():
            owners[("appointment", appointment_id)] = _Owner(patient_id, appointment_id)
    for chunk in chunks(sorted(wanted.get("outbox_item", ()))):
        rows_outbox = session.execute(
            select(OutboxItem.id, OutboxItem.patient_id, OutboxItem.appointment_id).where(
                OutboxItem.id.in_(chunk)
            )
        )
        for item_id, item_patient, item_visit in rows_outbox.tuples():
            owners[("outbox_item", item_id)] = _Owner(item_patient, item_visit)
    for chunk in chunks(sorted(wanted.get("mail_message", ()))):
        rows_mail = session.execute(
            select(MailMessage.id, MailMessage.patient_id).where(MailMessage.id.in_(chunk))
        )
        for mail_id, mail_patient in rows_mail.tuples():
            owners[("mail_message", mail_id)] = _Owner(mail_patient, None)
    # A message about a visit belongs to the visit's patient even when it names none.
    missing = {o.appointment_id for o in owners.values() if o.patient_id is None}
    missing.discard(None)
    if missing:
        patients = {
            appointment_id: patient_id
            for appointment_id, patient_id in session.execute(
                select(Appointment.id, Appointment.patient_id).where(Appointment.id.in_(missing))
            ).tuples()
        }
        for name, owner in list(owners.items()):
            if owner.patient_id is None and owner.appointment_id in patients:
                owners[name] = _Owner(patients[owner.appointment_id], owner.appointment_id)
    return owners


def _new_row(target: _Target, due_at: datetime | None, now: datetime) -> dict[str, Any]:
    spec = target.spec
    return {
        "kind": spec.name,
        "entity": target.entity,
        "entity_id": target.entity_id,
        "dedupe_key": target.key,
        "summary": target.summary[:300],
        "priority": spec.priority,
        "role": spec.role,
        "patient_id": target.patient_id,
        "due_at": due_at,
        "detail": target.detail,
        "status": WorkStatus.OPEN,
        "created_at": now,
        "updated_at": now,
    }


def _link(session: Session, visits: Mapping[int, set[int]], now: datetime, actor: str) -> None:
    """Add each visit to its item, or list it again if it had been cleared from it."""
    item_ids = sorted(item for item, wanted in visits.items() if wanted)
    if not item_ids:
        return
    held: dict[tuple[int, int], bool] = {}
    for chunk in chunks(item_ids):
        rows = session.execute(
            select(
                WorkItemVisit.work_item_id, WorkItemVisit.appointment_id, WorkItemVisit.cleared_at
            ).where(WorkItemVisit.work_item_id.in_(chunk))
        )
        held.update(((r.work_item_id, r.appointment_id), r.cleared_at is None) for r in rows)
    added, relisted = [], []
    for item_id in item_ids:
        for appointment_id in sorted(visits[item_id]):
            state = held.get((item_id, appointment_id))
            if state is None:
                added.append((item_id, appointment_id))
            elif state is False:
                relisted.append((item_id, appointment_id))
    if added:
        session.execute(
            insert(_VISITS),
            [{"work_item_id": i, "appointment_id": a, "added_at": now} for i, a in added],
        )
    if relisted:
        session.execute(
            update(WorkItemVisit),
            [
                {"work_item_id": i, "appointment_id": a, "cleared_at": None, "cleared_reason": None}
                for i, a in relisted
            ],
        )
    changes = [(i, "visit_added", None, str(a)) for i, a in added + relisted]
    _audit(session, changes, actor=actor, source="work", now=now)


def _set_due(session: Session, targets: Mapping[int, _Target], now: datetime) -> None:
    """Refreshed items: due before the first visit they still list, else as they were."""
    firsts = _first_visits(session, list(targets))
    rows = []
    for item_id, target in targets.items():
        first = firsts.get(item_id)
        if target.spec.note or (first is None and target.due_at is None):
            continue
        rows.append({"id": item_id, "due_at": _due(target, first, now)})
    if rows:
        session.execute(update(WorkItem), rows)


def _first_visits(session: Session, item_ids: Sequence[int]) -> dict[int, datetime]:
    """The start of the earliest visit each item still affects (cancelled ones aside)."""
    found: dict[int, datetime] = {}
    for chunk in chunks(sorted(item_ids)):
        rows = session.execute(
            select(WorkItemVisit.work_item_id, func.min(Appointment.start_at))
            .join(Appointment, Appointment.id == WorkItemVisit.appointment_id)
            .where(
                WorkItemVisit.work_item_id.in_(chunk),
                WorkItemVisit.cleared_at.is_(None),
                Appointment.status.not_in(_GONE),
            )
            .group_by(WorkItemVisit.work_item_id)
        )
        for item_id, start in rows.tuples():
            if start is not None:
                # min() over a column comes back without the column's type on SQLite.
                found[item_id] = start if isinstance(start, datetime) else _instant(start)
    return found


def _instant(value: object) -> datetime:
    moment = datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    known = [moment for moment in (a, b) if moment is not None]
    return min(known) if known else None


# --- closing by a person ------------------------------------------------------------------


def close_work_item(
    session: Session,
    item_id: int,
    *,
    by: str,
    status: WorkStatus = WorkStatus.DONE,
    note: str | None = None,
    source: str = "cli",
    now: datetime | None = None,
) -> WorkItem:
    """Mark an open item done (with an optional note) or dismissed (`note` is the reason).

    Raises:
        LedgerError: The item does not exist, is already closed, or a dismissal has no reason.
    """
    if status is WorkStatus.OPEN:
        raise LedgerError("closing an item means done or dismissed")
    if status is WorkStatus.DISMISSED and not (note and note.strip()):
        raise LedgerError("dismissing an item needs a reason")
    item = open_item(session, item_id)
    moment = now or utcnow()
    reason = CloseReason.DONE if status is WorkStatus.DONE else CloseReason.DISMISSED
    apply_changes(
        session,
        item,
        {
            "status": status,
            "closed_by": by[:80],
            "closed_at": moment,
            "close_reason": reason.value,
            "close_note": note.strip() if note and note.strip() else None,
        },
        actor=by[:80],
        source=source,
    )
    return item


def open_item(session: Session, item_id: int) -> WorkItem:
    """The item, locked for the change about to be made; a `LedgerError` unless it is open."""
    item = session.get(WorkItem, item_id, with_for_update=True)
    if item is None:
        raise LedgerError(f"work item {item_id} does not exist")
    if item.status is not WorkStatus.OPEN:
        raise LedgerError(f"work item {item_id} is already closed ({item.status.value})")
    return item


# --- closing by itself ---------------------------------------------------------------------


def clear_work(
    session: Session,
    cleared: Iterable[Cleared],
    *,
    now: datetime | None = None,
    actor: str = SYSTEM,
) -> list[int]:
    """Apply causes that went away (see `Cleared`); returns the ids of the items closed."""
    moment = now or utcnow()
    causes = list(cleared)
    closing: dict[int, tuple[CloseReason, str | None]] = {}
    for cause in causes:
        if cause.subject is not None or cause.patient_id is not None:
            for item_id in _whole_items(session, cause):
                closing.setdefault(item_id, (cause.reason, cause.note))
    by_visit = [c for c in causes if c.appointment_id is not None]
    touched = _clear_visits(session, by_visit, moment, actor) if by_visit else {}
    emptied = _without_visits(session, set(touched))
    for item_id in emptied:
        closing.setdefault(item_id, touched[item_id])
    _close_all(session, closing, moment, actor)
    still_open = sorted(set(touched) - set(closing))
    if still_open:
        _refresh_due(session, still_open, moment)
    return sorted(closing)


def _closes_on(kinds: frozenset[str] | None, reason: CloseReason, name: str) -> bool:
    return reason in kind_of(name).closes_when and (kinds is None or name in kinds)


@dataclass(frozen=True, slots=True)
class _Listing:
    work_item_id: int
    appointment_id: int
    kind: str


def _open_listings(session: Session, appointment_ids: Sequence[int]) -> list[_Listing]:
    """The open items still listing these visits, found from the visits.

    Two indexed reads, not one join: given the join, SQLite walks every open item (by the
    board's status index) and probes its visits, a cost that grows with the queue, so that
    storing 100,000 eligibility answers took 14 minutes where 2,000 took 3 seconds.
    """
    listed = session.execute(
        select(WorkItemVisit.work_item_id, WorkItemVisit.appointment_id).where(
            WorkItemVisit.appointment_id.in_(appointment_ids),
            WorkItemVisit.cleared_at.is_(None),
        )
    ).all()
    kinds: dict[int, str] = {}
    for chunk in chunks(sorted({row.work_item_id for row in listed})):
        rows = session.execute(
            select(WorkItem.id, WorkItem.kind).where(
                WorkItem.id.in_(chunk), WorkItem.status == WorkStatus.OPEN
            )
        )
        kinds.update((item_id, kind) for item_id, kind in rows.tuples())
    return [
        _Listing(row.work_item_id, row.appointment_id, kinds[row.work_item_id])
        for row in listed
        if row.work_item_id in kinds
    ]


def _clear_visits(
    session: Session, causes: Sequence[Cleared], now: datetime, actor: str
) -> dict[int, tuple[CloseReason, str | None]]:
    """Clear the named visits from the open items listing them; the cause, per item touched."""
    by_appointment: dict[int, list[Cleared]] = defaultdict(list)
    for cause in causes:
        assert cause.appointment_id is not None
        by_appointment[cause.appointment_id].append(cause)
    touched: dict[int, tuple[CloseReason, str | None]] = {}
    cleared: list[dict[str, Any]] = []
    changes: list[tuple[int, str, str | None, str | None]] = []
    for chunk in chunks(sorted(by_appointment)):
        for row in _open_listings(session, chunk):
            match = next(
                (
                    c
                    for c in by_appointment[row.appointment_id]
                    if _closes_on(c.kinds, c.reason, row.kind)
                ),
                None,
            )
            if match is None:
                continue
            cleared.append(
                {
                    "work_item_id": row.work_item_id,
                    "appointment_id": row.appointment_id,
                    "cleared_at": now,
                    "cleared_reason": match.reason.value,
                }
            )
            touched[row.work_item_id] = (match.reason, match.note)
            changes.append(
                (row.work_item_id, "visit_cleared", str(row.appointment_id), match.reason.value)
            )
    if cleared:
        session.execute(update(WorkItemVisit), cleared)
    _audit(session, changes, actor=actor, source="work", now=now)
    return touched


def _without_visits(session: Session, item_ids: set[int]) -> set[int]:
    """Those of `item_ids` that no longer list any visit."""
    listing: set[int] = set()
    for chunk in chunks(sorted(item_ids)):
        listing.update(
            session.scalars(
                select(WorkItemVisit.work_item_id)
                .where(WorkItemVisit.work_item_id.in_(chunk), WorkItemVisit.cleared_at.is_(None))
                .distinct()
            )
        )
    return item_ids - listing


def _whole_items(session: Session, cause: Cleared) -> list[int]:
    """Open items a subject- or patient-wide cause closes outright."""
    query = select(WorkItem.id, WorkItem.kind).where(WorkItem.status == WorkStatus.OPEN)
    if cause.patient_id is not None:
        query = query.where(WorkItem.patient_id == cause.patient_id)
    else:
        assert cause.subject is not None
        entity, entity_id = cause.subject
        still_listed = (
            select(WorkItemVisit.work_item_id)
            .where(
                WorkItemVisit.work_item_id == WorkItem.id,
                WorkItemVisit.cleared_at.is_(None),
            )
            .exists()
        )
        query = query.where(
            WorkItem.entity == entity, WorkItem.entity_id == entity_id, ~still_listed
        )
    rows = session.execute(query).all()
    return [row.id for row in rows if _closes_on(cause.kinds, cause.reason, row.kind)]


def _close_all(
    session: Session,
    closing: Mapping[int, tuple[CloseReason, str | None]],
    now: datetime,
    actor: str,
) -> None:
    if not closing:
        return
    session.execute(
        update(WorkItem),
        [
            {
                "id": item_id,
                "status": WorkStatus.DONE,
                "closed_by": actor,
                "closed_at": now,
                "close_reason": reason.value,
                "close_note": note,
                "updated_at": now,
            }
            for item_id, (reason, note) in closing.items()
        ],
    )
    changes: list[tuple[int, str, str | None, str | None]] = []
    for item_id, (reason, _note) in closing.items():
        changes.append((item_id, "status", WorkStatus.OPEN.value, WorkStatus.DONE.value))
        changes.append((item_id, "close_reason", None, reason.value))
    _audit(session, changes, actor=actor, source="work", now=now)


def _refresh_due(session: Session, item_ids: Sequence[int], now: datetime) -> None:
    """Move an item's due date to its first visit still affected."""
    firsts = _first_visits(session, item_ids)
    kinds = {
        item_id: kind
        for item_id, kind in session.execute(
            select(WorkItem.id, WorkItem.kind).where(WorkItem.id.in_(item_ids))
        ).tuples()
    }
    rows = []
    for item_id in item_ids:
        spec = kind_of(kinds[item_id])
        first = firsts.get(item_id)
        if first is not None and not spec.note:
            rows.append({"id": item_id, "due_at": first - spec.due_before, "updated_at": now})
    if rows:
        session.execute(update(WorkItem), rows)


def sweep_work(session: Session, *, now: datetime | None = None) -> list[int]:
    """Clear visits that are over or cancelled from the open items listing them.

    Bookings and patient links clear a cancellation as it happens; this catches the rest
    (a visit's time passing, a status set elsewhere). The daily digest runs it first.
    """
    moment = now or utcnow()
    rows = session.execute(
        select(Appointment.id, Appointment.status, Appointment.start_at)
        .join(WorkItemVisit, WorkItemVisit.appointment_id == Appointment.id)
        .join(WorkItem, WorkItem.id == WorkItemVisit.work_item_id)
        .where(
            WorkItem.status == WorkStatus.OPEN,
            WorkItemVisit.cleared_at.is_(None),
            (Appointment.start_at < moment) | Appointment.status.in_(_GONE + _OVER),
        )
        .distinct()
    ).all()
    causes = [
        Cleared(
            CloseReason.VISIT_CANCELLED if status in _GONE else CloseReason.VISIT_PAST,
            appointment_id=appointment_id,
        )
        for appointment_id, status, _start in rows
    ]
    return clear_work(session, causes, now=moment)


# --- reading ----------------------------------------------------------------------------


def open_items_by_kind(
    session: Session, *, notes: bool = False, notes_as_tasks: Collection[str] = ()
) -> Sequence[tuple[str, int]]:
    """Open items counted by kind, for status pages; notes only when `notes` is set."""
    query = select(WorkItem.kind, func.count()).where(WorkItem.status == WorkStatus.OPEN)
    if not notes:
        query = query.where(WorkItem.kind.not_in(note_kinds(notes_as_tasks)))
    rows = session.execute(query.group_by(WorkItem.kind).order_by(WorkItem.kind))
    return [(kind, count) for kind, count in rows]


# --- history ------------------------------------------------------------------------------


def _audit(
    session: Session,
    changes: Sequence[tuple[int, str, str | None, str | None]],
    *,
    actor: str,
    source: str,
    now: datetime,
) -> None:
    """One audit entry per (item, field, before, after), in one statement."""
    if not changes:
        return
    session.execute(
        insert(_AUDIT),
        [
            {
                "entity": _ENTITY,
                "entity_id": item_id,
                "field": name,
                "before": before,
                "after": after,
                "actor": actor[:80],
                "source": source[:80],
                "at": now,
            }
            for item_id, name, before, after in changes
        ],
    )
