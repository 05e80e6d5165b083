"""The four ledgers every flow writes: inbox, outbox, audit and work queue.

Each function takes the caller's session and never commits: the caller's unit
of work decides what lands together (a work item with the result that raised it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from office.models import (
    AuditEntry,
    Base,
    Channel,
    InboxItem,
    InboxStatus,
    OutboxItem,
    OutboxStatus,
    WorkItem,
    WorkStatus,
    utcnow,
)

__all__ = [
    "apply_changes",
    "claim_outbox",
    "close_work_item",
    "enqueue_outbox",
    "finish_outbox",
    "mark_processed",
    "open_work_item",
    "record_change",
    "reject",
    "replay",
    "start_attempt",
    "store_inbound",
]


class LedgerError(ValueError):
    """A ledger operation that cannot be done (unknown id, wrong state)."""


# --- inbox ----------------------------------------------------------------------


def store_inbound(
    session: Session,
    *,
    source: str,
    key: str,
    body: bytes,
    content_type: str | None = None,
) -> tuple[InboxItem, bool]:
    """Store a payload raw, once per (source, key); returns the row and whether it is new."""
    existing = _inbox_by_key(session, source, key)
    if existing is not None:
        return existing, False
    item = InboxItem(source=source, idempotency_key=key, body=body, content_type=content_type)
    try:
        with session.begin_nested():
            session.add(item)
    except IntegrityError:
        # Another request stored the same key between our look-up and insert.
        winner = _inbox_by_key(session, source, key)
        if winner is None:
            raise
        return winner, False
    return item, True


def _inbox_by_key(session: Session, source: str, key: str) -> InboxItem | None:
    return session.scalar(
        select(InboxItem).where(InboxItem.source == source, InboxItem.idempotency_key == key)
    )


def start_attempt(item: InboxItem, now: datetime | None = None) -> None:
    item.attempts += 1
    item.last_attempt_at = now or utcnow()


def mark_processed(item: InboxItem, now: datetime | None = None) -> None:
    item.status = InboxStatus.PROCESSED
    item.reason = None
    item.processed_at = now or utcnow()


def reject(item: InboxItem, reason: str) -> None:
    """Keep the payload, with why it was not acted on; it can be replayed later."""
    item.status = InboxStatus.REJECTED
    item.reason = reason


def replay(session: Session, item_id: int) -> InboxItem:
    """Put a stored payload back in line to be processed again."""
    item = session.get(InboxItem, item_id)
    if item is None:
        raise LedgerError(f"inbox item {item_id} does not exist")
    item.status = InboxStatus.PENDING
    item.processed_at = None
    return item


# --- outbox ---------------------------------------------------------------------


def enqueue_outbox(
    session: Session,
    *,
    key: str,
    channel: Channel,
    kind: str,
    recipient: str,
    due_at: datetime | None = None,
    appointment_id: int | None = None,
    patient_id: int | None = None,
    staff_id: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> tuple[OutboxItem, bool]:
    """Record the intent to send, once per key; returns the row and whether it is new."""
    existing = session.scalar(select(OutboxItem).where(OutboxItem.idempotency_key == key))
    if existing is not None:
        return existing, False
    item = OutboxItem(
        idempotency_key=key,
        channel=channel,
        kind=kind,
        recipient=recipient,
        due_at=due_at,
        appointment_id=appointment_id,
        patient_id=patient_id,
        staff_id=staff_id,
        detail=dict(detail or {}),
    )
    try:
        with session.begin_nested():
            session.add(item)
    except IntegrityError:
        winner = session.scalar(select(OutboxItem).where(OutboxItem.idempotency_key == key))
        if winner is None:
            raise
        return winner, False
    return item, True


def claim_outbox(session: Session, item_id: int, now: datetime | None = None) -> bool:
    """Move one message from pending to sending; only one claimant ever wins."""
    moment = now or utcnow()
    result = session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id, OutboxItem.status == OutboxStatus.PENDING)
        .values(
            status=OutboxStatus.SENDING,
            claimed_at=moment,
            attempts=OutboxItem.attempts + 1,
            updated_at=moment,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def finish_outbox(
    session: Session,
    item_id: int,
    status: OutboxStatus,
    *,
    provider_message_id: str | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> None:
    """Record how a claimed send ended: sent, failed, unknown, or back to pending."""
    moment = now or utcnow()
    values: dict[str, Any] = {"status": status, "error": error, "updated_at": moment}
    if status is OutboxStatus.SENT:
        values["sent_at"] = moment
    if provider_message_id is not None:
        values["provider_message_id"] = provider_message_id
    session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


# --- audit ----------------------------------------------------------------------


def record_change(
    session: Session,
    record: Base,
    field: str,
    before: object,
    after: object,
    *,
    actor: str,
    source: str,
    at: datetime | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        entity=record.__tablename__,
        entity_id=record.id,  # type: ignore[attr-defined]
        field=field,
        before=_text(before),
        after=_text(after),
        actor=actor,
        source=source,
        at=at or utcnow(),
    )
    session.add(entry)
    return entry


def apply_changes(
    session: Session,
    record: Base,
    values: Mapping[str, object],
    *,
    actor: str,
    source: str,
) -> list[str]:
    """Set fields on a record, writing one audit entry per field that really changed."""
    changed = []
    for field, after in values.items():
        before = getattr(record, field)
        if before == after:
            continue
        setattr(record, field, after)
        record_change(session, record, field, before, after, actor=actor, source=source)
        changed.append(field)
    return changed


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


# --- work queue -----------------------------------------------------------------


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
) -> tuple[WorkItem, bool]:
    """Open one item per (kind, record); a repeat refreshes it instead of duplicating.

    An item a person dismissed stays dismissed; one marked done reopens, since the
    problem came back.
    """
    key = f"{kind}:{entity}:{entity_id}"
    item = session.scalar(select(WorkItem).where(WorkItem.dedupe_key == key))
    if item is not None:
        item.summary = summary
        item.due_at = due_at
        item.detail = dict(detail or {})
        if item.status is WorkStatus.DONE:
            item.status = WorkStatus.OPEN
            item.closed_at = None
            item.closed_by = None
        return item, False
    item = WorkItem(
        kind=kind,
        entity=entity,
        entity_id=entity_id,
        dedupe_key=key,
        summary=summary,
        role=role,
        due_at=due_at,
        detail=dict(detail or {}),
    )
    try:
        with session.begin_nested():
            session.add(item)
    except IntegrityError:
        winner = session.scalar(select(WorkItem).where(WorkItem.dedupe_key == key))
        if winner is None:
            raise
        return winner, False
    return item, True


def close_work_item(
    session: Session,
    item_id: int,
    *,
    by: str,
    status: WorkStatus = WorkStatus.DONE,
    now: datetime | None = None,
) -> WorkItem:
    item = session.get(WorkItem, item_id)
    if item is None:
        raise LedgerError(f"work item {item_id} does not exist")
    item.status = status
    item.closed_by = by
    item.closed_at = now or utcnow()
    return item


def open_items_by_kind(session: Session) -> Sequence[tuple[str, int]]:
    from sqlalchemy import func

    rows = session.execute(
        select(WorkItem.kind, func.count())
        .where(WorkItem.status == WorkStatus.OPEN)
        .group_by(WorkItem.kind)
        .order_by(WorkItem.kind)
    )
    return [(kind, count) for kind, count in rows]
