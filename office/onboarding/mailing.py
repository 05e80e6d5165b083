"""Onboarding mail: what is queued in the outbox, and the messages built from it.

Rows hold ids only (the checklist, the items, the recipient's staff id, the escalation
step); the message is built when it is sent, from the database, through the general
outbox sender (`office.mailing.send_outbox`). Each assignment, reminder and escalation
carries a signed link per item (`office.onboarding.links`) and the board's page for it.

Kinds: `onboarding_welcome` (to the new hire), `onboarding_assigned` (to each owner when
a checklist is built), `onboarding_reminder` (due soon), `onboarding_overdue` (the
escalation ladder, step in the row).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from office.ledgers.outbox import OutboxRow, enqueue_outbox
from office.mailing.send import ComposeError, Composer, Outgoing
from office.messages import POLICY, address_domain, message_id_for
from office.models import (
    Channel,
    Checklist,
    ChecklistItem,
    OutboxItem,
    OutboxStatus,
    Practice,
    Staff,
)
from office.onboarding.links import item_link
from office.render import render

__all__ = [
    "ASSIGNED",
    "KINDS",
    "OVERDUE",
    "REMINDER",
    "WELCOME",
    "Notice",
    "composers",
    "queue_notices",
]

WELCOME: Final = "onboarding_welcome"
ASSIGNED: Final = "onboarding_assigned"
REMINDER: Final = "onboarding_reminder"
OVERDUE: Final = "onboarding_overdue"
KINDS: Final = (WELCOME, ASSIGNED, REMINDER, OVERDUE)


@dataclass(frozen=True, slots=True)
class Notice:
    """One message to queue: its kind, to whom (a staff id), about which items."""

    kind: str
    staff_id: int
    item_ids: tuple[int, ...] = ()
    checklist_id: int | None = None
    level: int = 0


def queue_notices(
    session: Session,
    notices: Sequence[Notice],
    emails: dict[int, str],
    *,
    day: date,
    now: datetime,
) -> int:
    """Record these messages in the outbox (a repeat of one already there adds nothing)."""
    rows: list[OutboxRow] = []
    for notice in notices:
        email = emails.get(notice.staff_id)
        if email is None:
            continue
        ids = ",".join(str(i) for i in sorted(notice.item_ids))
        digest = hashlib.sha256(f"{notice.checklist_id}:{ids}".encode()).hexdigest()[:16]
        detail: dict[str, Any] = {
            "staff_id": notice.staff_id,
            "item_ids": sorted(notice.item_ids),
            "checklist_id": notice.checklist_id,
            "level": notice.level,
            "date": day.isoformat(),
        }
        rows.append(
            {
                "idempotency_key": f"{notice.kind}:{day.isoformat()}:{notice.staff_id}:{digest}",
                "channel": Channel.EMAIL,
                "kind": notice.kind,
                "appointment_id": None,
                "patient_id": None,
                "recipient": email,
                "status": OutboxStatus.PENDING,
                "attempts": 0,
                "error": None,
                "detail": detail,
                "due_at": now,
                "created_at": now,
                "updated_at": now,
            }
        )
    enqueue_outbox(session, rows)
    return len(rows)


# --- the messages ----------------------------------------------------------------------------

_SUBJECTS: Final = {
    WELCOME: "Welcome to {practice}: your first days",
    ASSIGNED: "Onboarding: {n} item{s} for you",
    REMINDER: "Reminder: {n} onboarding item{s} due soon",
    OVERDUE: "Overdue: {n} onboarding item{s}",
}


def composers(*, sender: str, public_url: str, link_key: str, now: datetime) -> dict[str, Composer]:
    """The builders `office.mailing.send_outbox` needs for onboarding's outbox kinds."""

    def build(session: Session, item: OutboxItem) -> Outgoing:
        return compose(session, item, sender=sender, public_url=public_url, key=link_key, now=now)

    return dict.fromkeys(KINDS, build)


def compose(
    session: Session,
    row: OutboxItem,
    *,
    sender: str,
    public_url: str,
    key: str,
    now: datetime,
) -> Outgoing:
    """One onboarding message, plain text, from its outbox row and the database."""
    try:
        item_ids = [int(i) for i in row.detail.get("item_ids", [])]
        level = int(row.detail.get("level", 0))
        checklist_id = row.detail.get("checklist_id")
    except (TypeError, ValueError) as exc:
        raise ComposeError(f"onboarding row {row.id} is incomplete") from exc
    base = public_url.rstrip("/")
    items = _items(session, item_ids)
    if item_ids and not items:
        raise ComposeError(f"onboarding row {row.id}: its items are gone")
    person = None
    if checklist_id is not None:
        checklist = session.get(Checklist, int(checklist_id))
        person = session.get(Staff, checklist.staff_id) if checklist is not None else None
    practice = session.scalar(select(Practice.name).order_by(Practice.id).limit(1)) or "officeflows"
    context = {
        "kind": row.kind,
        "level": level,
        "practice": practice,
        "person": person,
        "items": [
            {
                "title": item.title,
                "who": f"{first} {last}",
                "due_on": item.due_on,
                "link": f"{base}/o/{item_link(key, item.id, now=now)}",
                "board": f"{base}/staff/onboarding/items/{item.id}",
                "needs_file": "certificate" in item.evidence_required,
            }
            for item, first, last in items
        ],
        "board_url": f"{base}/staff/onboarding",
    }
    count = len(items)
    subject = _SUBJECTS[row.kind].format(practice=practice, n=count, s="" if count == 1 else "s")
    domain = address_domain(sender)
    message = EmailMessage(policy=POLICY)
    message["Message-ID"] = message_id_for(row.idempotency_key, domain)
    message["Date"] = format_datetime(now)
    message["From"] = formataddr((f"{practice} onboarding", sender))
    message["To"] = row.recipient
    message["Subject"] = subject
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        render("onboarding/notice.txt.j2", **context) + "\n", cte="quoted-printable"
    )
    return Outgoing(message, envelope_sender=None)


def _items(session: Session, item_ids: Collection[int]) -> list[tuple[ChecklistItem, str, str]]:
    if not item_ids:
        return []
    rows = session.execute(
        select(ChecklistItem, Staff.first_name, Staff.last_name)
        .join(Staff, Staff.id == ChecklistItem.staff_id)
        .where(ChecklistItem.id.in_(list(item_ids)))
        .order_by(ChecklistItem.due_on, ChecklistItem.id)
    ).tuples()
    return list(rows)
