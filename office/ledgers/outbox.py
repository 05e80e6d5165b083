"""The outbox: every outbound message, recorded once per key before it is sent."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from office.models import (
    Channel,
    OutboxItem,
    OutboxStatus,
    utcnow,
)

__all__ = ["claim_outbox", "enqueue_outbox", "finish_outbox"]


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
