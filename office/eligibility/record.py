"""Recording the intent: a pending check row per inquiry, written before anything is sent.

The row is the audit trail's first entry (a request summary of ids and codes) and the
batch's to-do list: a run asked again finds its rows, so nothing answered is sent twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from office.clock import chunks
from office.eligibility.select_due import Due
from office.models import CheckStatus, EligibilityCheck

__all__ = ["ORPHANED_AFTER", "new_trace", "record_pending"]

# A pending check this old belongs to no live run: batches finish within minutes.
ORPHANED_AFTER = timedelta(hours=1)

_Key = tuple[int | None, int, date, str]  # appointment, coverage, date of service, service type
# The plan inserts through the table (Core): the ORM's bulk path costs more per row and
# gives back nothing the plan needs beyond ids.
_CHECKS: Table = EligibilityCheck.__table__  # type: ignore[assignment]
_INSERT_ROWS = 1000


def new_trace() -> str:
    """A TRN02 for one inquiry: 20 characters, unique, and meaningless outside our database."""
    return "OF" + uuid.uuid4().hex[:18].upper()


def record_pending(
    session: Session, due: Sequence[Due], *, run_key: str, now: datetime
) -> dict[int, list[int]]:
    """Write a pending check per inquiry before anything is sent; returns check ids per payer.

    A run asked again (a flow retry, the same `run_key`) finds its rows: answered ones are
    skipped, pending ones re-sent. A pending row left by an earlier run that never finished
    (older than `ORPHANED_AFTER`) is taken over rather than duplicated; a younger one may
    belong to a run still going (a booking checked during the daily batch), so it is left
    to that run.
    """
    existing = _existing(session, due, run_key, orphaned_before=now - ORPHANED_AFTER)
    batches: dict[int, list[int]] = {}
    adopted: list[int] = []
    # A chunk's rows are built, inserted and let go before the next: at 100,000 visits
    # the whole lot as one statement held some 300 MB of dicts and bound parameters.
    for chunk in chunks(due, _INSERT_ROWS):
        fresh: list[dict[str, Any]] = []
        for item in chunk:
            found = existing.get(
                (item.appointment_id, item.coverage_id, item.date_of_service, item.service_type)
            )
            if found is None:
                fresh.append(_row(item, run_key, now))
                continue
            if found.status is not CheckStatus.PENDING:
                continue  # answered earlier in this same run
            if found.run_key != run_key:
                adopted.append(found.id)
            batches.setdefault(item.payer_id, []).append(found.id)
        if fresh:
            # Inserted as one statement run per row (psycopg pipelines them), then read back
            # by trace: with RETURNING, SQLAlchemy sends one statement of a thousand rows'
            # placeholders, which psycopg parsed afresh each time, 0.35 s of CPU at 2,000.
            session.execute(insert(_CHECKS), fresh)
            traces = [row["trace"] for row in fresh]
            created = session.execute(
                select(_CHECKS.c.id, _CHECKS.c.payer_id).where(_CHECKS.c.trace.in_(traces))
            )
            for row in created:
                batches.setdefault(row.payer_id, []).append(row.id)
    for ids in chunks(adopted):
        session.execute(
            update(EligibilityCheck)
            .where(EligibilityCheck.id.in_(ids))
            .values(run_key=run_key)
            .execution_options(synchronize_session=False)
        )
    return {payer: sorted(ids) for payer, ids in sorted(batches.items())}


def _row(item: Due, run_key: str, now: datetime) -> dict[str, Any]:
    return {
        "trace": new_trace(),
        "appointment_id": item.appointment_id,
        "coverage_id": item.coverage_id,
        "patient_id": item.patient_id,
        "payer_id": item.payer_id,
        "date_of_service": item.date_of_service,
        "service_type": item.service_type,
        "status": CheckStatus.PENDING,
        "attempts": 0,
        "run_key": run_key,
        "request_summary": _summary(item),
        "created_at": now,
    }


def _summary(item: Due) -> dict[str, Any]:
    """What the request was, in ids and codes: enough to audit it, nothing to identify anyone."""
    return {
        "appointment_id": item.appointment_id,
        "coverage_id": item.coverage_id,
        "payer_id": item.payer_id,
        "provider_id": item.provider_id,
        "date_of_service": item.date_of_service.isoformat(),
        "service_type": item.service_type,
        "relationship_code": item.relationship_code,
        "dependent": item.relationship_code != "18",
    }


def _existing(
    session: Session, due: Sequence[Due], run_key: str, *, orphaned_before: datetime
) -> dict[_Key, Any]:
    """This run's rows, and pending rows old enough that no live run can still own them.

    Values are rows with `id`, `status` and `run_key`.
    """
    if not due:
        return {}
    first = min(d.date_of_service for d in due)
    last = max(d.date_of_service for d in due)
    found: dict[_Key, Any] = {}
    for chunk in chunks(sorted({d.coverage_id for d in due})):
        rows = session.execute(
            select(
                EligibilityCheck.id,
                EligibilityCheck.appointment_id,
                EligibilityCheck.coverage_id,
                EligibilityCheck.date_of_service,
                EligibilityCheck.service_type,
                EligibilityCheck.status,
                EligibilityCheck.run_key,
            )
            .where(
                EligibilityCheck.coverage_id.in_(chunk),
                EligibilityCheck.date_of_service.between(first, last),
                (EligibilityCheck.run_key == run_key)
                | (
                    (EligibilityCheck.status == CheckStatus.PENDING)
                    & (EligibilityCheck.created_at < orphaned_before)
                ),
            )
            .order_by(EligibilityCheck.id)
        )
        for row in rows:
            key = (row.appointment_id, row.coverage_id, row.date_of_service, row.service_type)
            # This run's own row wins over an orphan from an earlier run.
            if key not in found or row.run_key == run_key:
                found[key] = row
    return found
