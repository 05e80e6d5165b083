"""What `office status` and the demo summary report: counts, and the board's open items by kind.

Notes (information shown on a visit, not tasks) are counted apart, as the board shows them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from office.ledgers import open_items_by_kind
from office.models import (
    Appointment,
    AppointmentStatus,
    Base,
    InboxItem,
    OutboxItem,
    Patient,
    Staff,
    utcnow,
)

__all__ = ["StatusReport", "collect_status"]


@dataclass(frozen=True)
class StatusReport:
    counts: list[tuple[str, int]]
    open_work: list[tuple[str, int]]


def _count(session: Session, model: type[Base], *where: object) -> int:
    query = select(func.count()).select_from(model)
    for clause in where:
        query = query.where(clause)  # type: ignore[arg-type]
    return int(session.scalar(query) or 0)


def _by_status(session: Session, column: object, label: str) -> list[tuple[str, int]]:
    rows = session.execute(select(column, func.count()).group_by(column).order_by(column))  # type: ignore[call-overload]
    return [(f"{label} {status.value}", count) for status, count in rows]


def collect_status(session: Session, *, notes_as_tasks: Collection[str] = ()) -> StatusReport:
    """Counts of what is stored; open work items by kind as the board counts them.

    Args:
        notes_as_tasks: The note kinds the practice works as tasks (its settings).
    """
    now = utcnow()
    everything = dict(open_items_by_kind(session, notes=True))
    tasks = list(open_items_by_kind(session, notes_as_tasks=notes_as_tasks))
    counts = [
        ("patients", _count(session, Patient)),
        ("staff", _count(session, Staff)),
        (
            "upcoming appointments",
            _count(
                session,
                Appointment,
                Appointment.start_at >= now,
                Appointment.status.in_([AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED]),
            ),
        ),
        *_by_status(session, InboxItem.status, "inbox"),
        *_by_status(session, OutboxItem.status, "outbox"),
        ("open notes on visits", sum(everything.values()) - sum(n for _kind, n in tasks)),
    ]
    return StatusReport(counts=counts, open_work=tasks)
