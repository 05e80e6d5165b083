"""Acting on stored inbound payloads: one handler per source, every outcome recorded.

The web app only stores; this module decides. A payload a handler cannot use is
rejected with its reason and kept, so it can be replayed once the cause is fixed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.followups.ledger import FollowupCall, record_followups
from office.ledgers import mark_processed, reject, start_attempt, store_inbound
from office.models import InboxItem, InboxStatus, utcnow

__all__ = [
    "FILE_KINDS",
    "HANDLERS",
    "IntakeRejected",
    "Outcome",
    "ProcessResult",
    "due_for_sweep",
    "handler_name",
    "process_item",
    "store_file",
]


class IntakeRejected(ValueError):
    """The payload cannot be acted on; the message says why, without its contents."""


@dataclass(frozen=True)
class Outcome:
    """What a handler did: the record it touched and what should run next.

    `followups` run for `entity_id` ("verify_appointment" for a booked visit); `more`
    names other records (a coverage change re-checks each upcoming visit of the patient).
    """

    entity: str | None = None
    entity_id: int | None = None
    followups: tuple[str, ...] = field(default=())  # e.g. "verify_appointment"
    more: tuple[FollowupCall, ...] = field(default=())
    counts: tuple[tuple[str, int], ...] = field(default=())  # a file's rows, by what became of them

    def calls(self) -> list[FollowupCall]:
        """Every follow-up to record, in order."""
        entity_id = self.entity_id
        own = [] if entity_id is None else [FollowupCall(n, entity_id) for n in self.followups]
        return own + list(self.more)


# A handler gets the clock's reading for this attempt, so it never reads the time itself.
Handler = Callable[[Session, InboxItem, datetime], Outcome]


def _bookings(session: Session, item: InboxItem, now: datetime) -> Outcome:
    from office.bookings import apply_booking

    return apply_booking(session, item, now=now)


def _intake_form(session: Session, item: InboxItem, now: datetime) -> Outcome:
    from office.records.forms import apply_form

    return apply_form(session, item, now=now)


def _records_file(session: Session, item: InboxItem, now: datetime) -> Outcome:
    from office.records.csv_import import import_file

    return import_file(session, item, now=now)


def _records_row(session: Session, item: InboxItem, now: datetime) -> Outcome:
    from office.records.csv_import import apply_row

    return apply_row(session, item, now=now)


def _hl7(session: Session, item: InboxItem, now: datetime) -> Outcome:
    from office.records.hl7.handle import handle_hl7

    return handle_hl7(session, item, now)


def _fhir(session: Session, item: InboxItem, now: datetime) -> Outcome:
    from office.records.fhir import apply_fhir

    return apply_fhir(session, item, now=now)


def _practice_file(session: Session, item: InboxItem, now: datetime) -> Outcome:
    from office.onboarding.hook import on_staff_change
    from office.practice import apply_practice_file

    # Staff the file adds start onboarding, those leaving offboarding, in this transaction.
    return apply_practice_file(session, item, now=now, on_staff=on_staff_change)


# By handler name: a webhook's source ("webhook:bookings" → "bookings"), a stored file's
# kind ("file:…" with its content type, see FILE_KINDS), a file's row ("row:…"), an HL7 v2
# message ("hl7:<sending facility>").
HANDLERS: dict[str, Handler] = {
    "bookings": _bookings,
    "intake-form": _intake_form,
    "records-csv": _records_file,
    "records-row": _records_row,
    "hl7": _hl7,
    "fhir": _fhir,
    "practice-yaml": _practice_file,
}
FILE_KINDS: dict[str, str] = {
    "text/csv": "records-csv",
    "application/yaml": "practice-yaml",
    "application/fhir+json": "fhir",
}


def store_file(
    session: Session, name: str, body: bytes, content_type: str
) -> tuple[InboxItem, bool]:
    """A file brought in by hand, stored whole before anything reads it (source
    "file:<name>", keyed by its SHA-256: the same bytes again are the same item); True when
    it is new. Its handler is chosen by `content_type` (FILE_KINDS)."""
    return store_inbound(
        session,
        source=f"file:{name[:60]}",
        key=hashlib.sha256(body).hexdigest(),
        body=body,
        content_type=content_type,
    )


def handler_name(item: InboxItem) -> str:
    """Which handler acts on a stored payload: by its source, and for a file its type."""
    prefix, _, rest = item.source.partition(":")
    if prefix == "file":
        kind = (item.content_type or "").split(";", 1)[0].strip().lower()
        return FILE_KINDS.get(kind, f"file {kind or 'without a type'}")
    if prefix == "row":
        return "records-row"
    if prefix == "hl7":
        return "hl7"
    return rest or prefix


@dataclass(frozen=True)
class ProcessResult:
    inbox_id: int
    status: InboxStatus
    outcome: Outcome | None = None
    reason: str | None = None
    followup_ids: tuple[int, ...] = ()


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
    source = handler_name(item)
    handler = table.get(source)
    try:
        if handler is None:
            raise IntakeRejected(f"no handler for source {source!r}")
        with transaction(factory) as session:
            live = session.get_one(InboxItem, item_id)
            outcome = handler(session, live, moment)
            # Recorded with the change, before any runs: a crash now loses none of them.
            followups = record_followups(session, item_id, outcome.calls(), now=moment)
            mark_processed(live, moment)
    except IntakeRejected as exc:
        with transaction(factory) as session:
            reject(session.get_one(InboxItem, item_id), str(exc))
        return ProcessResult(item_id, InboxStatus.REJECTED, reason=str(exc))
    return ProcessResult(
        item_id, InboxStatus.PROCESSED, outcome=outcome, followup_ids=tuple(followups)
    )


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
