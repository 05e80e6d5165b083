"""Settling what a killed run left in "sending", once its lease has run out.

Exactly once, and what SIGKILL can do to it. Each message is built first, then
claimed (pending -> sending) in a short transaction, handed to the transport,
and recorded in its lane's next short transaction, which also claims the message
after it (see `office.reminders.send`). So a process killed at any point leaves
at most one row in "sending" per lane of a running batch (`OFFICE_SMTP_CONNECTIONS`
lanes): the message on the wire, which may or may not have reached the server, or
the one just handed over whose outcome was not yet written. Nothing else is ever in
doubt. The next run finds
that row once its lease has run out and settles it by transport:

- a transport that is idempotent on the message's id (the file mailer and file
  SMS overwrite `<id>.eml` / `<key>.json`) gets it again, with the same
  Message-ID, so it is delivered exactly once;
- SMTP and Twilio cannot be asked whether it arrived, so the row becomes
  "unknown" with a `reminder_delivery_unknown` work item, and is never resent
  blindly: it was delivered at most once, and a person decides.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from office.db import transaction
from office.ledgers.outbox import move_outbox
from office.models import Channel, OutboxItem, OutboxStatus
from office.reminders import work
from office.reminders.rows import OURS
from office.reminders.tally import Tally

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["DEFAULT_LEASE", "reconcile_interrupted"]

DEFAULT_LEASE = timedelta(minutes=10)
"""How long a claim holds: a row still "sending" after this was left by a killed run."""


def reconcile_interrupted(
    factory: sessionmaker[Session],
    *,
    now: datetime,
    mail_resend_safe: bool,
    sms_resend_safe: bool,
    lease: timedelta = DEFAULT_LEASE,
) -> Tally:
    """Settle messages a killed run left in "sending" once their lease ran out (see module doc)."""
    tally = Tally()
    with transaction(factory) as session:
        stuck = list(
            session.execute(
                select(OutboxItem.id, OutboxItem.kind, OutboxItem.channel).where(
                    OutboxItem.status == OutboxStatus.SENDING,
                    OURS,
                    OutboxItem.claimed_at < now - lease,
                )
            )
        )
        for item_id, kind, channel in stuck:
            safe = mail_resend_safe if channel is Channel.EMAIL else sms_resend_safe
            if safe:
                if move_outbox(
                    session,
                    item_id,
                    OutboxStatus.SENDING,
                    OutboxStatus.PENDING,
                    now=now,
                    error="interrupted send; sent again with the same id",
                ):
                    tally.add(kind, channel, "requeued")
                continue
            if move_outbox(
                session,
                item_id,
                OutboxStatus.SENDING,
                OutboxStatus.UNKNOWN,
                now=now,
                error="interrupted during send; delivery unknown",
            ):
                work.delivery_unknown(session, item_id)
                tally.add(kind, channel, "unknown")
    return tally
