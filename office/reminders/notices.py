"""Booking confirmations, reschedule and cancellation notices, and withdrawing what went stale.

Called in the transaction that booked, moved or cancelled an appointment (or by
the notices flow right after it): the caller's transaction commits.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from office.ledgers.outbox import enqueue_outbox, move_outbox
from office.models import AppointmentStatus, Channel, OutboxItem, OutboxStatus
from office.reminders import work
from office.reminders.policy import DEFAULT_POLICY, Policy, notice_route, route
from office.reminders.rows import KINDS, NOTICE_OFFSET, TOLD, MessageKind, new_row
from office.reminders.tally import Tally
from office.reminders.visits import ACTIVE, Visit, load_visits, lock_appointments, stamp

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["enqueue_notices", "withdraw_pending"]


def enqueue_notices(
    session: Session, appointment_id: int, *, now: datetime, policy: Policy = DEFAULT_POLICY
) -> Tally:
    """Record the booking confirmation, reschedule or cancellation notice this visit now needs.

    Withdraws whatever is pending for a time the appointment no longer has. The
    caller's transaction commits; the appointment row is locked first.
    """
    tally = Tally()
    lock_appointments(session, [appointment_id])
    visit = load_visits(session, [appointment_id], policy).get(appointment_id)
    if visit is None:
        return tally
    start = stamp(visit.start)
    cancelled = visit.status is AppointmentStatus.CANCELLED

    def stale(item: OutboxItem) -> bool:
        if cancelled:
            return item.kind != "cancellation"
        return bool(item.detail.get("start") != start) or item.kind == "cancellation"

    withdraw_pending(
        session,
        appointment_id,
        reason="appointment cancelled" if cancelled else "appointment moved",
        now=now,
        keep=lambda item: not stale(item),
        tally=tally,
    )
    if visit.start <= now:
        return tally
    history = list(
        session.scalars(
            select(OutboxItem)
            .where(OutboxItem.appointment_id == appointment_id, OutboxItem.kind.in_(KINDS))
            .order_by(OutboxItem.id)
        )
    )
    kind, extra = _notice_needed(visit, history)
    if kind is None:
        return tally
    work.bad_recipients(session, visit)
    found = notice_route(visit.contact)
    if found is None or found.address is None:
        work.no_channel(session, visit)
        reason = route(visit.contact, Channel.EMAIL).reason or "no usable channel"
        row = new_row(
            visit,
            kind=kind,
            offset=NOTICE_OFFSET,
            channel=Channel.EMAIL,
            recipient=None,
            due_at=now,
            now=now,
            skip=reason,
            extra=extra,
        )
        enqueue_outbox(session, [row])
        tally.add(kind, Channel.EMAIL, "skipped")
        return tally
    due_at = now
    if found.channel is Channel.SMS:
        due_at = policy.window.next_opening(now, visit.zone)
    row = new_row(
        visit,
        kind=kind,
        offset=NOTICE_OFFSET,
        channel=found.channel,
        recipient=found.address,
        due_at=due_at,
        now=now,
        extra=extra,
    )
    enqueue_outbox(session, [row])
    tally.add(kind, found.channel, "queued")
    return tally


def _notice_needed(
    visit: Visit, history: list[OutboxItem]
) -> tuple[MessageKind | None, dict[str, Any]]:
    """Which notice the visit's state calls for, given what was already recorded for it."""
    start = stamp(visit.start)
    recorded = {
        (item.kind, item.detail.get("start"))
        for item in history
        if item.status is not OutboxStatus.WITHDRAWN
    }
    told = [
        int(item.detail.get("start", 0))
        for item in history
        if item.kind != "cancellation" and item.status in TOLD
    ]
    if visit.status is AppointmentStatus.CANCELLED:
        if visit.send_change_notices and ("cancellation", start) not in recorded:
            return "cancellation", {}
        return None, {}
    if visit.status not in ACTIVE:
        return None, {}
    if told:
        previous = told[-1] if told[-1] != start else None
    else:
        previous = stamp(visit.previous_start) if visit.previous_start else None
    if previous is not None:
        if visit.send_change_notices and ("reschedule", start) not in recorded:
            return "reschedule", {"old_start": previous}
        return None, {}
    if (
        not told
        and visit.status is AppointmentStatus.BOOKED
        and visit.send_confirmation
        and not any(item.kind == "confirmation" for item in history)
    ):
        return "confirmation", {}
    return None, {}


def withdraw_pending(
    session: Session,
    appointment_id: int,
    *,
    reason: str,
    now: datetime,
    keep: Callable[[OutboxItem], bool] | None = None,
    tally: Tally | None = None,
) -> int:
    """Withdraw this appointment's unsent messages (those `keep` spares stay); returns how many."""
    withdrawn = 0
    for item in session.scalars(
        select(OutboxItem).where(
            OutboxItem.appointment_id == appointment_id,
            OutboxItem.kind.in_(KINDS),
            OutboxItem.status == OutboxStatus.PENDING,
        )
    ):
        if keep is not None and keep(item):
            continue
        if move_outbox(
            session, item.id, OutboxStatus.PENDING, OutboxStatus.WITHDRAWN, now=now, error=reason
        ):
            withdrawn += 1
            if tally is not None:
                tally.add(item.kind, item.channel, "withdrawn")
    return withdrawn
