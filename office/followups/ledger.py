"""The follow-up ledger: one row per (inbox item, follow-up, record), and its attempts.

States: pending (recorded, not started) → started (its own Prefect run, `run_id`) → done;
a failed attempt is `failed` with the time of the next one (`BACKOFF`); after
`MAX_ATTEMPTS` it is `gave_up` and a `followup_failed` work item asks a person. A replay
of the inbox item puts its follow-ups back to pending. Every function takes the caller's
session and never commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from office.ledgers.work import WorkNeeded, open_work_items
from office.models import Followup, FollowupStatus

__all__ = [
    "BACKOFF",
    "MAX_ATTEMPTS",
    "FollowupCall",
    "due_followups",
    "followups_of",
    "mark_done",
    "mark_failed",
    "mark_started",
    "record_followups",
    "started_followups",
]

MAX_ATTEMPTS: Final = 4
# The wait before attempt 2, 3 and 4.
BACKOFF: Final = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30))
# A pending row nobody started (the run that recorded it died first) is started after this.
PENDING_GRACE: Final = timedelta(seconds=30)
_TITLES: Final = {
    "verify_appointment": "Eligibility check after a booking or coverage change failed",
    "appointment_notices": "Booking confirmation or change notice could not be queued",
}


@dataclass(frozen=True, slots=True)
class FollowupCall:
    """A follow-up to run: its name and the record (an appointment) it runs for."""

    name: str
    entity_id: int


def record_followups(
    session: Session, inbox_id: int | None, calls: Iterable[FollowupCall], *, now: datetime
) -> list[int]:
    """Record each call as pending (again, if a replay finds it); returns the rows' ids."""
    wanted = list(dict.fromkeys(calls))
    if not wanted:
        return []
    existing = {
        (row.name, row.entity_id): row
        for row in session.scalars(
            select(Followup).where(
                Followup.inbox_id == inbox_id
                if inbox_id is not None
                else Followup.inbox_id.is_(None),
                Followup.name.in_({c.name for c in wanted}),
                Followup.entity_id.in_({c.entity_id for c in wanted}),
            )
        )
    }
    rows = []
    for call in wanted:
        row = existing.get((call.name, call.entity_id))
        if row is None:
            row = Followup(
                inbox_id=inbox_id,
                name=call.name,
                entity_id=call.entity_id,
                status=FollowupStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            session.add(row)
        else:
            row.status, row.next_attempt_at, row.error = FollowupStatus.PENDING, now, None
            row.finished_at = None
        rows.append(row)
    session.flush(rows)
    return [row.id for row in rows]


def followups_of(session: Session, inbox_id: int) -> Sequence[Followup]:
    return session.scalars(
        select(Followup).where(Followup.inbox_id == inbox_id).order_by(Followup.id)
    ).all()


def due_followups(session: Session, *, now: datetime, limit: int = 100) -> list[int]:
    """Pending rows nobody started, and failed ones whose next attempt is due."""
    rows = session.scalars(
        select(Followup.id)
        .where(
            or_(
                (Followup.status == FollowupStatus.PENDING)
                & (Followup.next_attempt_at <= now - PENDING_GRACE),
                (Followup.status == FollowupStatus.FAILED) & (Followup.next_attempt_at <= now),
            )
        )
        .order_by(Followup.next_attempt_at, Followup.id)
        .limit(limit)
    )
    return list(rows)


def started_followups(session: Session, *, limit: int = 500) -> list[tuple[int, str]]:
    """(id, run id) of the follow-ups whose runs have not reported back yet."""
    rows = session.execute(
        select(Followup.id, Followup.run_id)
        .where(Followup.status == FollowupStatus.STARTED, Followup.run_id.is_not(None))
        .order_by(Followup.id)
        .limit(limit)
    ).tuples()
    return [(row_id, run_id) for row_id, run_id in rows if run_id is not None]


def mark_started(session: Session, followup_id: int, run_id: str | None, *, now: datetime) -> int:
    """One more attempt has begun (as Prefect run `run_id`); returns the attempt number."""
    row = session.get_one(Followup, followup_id, with_for_update=True)
    row.attempts += 1
    row.status, row.run_id, row.started_at = FollowupStatus.STARTED, run_id, now
    return row.attempts


def mark_done(session: Session, followup_id: int, *, now: datetime) -> None:
    row = session.get_one(Followup, followup_id, with_for_update=True)
    row.status, row.finished_at, row.error = FollowupStatus.DONE, now, None


def mark_failed(session: Session, followup_id: int, error: str, *, now: datetime) -> bool:
    """The attempt failed (`error`: its kind, no PHI). Retried later, or — out of attempts —
    given up with a work item; returns True when it gave up."""
    row = session.get_one(Followup, followup_id, with_for_update=True)
    row.error = error[:300]
    row.finished_at = now
    attempts = max(row.attempts, 1)
    if attempts < MAX_ATTEMPTS:
        row.status = FollowupStatus.FAILED
        row.next_attempt_at = now + BACKOFF[min(attempts, len(BACKOFF)) - 1]
        return False
    row.status = FollowupStatus.GAVE_UP
    open_work_items(
        session,
        [
            WorkNeeded(
                kind="followup_failed",
                entity="appointment",
                entity_id=row.entity_id,
                summary=f"{_TITLES.get(row.name, row.name)} ({attempts} attempts)",
                role="front_desk",
                detail={"followup_id": row.id, "followup": row.name, "inbox_id": row.inbox_id},
            )
        ],
        now=now,
    )
    return True
