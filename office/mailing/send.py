"""Sending the outbox's non-appointment mail (acknowledgements, forwards, notices), each once.

The reminder send loop is built around appointments; this is the one small loop
for everything else. Per message: build it (the `Composer` for its kind), claim
the row (pending -> sending, which only one sender can win), hand it to the
`Mailer`, and record the outcome:

- accepted: sent;
- "not now" (`MailRetryableError`): back to pending, and the batch stops, since
  the server will refuse the rest too;
- refused for good: failed, with a work item;
- no verdict after the body went out (`MailAmbiguousError`): unknown, with a
  work item, never resent blindly.

A run killed mid-send leaves at most the message on the wire in "sending";
once its lease runs out the next run resends it when the transport is
idempotent on the Message-ID (the file outbox), and otherwise marks it unknown
for a person. So each message is delivered at most once, and exactly once
unless a person is asked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from office.contacts import email_problem, is_recipient_reason
from office.contracts.mail import (
    MailAmbiguousError,
    MailPermanentError,
    MailRetryableError,
    to_wire,
)
from office.db import transaction
from office.ledgers import claim_outbox, finish_outbox, open_work_item
from office.ledgers.outbox import move_outbox
from office.models import OutboxItem, OutboxStatus

if TYPE_CHECKING:
    from email.message import EmailMessage

    from sqlalchemy.orm import Session, sessionmaker

    from office.contracts.mail import Mailer

__all__ = [
    "DEFAULT_LEASE",
    "ComposeError",
    "Composer",
    "Outgoing",
    "SendTally",
    "send_outbox",
]

DEFAULT_LEASE = timedelta(minutes=10)
BATCH = 200


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A built message and its SMTP envelope sender ("" for the null sender, None: From)."""

    message: EmailMessage
    envelope_sender: str | None = None


class ComposeError(ValueError):
    """The row's message cannot be built (its source is gone); the row is skipped with why."""


Composer = Callable[["Session", OutboxItem], Outgoing]
"""Builds one outbox row's message; raises `ComposeError` when it cannot."""


@dataclass
class SendTally:
    """Outcomes per (kind, outcome): sent, deferred, failed, unknown, skipped, requeued."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, kind: str, outcome: str) -> None:
        self.counts[(kind, outcome)] += 1

    def total(self, outcome: str) -> int:
        return sum(n for (_, name), n in self.counts.items() if name == outcome)

    def to_dict(self) -> dict[str, int]:
        return {f"{kind}:{outcome}": n for (kind, outcome), n in sorted(self.counts.items())}


async def send_outbox(
    factory: sessionmaker[Session],
    mailer: Mailer,
    composers: dict[str, Composer],
    *,
    now: datetime,
    resend_safe: bool,
    lease: timedelta = DEFAULT_LEASE,
    limit: int = BATCH,
) -> SendTally:
    """Send pending outbox mail of the composers' kinds, oldest first (see module doc).

    Args:
        composers: One builder per outbox kind this loop owns.
        resend_safe: The transport overwrites by Message-ID (the file outbox), so
            a message a killed run left in doubt may go again.
    """
    kinds = sorted(composers)
    tally = SendTally()
    _settle_interrupted(factory, kinds, now=now, lease=lease, resend_safe=resend_safe, tally=tally)
    with factory() as session:
        ids = list(
            session.scalars(
                select(OutboxItem.id)
                .where(
                    OutboxItem.status == OutboxStatus.PENDING,
                    OutboxItem.kind.in_(kinds),
                    (OutboxItem.due_at.is_(None)) | (OutboxItem.due_at <= now),
                )
                .order_by(OutboxItem.id)
                .limit(limit)
            )
        )
    if not ids:
        return tally
    async with mailer:
        for item_id in ids:
            if not await _send_one(factory, mailer, composers, item_id, now, tally):
                break
    return tally


async def _send_one(
    factory: sessionmaker[Session],
    mailer: Mailer,
    composers: dict[str, Composer],
    item_id: int,
    now: datetime,
    tally: SendTally,
) -> bool:
    """Claim, send and record one row; False when the transport said "not now"."""
    with transaction(factory) as session:
        item = session.get(OutboxItem, item_id)
        if item is None or item.status is not OutboxStatus.PENDING:
            return True
        kind = item.kind
        # Checked again before it goes: a row written around the entry checks, or before
        # them, must not reach a header or an envelope as two recipients.
        reason = email_problem(item.recipient)
        if reason is None:
            try:
                outgoing = composers[kind](session, item)
                wire = to_wire(outgoing.message, envelope_sender=outgoing.envelope_sender)
            except Exception as exc:
                # Only the type: a message may quote the row. One row never stops the batch.
                reason = f"cannot be built: {type(exc).__name__}"
        if reason is not None:
            move_outbox(
                session, item_id, OutboxStatus.PENDING, OutboxStatus.SKIPPED, now=now, error=reason
            )
            _needs_person(session, item_id, OutboxStatus.SKIPPED, reason=reason)
            tally.add(kind, "skipped")
            return True
        if not claim_outbox(
            session, item_id, now=now, recipient=item.recipient, message_id=wire.envelope.message_id
        ):
            return True
    try:
        provider_id = await mailer.send(wire)
    except MailRetryableError as exc:
        _finish(factory, item_id, OutboxStatus.PENDING, now, error=str(exc))
        tally.add(kind, "deferred")
        return False
    except MailAmbiguousError as exc:
        _finish(factory, item_id, OutboxStatus.UNKNOWN, now, error=str(exc), person=True)
        tally.add(kind, "unknown")
        return True
    except MailPermanentError as exc:
        _finish(factory, item_id, OutboxStatus.FAILED, now, error=str(exc), person=True)
        tally.add(kind, "failed")
        return True
    except Exception as exc:
        # Outside the contract: it may have gone or not, and its message may quote the row.
        error = f"unexpected {type(exc).__name__}"
        _finish(factory, item_id, OutboxStatus.UNKNOWN, now, error=error, person=True)
        tally.add(kind, "unknown")
        return True
    _finish(factory, item_id, OutboxStatus.SENT, now, provider_id=provider_id)
    tally.add(kind, "sent")
    return True


def _finish(
    factory: sessionmaker[Session],
    item_id: int,
    status: OutboxStatus,
    now: datetime,
    *,
    provider_id: str | None = None,
    error: str | None = None,
    person: bool = False,
) -> None:
    with transaction(factory) as session:
        finish_outbox(
            session, item_id, status, now=now, provider_message_id=provider_id, error=error
        )
        if person:
            _needs_person(session, item_id, status)


def _needs_person(
    session: Session, item_id: int, status: OutboxStatus, *, reason: str | None = None
) -> None:
    if status is OutboxStatus.SKIPPED:
        open_work_item(
            session,
            kind="recipient_invalid" if is_recipient_reason(reason) else "message_not_built",
            entity="outbox_item",
            entity_id=item_id,
            summary=f"Outbox message {item_id} was skipped ({reason})",
            role="office_manager",
            detail={"outbox_id": item_id, "reason": reason},
        )
        return
    what = (
        "may or may not have been delivered"
        if status is OutboxStatus.UNKNOWN
        else ("was refused for good")
    )
    open_work_item(
        session,
        kind=f"mail_send_{status.value}",
        entity="outbox_item",
        entity_id=item_id,
        summary=f"Outbox message {item_id} {what}; check it before sending again",
        role="office_manager",
        detail={"outbox_id": item_id},
    )


def _settle_interrupted(
    factory: sessionmaker[Session],
    kinds: Sequence[str],
    *,
    now: datetime,
    lease: timedelta,
    resend_safe: bool,
    tally: SendTally,
) -> None:
    """Settle rows a killed run left in "sending" once their lease ran out."""
    with transaction(factory) as session:
        stuck = session.execute(
            select(OutboxItem.id, OutboxItem.kind).where(
                OutboxItem.status == OutboxStatus.SENDING,
                OutboxItem.kind.in_(list(kinds)),
                OutboxItem.claimed_at < now - lease,
            )
        ).all()
        for item_id, kind in stuck:
            target = OutboxStatus.PENDING if resend_safe else OutboxStatus.UNKNOWN
            error = (
                "interrupted send; sent again with the same Message-ID"
                if resend_safe
                else "interrupted during send; delivery unknown"
            )
            if move_outbox(session, item_id, OutboxStatus.SENDING, target, now=now, error=error):
                if target is OutboxStatus.UNKNOWN:
                    _needs_person(session, item_id, target)
                tally.add(kind, "requeued" if resend_safe else "unknown")
