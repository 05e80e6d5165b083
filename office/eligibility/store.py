"""Storing answers: what each check ended as, and the work items its alerts open.

An `Answer` is made from the payer's response (`answered`) or from the reason there is
none (`failed`); `Recorder` writes answers in small transactions as they arrive, each
check's row together with the work items it raises, so a crash loses at most the last
few and those checks stay pending for a retried batch.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, Update, bindparam
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from office.contracts.payers import PayerResponse
from office.eligibility.alerts import (
    Alert,
    AlertKind,
    alerts_for,
    deductible_remaining,
    visit_copay,
)
from office.eligibility.inquiry import Inquiry
from office.eligibility.types import CoverageStatus, EligibilityResult
from office.ledgers.work import Cleared, WorkNeeded, clear_work, open_work_items
from office.models import CheckStatus, EligibilityCheck
from office.workqueue.kinds import CloseReason
from office.writes import Writer

__all__ = [
    "Answer",
    "AnswersNotStored",
    "Recorder",
    "answered",
    "failed",
    "store_answers",
]

_KINDS = frozenset(kind.value for kind in AlertKind)
_CHECKS: Table = EligibilityCheck.__table__  # type: ignore[assignment]
_STILL_PENDING: Update = (
    _CHECKS.update()
    .where(_CHECKS.c.id == bindparam("check_id"))
    .values(status=bindparam("status"), attempts=bindparam("attempts"), error=bindparam("error"))
)
_SETTLED: Update = _STILL_PENDING.values(
    {
        name: bindparam(name)
        for name in (
            "checked_at",
            "raw",
            "raw_format",
            "result",
            "copay",
            "deductible_remaining",
            "plan_end",
        )
    }
)
_STATUS = {
    CoverageStatus.ACTIVE: CheckStatus.ACTIVE,
    CoverageStatus.INACTIVE: CheckStatus.INACTIVE,
    CoverageStatus.UNVERIFIED: CheckStatus.UNVERIFIED,
}


class AnswersNotStored(RuntimeError):
    """The database refused a batch of answers; those checks stay pending for a retry."""

    def __init__(self, count: int, kind: str) -> None:
        super().__init__(f"could not store {count} eligibility answers ({kind})")


@dataclass(frozen=True, slots=True)
class Answer:
    """What to store for one check; alerts become work items in the same transaction."""

    check_id: int
    status: CheckStatus
    attempts: int
    checked_at: datetime | None
    entity: tuple[str, int]
    due_at: datetime | None
    result: EligibilityResult | None = None
    raw: str | None = None
    raw_format: str | None = None
    error: str | None = None
    copay: Decimal | None = None
    deductible_remaining: Decimal | None = None
    plan_end: date | None = None
    alerts: tuple[Alert, ...] = ()
    patient_id: int | None = None

    def work(self) -> Iterator[WorkNeeded]:
        """A work item per alert, about the visit (or the patient, for a refresh); the queue's
        catalog makes a patient-level problem one item for the patient."""
        entity, entity_id = self.entity
        for alert in self.alerts:
            yield WorkNeeded(
                kind=alert.kind.value,
                entity=entity,
                entity_id=entity_id,
                summary=_sentence(alert.problem) or alert.summary,
                role=alert.role,
                due_at=self.due_at,
                detail={"check_id": self.check_id, **alert.detail},
                patient_id=self.patient_id,
            )

    def cleared(self) -> Cleared | None:
        """An active answer clears, for its visit (or patient), every problem it did not raise."""
        if self.status is not CheckStatus.ACTIVE:
            return None
        kinds = _KINDS - {alert.kind.value for alert in self.alerts}
        entity, entity_id = self.entity
        note = f"check {self.check_id}"
        if entity == "appointment":
            return Cleared(
                CloseReason.CHECK_CLEAN, appointment_id=entity_id, kinds=kinds, note=note
            )
        return Cleared(CloseReason.CHECK_CLEAN, subject=self.entity, kinds=kinds, note=note)

    def row(self) -> dict[str, Any]:
        """The check's columns as this answer leaves them, its id as `check_id`."""
        row: dict[str, Any] = {
            "check_id": self.check_id,
            "status": self.status,
            "attempts": self.attempts,
            "error": self.error,
        }
        if self.status is not CheckStatus.PENDING:
            row.update(
                checked_at=self.checked_at,
                raw=self.raw,
                raw_format=self.raw_format,
                result=self.result.to_json() if self.result is not None else None,
                copay=self.copay,
                deductible_remaining=self.deductible_remaining,
                plan_end=self.plan_end,
            )
        return row


def answered(
    inquiry: Inquiry,
    at: datetime,
    response: PayerResponse,
    attempts: int,
    *,
    exhausted: bool = False,
) -> Answer:
    """The payer's answer, with the figures it gives and the alerts it raises."""
    result = response.result
    context = replace(inquiry.context, retries_exhausted=True) if exhausted else inquiry.context
    ends = [d for d in (result.plan_end, result.eligibility_end) if d is not None]
    return Answer(
        check_id=inquiry.check_id,
        status=_STATUS[result.status],
        attempts=inquiry.attempts + attempts,
        checked_at=at,
        entity=inquiry.entity,
        due_at=inquiry.due_at,
        result=result,
        raw=response.raw,
        raw_format=response.raw_format,
        copay=visit_copay(result, context.service_type),
        deductible_remaining=deductible_remaining(result),
        plan_end=min(ends) if ends else None,
        alerts=tuple(alerts_for(result, context)),
        patient_id=inquiry.context.patient_id,
    )


def failed(
    inquiry: Inquiry,
    at: datetime,
    alert: Alert,
    error: str,
    attempts: int,
    *,
    status: CheckStatus = CheckStatus.UNVERIFIED,
    response: PayerResponse | None = None,
    raw: str | None = None,
) -> Answer:
    """No usable answer: the check is unverified (or error), with exactly one alert."""
    return Answer(
        check_id=inquiry.check_id,
        status=status,
        attempts=inquiry.attempts + attempts,
        checked_at=at,
        entity=inquiry.entity,
        due_at=inquiry.due_at,
        raw=response.raw if response is not None else raw,
        raw_format=response.raw_format if response is not None else None,
        error=error,
        alerts=(alert,),
        patient_id=inquiry.context.patient_id,
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def store_answers(session: Session, answers: Sequence[Answer]) -> None:
    """Write answers, the work items they raise and those they clear, in the caller's
    transaction."""
    rows: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    for answer in answers:
        rows[answer.status is CheckStatus.PENDING].append(answer.row())
    for still_pending, group in rows.items():
        # One executemany per shape of row; the ORM's bulk update spent as long again
        # sorting each row into its columns (0.2 ms an answer).
        if group:
            session.execute(_STILL_PENDING if still_pending else _SETTLED, group)
    open_work_items(session, (need for answer in answers for need in answer.work()))
    clear_work(session, (c for c in (answer.cleared() for answer in answers) if c is not None))


class Recorder:
    """Stores answers as they arrive, through one `Writer`, without stalling the requests.

    Answers are written once `max_rows` wait or `max_wait` seconds after the first, so a
    crash loses at most those; their checks are still pending and a retried batch asks
    again. The first failure is raised by the next `add`, or by `close`. A quarter of a
    second keeps that loss, and what is left to write after the last answer, to some 60
    answers at 250 a second (a whole second's worth took 40-70 ms to write at the end).
    """

    def __init__(self, writer: Writer, *, max_rows: int = 500, max_wait: float = 0.25) -> None:
        self._writer = writer
        self._max_rows = max_rows
        self._max_wait = max_wait
        self._queue: list[Answer] = []
        self._timer: asyncio.TimerHandle | None = None
        self._error: BaseException | None = None

    def add(self, answer: Answer) -> None:
        """Queue one answer; the queue is written when full or `max_wait` after its first."""
        self._raise_failure()
        self._queue.append(answer)
        if len(self._queue) >= self._max_rows:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._max_wait, self._flush)

    async def close(self) -> None:
        """Write what is queued and wait for every write; raise the first failure."""
        self._flush()
        await self._writer.drain()
        self._raise_failure()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._queue = self._queue, []
        if not batch or self._error is not None:
            return
        write = self._writer.submit(store_answers, batch)
        write.add_done_callback(functools.partial(self._stored, len(batch)))

    def _stored(self, count: int, write: asyncio.Future[None]) -> None:
        if write.cancelled() or write.exception() is None or self._error is not None:
            return
        error = write.exception()
        if isinstance(error, SQLAlchemyError):
            # SQLAlchemy puts the statement's parameters (raw 271s, names) in its message, and
            # Prefect records whatever a task raises: keep the kind, drop the text.
            error = AnswersNotStored(count, type(error).__name__)
        self._error = error

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error
