"""The reminder service's rows in the shared outbox: their kinds, their key, their fields.

A message's life, all in the `outbox` table::

    (planned) --due--> pending --claim--> sending --> sent | failed | unknown
                 \\--> skipped (reason)     \\--> pending (deferred: 4xx, retried later)
    pending --appointment moved or cancelled--> withdrawn

One row per appointment, message kind, offset, channel and appointment version;
its `detail` remembers the start it was made for, so a row for a time the
appointment no longer has is recognised and withdrawn.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from office.ledgers.outbox import OutboxRow
from office.models import Channel, OutboxItem, OutboxStatus
from office.reminders.visits import Visit, stamp

__all__ = ["KINDS", "NOTICE_OFFSET", "OURS", "TOLD", "MessageKind", "new_row", "outbox_key"]

MessageKind = Literal["reminder", "confirmation", "cancellation", "reschedule"]
KINDS: tuple[MessageKind, ...] = ("reminder", "confirmation", "cancellation", "reschedule")
NOTICE_OFFSET = "0"
"""The offset of a notice (confirmation, reschedule, cancellation): it goes when recorded."""

TOLD = (OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.SENT, OutboxStatus.UNKNOWN)
"""Statuses of a row whose message the patient got, or is about to get."""

OURS = OutboxItem.kind.in_(KINDS) & OutboxItem.appointment_id.is_not(None)
"""The outbox is shared by every flow: ours are the appointment messages of these kinds."""


def outbox_key(appointment_id: int, version: int, kind: str, offset: str, channel: str) -> str:
    """The unique key of one message: appointment, kind, offset, channel and version."""
    return f"appt:{appointment_id}:v{version}:{kind}:{offset}:{channel}"


def new_row(
    visit: Visit,
    *,
    kind: MessageKind,
    offset: str,
    channel: Channel,
    recipient: str | None,
    due_at: datetime,
    now: datetime,
    skip: str | None = None,
    extra: dict[str, Any] | None = None,
) -> OutboxRow:
    """One message for this visit: pending, or skipped with the reason `skip`."""
    return {
        "idempotency_key": outbox_key(visit.appointment_id, visit.version, kind, offset, channel),
        "channel": channel,
        "kind": kind,
        "appointment_id": visit.appointment_id,
        "patient_id": visit.patient_id,
        "recipient": recipient or "",
        "status": OutboxStatus.SKIPPED if skip else OutboxStatus.PENDING,
        "attempts": 0,
        "error": skip,
        "detail": {
            "offset": offset,
            "start": stamp(visit.start),
            "version": visit.version,
            "language": visit.language,
            **(extra or {}),
        },
        "due_at": due_at,
        "created_at": now,
        "updated_at": now,
    }
