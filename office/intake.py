"""Acting on stored inbound payloads: one handler per source, every outcome recorded.

The web app only stores; this module decides. A payload a handler cannot use is
rejected with its reason and kept, so it can be replayed once the cause is fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.ledgers import mark_processed, reject, start_attempt
from office.models import InboxItem, InboxStatus, utcnow

__all__ = ["HANDLERS", "IntakeRejected", "Outcome", "due_for_sweep", "process_item"]


class IntakeRejected(ValueError):
    """The payload cannot be acted on; the message says why, without its contents."""


@dataclass(frozen=True)
class Outcome:
    """What a handler did: the record it touched and what should run next."""

    entity: str | None = None
    entity_id: int | None = None
    followups: tuple[str, ...] = field(default=())  # e.g. "verify_appointment"


# A handler gets the clock's reading for this attempt, so it never reads the time itself.
Handler = Callable[[Session, InboxItem, datetime], Outcome]


def _bookings(session: Session, item: InboxItem, now: datetime) -> Outcome:
    from office.bookings import apply_booking

    return apply_booking(session, item, now=now)


HANDLERS: dict[str, Handler] = {"bookings": _bookings}


@dataclass(frozen=True)
class ProcessResult:
    inbox_id: int
    status: InboxStatus
    outcome: Outcome | None = None
    reason: str | None = None


def process_item(
    factory: sessionmaker[Session],
    item_id: int,
    *,
    handlers: dict[str, Handler] | None = None,
    now: datetime | None = None,
) -> ProcessResult:
    """Run the source's handler on one stored payload, recording the attempt first."""
    table = HANDLERS if handlers is None else handlers
    moment = now or utcnow()
    with transaction(factory) as session:
        item = session.get(InboxItem, item_id)
        if item is None:
            raise IntakeRejected(f"inbox item {item_id} does not exist")
        if item.status is InboxStatus.PROCESSED:
            return ProcessResult(item.id, item.status)
        start_attempt(item, moment)
    source = item.source.split(":", 1)[-1]
    handler = table.get(source)
    try:
        if handler is None:
            raise IntakeRejected(f"no handler for source {source!r}")
        with transaction(factory) as session:
            live = session.get_one(InboxItem, item_id)
            outcome = handler(session, live, moment)
            mark_processed(live, moment)
    except IntakeRejected as exc:
        with transaction(factory) as session:
            reject(session.get_one(InboxItem, item_id), str(exc))
        return ProcessResult(item_id, InboxStatus.REJECTED, reason=str(exc))
    return ProcessResult(item_id, InboxStatus.PROCESSED, outcome=outcome)


def due_for_sweep(
    session: Session,
    *,
    now: datetime | None = None,
    grace: timedelta = timedelta(minutes=1),
    retry_after: timedelta = timedelta(minutes=10),
    limit: int = 100,
) -> list[int]:
    """Pending items nobody has picked up: stored a while ago, not attempted recently."""
    moment = now or utcnow()
    rows = session.scalars(
        select(InboxItem.id)
        .where(
            InboxItem.status == InboxStatus.PENDING,
            InboxItem.received_at <= moment - grace,
            or_(
                InboxItem.last_attempt_at.is_(None),
                InboxItem.last_attempt_at <= moment - retry_after,
            ),
        )
        .order_by(InboxItem.received_at)
        .limit(limit)
    )
    return list(rows)
