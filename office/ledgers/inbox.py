"""The inbox: every inbound payload, stored raw before anything acts on it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from office.ledgers.errors import LedgerError
from office.models import (
    InboxItem,
    InboxStatus,
    utcnow,
)

__all__ = ["mark_processed", "reject", "replay", "start_attempt", "store_inbound"]


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
