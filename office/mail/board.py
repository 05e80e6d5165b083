"""Routed mail as staff see it: each queue's messages, newest first, with the rule behind them.

For the staff board and `office mail list`. It shows senders and subjects, so
only pages behind a login may call it; nothing here is logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from office.models import MailMessage, MailStatus

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["RoutedMail", "queue_counts", "routed_mail"]


@dataclass(frozen=True, slots=True)
class RoutedMail:
    """One routed message and why it is in its queue."""

    id: int
    mailbox: str
    queue: str  # a role, "staff:<id>", or "spam"
    category: str
    rule: str
    matched: tuple[str, ...]  # every rule that matched, in order
    actions: tuple[str, ...]
    sender: str | None
    subject: str | None
    sent_at: datetime | None
    routed_at: datetime | None
    patient_id: int | None
    status: MailStatus
    reason: str | None  # why quarantined


def routed_mail(
    session: Session,
    *,
    queues: list[str] | None = None,
    mailbox: str | None = None,
    include_spam: bool = False,
    limit: int = 200,
) -> dict[str, list[RoutedMail]]:
    """Routed and quarantined mail per queue, newest first (at most `limit` in all)."""
    query = (
        select(
            MailMessage.id,
            MailMessage.mailbox,
            MailMessage.queue,
            MailMessage.category,
            MailMessage.rule,
            MailMessage.decision,
            MailMessage.sender,
            MailMessage.subject,
            MailMessage.sent_at,
            MailMessage.routed_at,
            MailMessage.patient_id,
            MailMessage.status,
            MailMessage.reason,
        )
        .where(MailMessage.status != MailStatus.STORED)
        .order_by(MailMessage.routed_at.desc(), MailMessage.id.desc())
        .limit(limit)
    )
    if queues is not None:
        query = query.where(MailMessage.queue.in_(queues))
    if mailbox is not None:
        query = query.where(MailMessage.mailbox == mailbox)
    if not include_spam:
        query = query.where(MailMessage.queue != "spam")
    grouped: dict[str, list[RoutedMail]] = {}
    for row in session.execute(query):
        decision = row.decision or {}
        grouped.setdefault(row.queue or "", []).append(
            RoutedMail(
                id=row.id,
                mailbox=row.mailbox,
                queue=row.queue or "",
                category=row.category or "",
                rule=row.rule or "",
                matched=tuple(decision.get("matched", ())),
                actions=tuple(decision.get("actions", ())),
                sender=row.sender,
                subject=row.subject,
                sent_at=row.sent_at,
                routed_at=row.routed_at,
                patient_id=row.patient_id,
                status=row.status,
                reason=row.reason,
            )
        )
    return grouped


def queue_counts(session: Session) -> list[tuple[str, str, int]]:
    """(queue, category, count) of routed mail: what the board's summary shows."""
    rows = session.execute(
        select(MailMessage.queue, MailMessage.category, func.count())
        .where(MailMessage.status != MailStatus.STORED)
        .group_by(MailMessage.queue, MailMessage.category)
        .order_by(MailMessage.queue, MailMessage.category)
    )
    return [(queue or "", category or "", count) for queue, category, count in rows]
