"""Writing how each send ended, and what it means for the patient's record.

The send loop's writes are one short transaction per message: a sent message's
outcome is written in the same transaction as its lane's next claim (or on its
own when the lane ends), so each message costs one commit, not two. The
invariant holds: at any instant at most one row per lane is "sending", the one
on the wire or the one just sent whose outcome rides with the lane's next claim;
a kill leaves only those in doubt, at most `OFFICE_SMTP_CONNECTIONS` rows (see
`office.reminders.recovery`). The hot
path runs the ledger's Core statements on a bare connection (SQLite) or as one
statement on the lane's own asyncio connection (PostgreSQL, `DriverClaims`); an
outcome a person must hear of (refused, unknown, bounced, opted out) gets its own
transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, select

from office.contacts import is_recipient_reason
from office.db import transaction
from office.ledgers import apply_changes
from office.ledgers.outbox import (
    DriverClaims,
    FinishedRow,
    claim_outbox,
    finish_outbox,
    move_outbox,
)
from office.models import Channel, Consent, OutboxStatus, Patient
from office.reminders import work

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from office.reminders.judge import Queued, Verdict

__all__ = ["ACTOR", "NOT_BUILT", "Outcome", "SendWrites", "not_built", "record_outcome"]

ACTOR = "flow:reminders"
"""Who the audit log names for the changes a send's outcome makes."""


NOT_BUILT = "message_not_built:"
"""The reason prefix of a row whose message could not be built; the exception's type follows."""


def not_built(exc: BaseException) -> str:
    """The skip reason for a message that could not be built: the type, never the message."""
    return NOT_BUILT + type(exc).__name__


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one hand-over to a transport ended."""

    status: OutboxStatus
    provider_id: str | None = None
    error: str | None = None
    rejected_address: bool = False
    opted_out: bool = False


def record_outcome(session: Session, item: Queued, outcome: Outcome, now: datetime) -> None:
    """Write how one send ended, and whatever it means for the patient's record."""
    finish_outbox(
        session,
        item.id,
        outcome.status,
        now=now,
        provider_message_id=outcome.provider_id,
        error=outcome.error,
    )
    if outcome.status is OutboxStatus.UNKNOWN:
        work.delivery_unknown(session, item.id)
    elif outcome.rejected_address and item.patient_id is not None:
        patient = session.get(Patient, item.patient_id)
        if patient is not None:
            apply_changes(
                session,
                patient,
                {"email_undeliverable": True},
                actor=ACTOR,
                source=f"outbox:{item.id}",
            )
        work.email_rejected(session, item.patient_id, item.id)
    elif outcome.opted_out and item.patient_id is not None:
        consent = session.scalar(
            select(Consent).where(
                Consent.patient_id == item.patient_id, Consent.channel == Channel.SMS
            )
        )
        if consent is not None and consent.opted_out_at is None:
            apply_changes(
                session,
                consent,
                {"opted_out_at": now, "opt_out_source": "carrier opt-out"},
                actor=ACTOR,
                source=f"outbox:{item.id}",
            )
    elif outcome.status is OutboxStatus.FAILED:
        work.send_refused(session, item.id)


@dataclass(frozen=True, slots=True)
class _Finished:
    """A sent (or deferred) message's outcome, waiting to ride with the next claim."""

    item_id: int
    outcome: Outcome
    now: datetime

    def row(self) -> FinishedRow:
        """What `DriverClaims` writes for it."""
        return (
            self.item_id,
            self.outcome.status,
            self.now,
            self.outcome.provider_id,
            self.outcome.error,
        )

    def write(self, connection: Connection) -> None:
        finish_outbox(
            connection,
            self.item_id,
            self.outcome.status,
            now=self.now,
            provider_message_id=self.outcome.provider_id,
            error=self.outcome.error,
        )


class SendWrites:
    """One lane's writes, one short transaction per message (see the module doc).

    The claims and the outcomes riding with them go over the lane's own connection, held
    for the lane's life and closed by `end`: a checkout per message cost a ping and a
    reset, two more round trips to PostgreSQL for every message. On PostgreSQL that is an
    asyncio connection (`DriverClaims`), so the lanes' commits overlap on the event loop;
    on SQLite a commit is CPU work and runs on the loop as it is.
    """

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._engine: Engine = factory.kw["bind"]
        self._connection: Connection | None = None
        self._carry: _Finished | None = None
        self._on_driver = self._engine.dialect.name == "postgresql"
        self._claims: DriverClaims | None = None

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """One committed transaction on the lane's SQLAlchemy connection: every write on
        SQLite, a plain skip on PostgreSQL."""
        if self._connection is None:
            self._connection = self._engine.connect()
        with self._connection.begin():
            yield self._connection

    async def _driver(self) -> DriverClaims:
        """The lane's claims on PostgreSQL (see `DriverClaims`), connected on first use."""
        if self._claims is None:
            self._claims = await DriverClaims.connect(self._engine)
        return self._claims

    async def claim(
        self, item_id: int, now: datetime, recipient: str, message_id: str | None
    ) -> bool:
        """pending -> sending, with the previous outcome; only one claimant wins."""
        if self._on_driver:
            claims = await self._driver()
            won = await claims.claim(
                item_id,
                now=now,
                recipient=recipient,
                message_id=message_id,
                finished=self._carry.row() if self._carry is not None else None,
            )
        else:
            with self._begin() as connection:
                if self._carry is not None:
                    self._carry.write(connection)
                won = claim_outbox(
                    connection, item_id, now=now, recipient=recipient, message_id=message_id
                )
        self._carry = None
        return won

    async def settle(self, item: Queued, outcome: Outcome, now: datetime) -> None:
        """Record how the send ended: with the next claim, or now when a person must know."""
        if outcome.status in (OutboxStatus.SENT, OutboxStatus.PENDING):
            self._carry = _Finished(item.id, outcome, now)
            return
        await self.flush()
        with transaction(self._factory) as session:
            record_outcome(session, item, outcome, now)

    async def close(self, item: Queued, verdict: Verdict, now: datetime) -> bool:
        """pending -> withdrawn or skipped, with the reason; False when another run had it."""
        await self.flush()
        status = verdict.status or OutboxStatus.SKIPPED
        reason = verdict.reason or ""
        if not (is_recipient_reason(reason) or reason.startswith(NOT_BUILT)):
            with self._begin() as connection:
                return move_outbox(
                    connection, item.id, OutboxStatus.PENDING, status, now=now, error=reason
                )
        # A person must fix the record or the template: the skip and its work item together.
        with transaction(self._factory) as session:
            moved = move_outbox(
                session, item.id, OutboxStatus.PENDING, status, now=now, error=reason
            )
            if moved and reason.startswith(NOT_BUILT):
                work.message_not_built(session, item.id, reason)
            elif moved and item.patient_id is not None:
                work.recipient_invalid(
                    session,
                    item.patient_id,
                    appointment_id=item.appointment_id or None,
                    reasons=[reason],
                )
            return moved

    async def flush(self) -> None:
        """Write the outcome still waiting for a claim to ride with."""
        if self._carry is None:
            return
        if self._on_driver:
            await (await self._driver()).finish(self._carry.row())
        else:
            with self._begin() as connection:
                self._carry.write(connection)
        self._carry = None

    async def end(self) -> None:
        """Write what still waits, and close the lane's connection."""
        try:
            await self.flush()
        finally:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            if self._claims is not None:
                claims, self._claims = self._claims, None
                await claims.close()
