"""Recording what is due: every reminder whose time has come, once, pending or skipped with why.

A reminder is recorded once per appointment time, offset and channel, however
many runs see it due and whatever the appointment's version: `Identity` is what
tells whether it is already in the outbox. The preview reads the same candidates
and identities without writing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from office.clock import chunks
from office.db import transaction
from office.ledgers.outbox import OutboxRow, enqueue_outbox
from office.models import Appointment, AppointmentType, OutboxItem, OutboxStatus
from office.reminders import work
from office.reminders.policy import (
    DEFAULT_POLICY,
    OffsetError,
    Planned,
    Policy,
    due_now,
    parse_offsets,
    plan_reminders,
    reachable,
)
from office.reminders.rows import KINDS, new_row
from office.reminders.tally import Tally
from office.reminders.visits import ACTIVE, Visit, load_visits, lock_appointments, stamp

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["Identity", "candidates", "enqueue_due", "identity", "max_lead", "recorded"]

Identity = tuple[int, str, str, str, int]
"""appointment, message kind, offset, channel, start: one reminder, whatever the version."""


def enqueue_due(
    factory: sessionmaker[Session], *, now: datetime, policy: Policy = DEFAULT_POLICY
) -> Tally:
    """Record every reminder whose time has come: pending to send, or skipped with why.

    One that is due while the patient's window is closed waits for the next run
    inside it.
    """
    tally = Tally()
    with factory() as session:
        ids = candidates(session, now, now + max_lead(session, policy))
    for chunk in chunks(ids):
        with transaction(factory) as session:
            lock_appointments(session, chunk)
            visits = load_visits(session, chunk, policy)
            seen = recorded(session, chunk)
            rows: list[OutboxRow] = []
            for visit in visits.values():
                rows.extend(_due_rows(session, visit, seen, now, policy, tally))
            enqueue_outbox(session, rows)
    return tally


def max_lead(session: Session, policy: Policy) -> timedelta:
    """The furthest ahead of its appointment any reminder goes, over every appointment type."""
    lead = max((o.max_lead for o in policy.default_offsets), default=timedelta(0))
    for raw in session.scalars(select(AppointmentType.reminder_offsets)):
        try:
            parsed = parse_offsets(raw) if raw is not None else ()
        except OffsetError:
            continue
        lead = max([lead, *(o.max_lead for o in parsed)])
    return lead


def candidates(session: Session, now: datetime, until: datetime) -> list[int]:
    """Active appointments starting after `now` and by `until`, by id."""
    return list(
        session.scalars(
            select(Appointment.id)
            .where(
                Appointment.status.in_(ACTIVE),
                Appointment.start_at > now,
                Appointment.start_at <= until,
            )
            .order_by(Appointment.id)
        )
    )


def identity(visit: Visit, plan: Planned) -> Identity:
    """The key fields that tell whether this reminder is already in the outbox."""
    return (
        visit.appointment_id,
        "reminder",
        plan.offset.key,
        str(plan.channel),
        stamp(visit.start),
    )


def recorded(session: Session, ids: Sequence[int]) -> set[Identity]:
    """Messages already recorded for these appointments, whatever their version."""
    found: set[Identity] = set()
    for appointment_id, kind, channel, detail in session.execute(
        select(
            OutboxItem.appointment_id, OutboxItem.kind, OutboxItem.channel, OutboxItem.detail
        ).where(
            OutboxItem.appointment_id.in_(ids),
            OutboxItem.kind.in_(KINDS),
            OutboxItem.status != OutboxStatus.WITHDRAWN,
        )
    ):
        found.add(
            (
                appointment_id,
                kind,
                str(detail.get("offset")),
                str(channel),
                int(detail.get("start", 0)),
            )
        )
    return found


def _due_rows(
    session: Session,
    visit: Visit,
    seen: set[Identity],
    now: datetime,
    policy: Policy,
    tally: Tally,
) -> list[OutboxRow]:
    if visit.status not in ACTIVE or visit.start <= now:
        return []
    if visit.offsets_error is not None:
        work.settings_invalid(session, visit.type_id, visit.offsets_error)
        return []
    open_window = policy.window.may_send(now, visit.zone)
    rows = []
    for plan in due_now(plan_reminders(visit.facts, policy), now):
        key = identity(visit, plan)
        if key in seen:
            continue
        if plan.skip is None and not open_window:
            continue  # due, but the window is closed: the first run inside it sends it
        seen.add(key)
        rows.append(
            new_row(
                visit,
                kind="reminder",
                offset=plan.offset.key,
                channel=plan.channel,
                recipient=plan.address,
                due_at=plan.send_at,
                now=now,
                skip=plan.skip,
            )
        )
        tally.add("reminder", plan.channel, "skipped" if plan.skip else "queued")
    if rows:
        work.bad_recipients(session, visit)
        if not reachable(visit.contact):
            work.no_channel(session, visit)
    return rows
