"""The follow-up ledger: one row per (inbox item, follow-up, record), and its attempts.

States: pending (recorded, not started) → started (`claim`; its own Prefect run once
`record_run` names it) → done; a failed attempt is `failed` with the time of the next one
(`BACKOFF`); after `MAX_ATTEMPTS` it is `gave_up` and a `followup_failed` work item asks a
person. A claim whose run was never named (its dispatcher died between the two) is claimed
again after `STALE_CLAIM`, as the same attempt, so the same idempotency key finds the run
if it was created. A replay of the inbox item puts its follow-ups back to pending with a
fresh budget of `MAX_ATTEMPTS`; their attempt numbers go on counting, so each attempt's run
keeps a key of its own. Every function takes the caller's session and never commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from office.ledgers.work import WorkNeeded, open_work_items
from office.models import Followup, FollowupStatus

__all__ = [
    "BACKOFF",
    "MAX_ATTEMPTS",
    "STALE_CLAIM",
    "Claim",
    "FollowupCall",
    "claim",
    "due_followups",
    "followups_of",
    "mark_done",
    "mark_failed",
    "mark_started",
    "record_followups",
    "record_run",
    "run_ended",
    "started_followups",
]

MAX_ATTEMPTS: Final = 4
# The wait before attempt 2, 3 and 4.
BACKOFF: Final = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30))
# A pending row nobody started (the run that recorded it died first) is started after this.
PENDING_GRACE: Final = timedelta(seconds=30)
# A claim with no run named after this is claimed again: its dispatcher died, or the run it
# held in process (no deployment) did. Longer than an in-process check with its retries.
STALE_CLAIM: Final = timedelta(minutes=30)
_TITLES: Final = {
    "verify_appointment": "Eligibility check after a booking or coverage change failed",
    "appointment_notices": "Booking confirmation or change notice could not be queued",
}


@dataclass(frozen=True, slots=True)
class FollowupCall:
    """A follow-up to run: its name and the record (an appointment) it runs for."""

    name: str
    entity_id: int


@dataclass(frozen=True, slots=True)
class Claim:
    """A follow-up one dispatcher now owns: which attempt, of what, for which record."""

    followup_id: int
    attempt: int
    name: str
    entity_id: int
    recorded_at: datetime

    @property
    def run_key(self) -> str:
        """The idempotency key of this attempt's run: a double dispatch of it is one run,
        the next attempt a new one. The row's creation time tells apart two databases'
        follow-up 1 (a demo seeded again) on one Prefect server, which keeps keys."""
        return f"followup-{self.followup_id}-{self.attempt}-{self.recorded_at:%Y%m%dT%H%M%S%f}"


def record_followups(
    session: Session, inbox_id: int | None, calls: Iterable[FollowupCall], *, now: datetime
) -> list[int]:
    """Record each call as pending; returns the rows' ids.

    A replay finds its rows and puts them back to pending, each with a fresh budget of
    attempts (one that had given up gets `MAX_ATTEMPTS` more).
    """
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
            row.attempts_at_replay = row.attempts
        rows.append(row)
    session.flush(rows)
    return [row.id for row in rows]


def followups_of(session: Session, inbox_id: int) -> Sequence[Followup]:
    return session.scalars(
        select(Followup).where(Followup.inbox_id == inbox_id).order_by(Followup.id)
    ).all()


def due_followups(session: Session, *, now: datetime, limit: int = 100) -> list[int]:
    """Pending rows nobody started, failed ones whose next attempt is due, and stale claims."""
    rows = session.scalars(
        select(Followup.id)
        .where(
            or_(
                (Followup.status == FollowupStatus.PENDING)
                & (Followup.next_attempt_at <= now - PENDING_GRACE),
                (Followup.status == FollowupStatus.FAILED) & (Followup.next_attempt_at <= now),
                _stale_claim(now),
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


def _stale_claim(now: datetime) -> ColumnElement[bool]:
    return (
        (Followup.status == FollowupStatus.STARTED)
        & Followup.run_id.is_(None)
        & (Followup.started_at <= now - STALE_CLAIM)
    )


def claim(session: Session, followup_id: int, *, now: datetime) -> Claim | None:
    """Take a follow-up to start it: a new attempt when it is pending or failed, the same
    attempt when its last claim went stale; None when another dispatcher has it or it is
    over (done, given up)."""
    row = session.get_one(Followup, followup_id, with_for_update=True)
    if row.status in (FollowupStatus.PENDING, FollowupStatus.FAILED):
        attempt = mark_started(session, followup_id, None, now=now)
    elif (
        row.status is FollowupStatus.STARTED
        and row.run_id is None
        and row.started_at is not None
        and row.started_at <= now - STALE_CLAIM
    ):
        row.started_at = now
        attempt = row.attempts
    else:
        return None
    return Claim(followup_id, attempt, row.name, row.entity_id, row.created_at)


def record_run(session: Session, held: Claim, run_id: str) -> bool:
    """Name the Prefect run that carries a claimed attempt; False when the row moved on
    (a replay put it back to pending meanwhile)."""
    row = session.get_one(Followup, held.followup_id, with_for_update=True)
    if row.status is not FollowupStatus.STARTED or row.attempts != held.attempt:
        return False
    row.run_id = run_id
    return True


def run_ended(
    session: Session, followup_id: int, run_id: str, error: str | None, *, now: datetime
) -> bool:
    """The Prefect run `run_id` reached a final state: done when `error` is None, else a
    failed attempt (`mark_failed`). False, and nothing changed, when the row no longer
    waits on that run."""
    row = session.get_one(Followup, followup_id, with_for_update=True)
    if row.status is not FollowupStatus.STARTED or row.run_id != run_id:
        return False
    if error is None:
        mark_done(session, followup_id, now=now)
    else:
        mark_failed(session, followup_id, error, now=now)
    return True


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
    attempts = max(row.attempts - row.attempts_at_replay, 1)  # of this budget
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
