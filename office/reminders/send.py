"""The send loop: one batch of queued rows over a few lanes at once, each row exactly once.

A batch sends over `OFFICE_SMTP_CONNECTIONS` lanes, each with its own connection per
transport, taking rows in order from one queue. For each row, a lane judges it again at
the moment it goes, builds its message (or takes the one the helper process built
ahead), claims the row while the transport takes the envelope, hands it the message
once the claim has committed, and records the outcome with its next claim (see
`office.reminders.outcomes` for the writes and `office.reminders.recovery` for what a
kill leaves behind: at most one row per lane).
Two runs at once cannot both send a row: the claim is a conditional UPDATE only one of
them wins.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from office.contracts.mail import (
    MailAmbiguousError,
    MailPermanentError,
    MailRecipientRejected,
    MailRetryableError,
    Wire,
)
from office.contracts.sms import SmsAmbiguousError, SmsRejected, SmsRetryableError
from office.messages import sms_fits
from office.models import Channel, OutboxItem, OutboxStatus
from office.reminders.compose import Draft, compose_email, compose_sms
from office.reminders.judge import Learned, Queued, Verdict, judge
from office.reminders.outcomes import Outcome, SendWrites, not_built
from office.reminders.policy import DEFAULT_POLICY, Policy
from office.reminders.prebuild import AHEAD_MIN, Prebuilt
from office.reminders.rows import OURS
from office.reminders.tally import Tally
from office.reminders.visits import Visit, load_visits

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from office.reminders.channels import Channels, Transports
    from office.settings import Settings

__all__ = ["RETRY_DELAYS", "Batch", "DeliveryDeferred", "due_outbox_ids", "send_batch"]

RETRY_DELAYS: tuple[float, ...] = (1.0, 4.0)
"""Seconds between a batch's attempts at one message the transport answered "not now"."""

_OUTCOME_NAMES = {
    OutboxStatus.SENT: "sent",
    OutboxStatus.FAILED: "failed",
    OutboxStatus.UNKNOWN: "unknown",
    OutboxStatus.PENDING: "deferred",
}


class DeliveryDeferred(Exception):
    """The transport kept refusing for now (connect failures, 4xx); the rest stays pending."""


@dataclass(frozen=True)
class Batch:
    """What every message of a batch shares: where it reads, how it sends, the rules it keeps.

    Attributes:
        retry_delays: Waits between attempts at one message the transport answered
            "not now" (4xx, connect failure); after the last, it stays pending.
        max_deferred: Messages in a row left pending before the batch gives up.
    """

    factory: sessionmaker[Session]
    settings: Settings
    transports: Transports
    policy: Policy = DEFAULT_POLICY
    retry_delays: Sequence[float] = RETRY_DELAYS
    max_deferred: int = 3


def due_outbox_ids(
    factory: sessionmaker[Session], *, now: datetime, appointment_id: int | None = None
) -> list[int]:
    """Pending reminder-kind messages whose time has come, oldest first."""
    query = select(OutboxItem.id).where(
        OutboxItem.status == OutboxStatus.PENDING,
        OURS,
        OutboxItem.due_at <= now,
    )
    if appointment_id is not None:
        query = query.where(OutboxItem.appointment_id == appointment_id)
    with factory() as session:
        return list(session.scalars(query.order_by(OutboxItem.id)))


async def send_batch(batch: Batch, outbox_ids: Sequence[int], *, now: datetime) -> Tally:
    """Send these pending messages, each exactly once, over `smtp_connections` lanes at once.

    Each lane has its own connection per transport and takes the next row in order;
    every row is still claimed in its own committed transaction before it goes, so a
    crash leaves at most one row in doubt per lane. `now` is the batch's start; the
    clock advances with real elapsed time from there.

    Raises:
        DeliveryDeferred: `batch.max_deferred` messages in a row could not be handed
            over (server down, repeated 4xx); they and the rest stay pending.
    """
    items, visits = _read_queued(batch, outbox_ids)
    secret = batch.settings.require_secret_key()
    ahead = Prebuilt.start(_drafts_ahead(items, visits, now, batch.policy), batch.settings, secret)
    loop = _SendLoop(batch, visits, ahead, secret, now)
    queue = iter(items)
    lanes = max(1, min(batch.settings.smtp_connections, len(items)))
    try:
        # Not a TaskGroup: a lane that stops must not cancel the others mid-send (a
        # cancelled send is a message in doubt); each finishes the row it holds.
        ended = await asyncio.gather(
            *(loop.lane(queue) for _ in range(lanes)), return_exceptions=True
        )
    finally:
        ahead.cancel()
    for outcome in ended:
        if isinstance(outcome, BaseException):
            raise outcome
    return loop.tally


class _SendLoop:
    """What the lanes of one batch share: the rows' visits, the tally, what they learn."""

    def __init__(
        self,
        batch: Batch,
        visits: dict[int, Visit],
        ahead: Prebuilt,
        secret: str,
        batch_now: datetime,
    ) -> None:
        self.batch = batch
        self.visits = visits
        self.ahead = ahead
        self.secret = secret
        self.batch_now = batch_now
        self.started = time.monotonic()
        self.tally = Tally()
        self.learned = Learned()
        self.deferred_in_a_row = 0
        self.stopping = False

    async def lane(self, queue: Iterator[Queued]) -> None:
        """Send rows from the shared queue over this lane's own connections until none is left."""
        writes = SendWrites(self.batch.factory)
        try:
            async with self.batch.transports.open() as channels:
                for item in queue:
                    await self._one(item, writes, channels)
                    if self.stopping:
                        break
        except BaseException:
            self.stopping = True  # the other lanes finish the row they hold, then stop
            raise
        finally:
            await writes.end()

    async def _one(self, item: Queued, writes: SendWrites, channels: Channels) -> None:
        # Each message is judged and stamped at the moment it goes: a long batch must not
        # keep sending after the window closes, nor claim with a stale time a later run
        # would take for an expired lease.
        now = self.batch_now + timedelta(seconds=time.monotonic() - self.started)
        visit = self.visits.get(item.appointment_id)
        verdict = judge(item, visit, now, self.batch.policy, self.learned)
        if verdict.action == "defer":
            self.tally.add(item.kind, item.channel, "waiting")
            return
        payload: Wire | str | None = None
        if verdict.action == "send" and visit is not None and verdict.recipient:
            # Built before the claim, so the row is "sending" only while on the wire.
            payload = self.ahead.take(item.id, verdict.recipient)
            if payload is None:
                payload, verdict = _compose(item, visit, verdict, self.batch.settings, self.secret)
        if payload is None or verdict.recipient is None:
            if await writes.close(item, verdict, now):
                closed = verdict.status is OutboxStatus.WITHDRAWN
                self.tally.add(item.kind, item.channel, "withdrawn" if closed else "skipped")
            return
        message_id = payload.envelope.message_id if isinstance(payload, Wire) else None
        claim = writes.claim(item.id, now, verdict.recipient, message_id)
        # Once the claim commits, until this lane's next one does, this row is the one a
        # kill would leave in doubt.
        outcome = await _deliver(
            item, payload, verdict.recipient, channels, self.batch.retry_delays, claim
        )
        if outcome is None:
            return  # another run took it
        await writes.settle(item, outcome, now)
        self.tally.add(item.kind, item.channel, _OUTCOME_NAMES[outcome.status])
        if outcome.rejected_address and visit is not None:
            self.learned.undeliverable.add(visit.patient_id)
        if outcome.opted_out and visit is not None:
            self.learned.sms_opted_out.add(visit.patient_id)
        if outcome.status is not OutboxStatus.PENDING:
            self.deferred_in_a_row = 0
            return
        self.deferred_in_a_row += 1
        if self.deferred_in_a_row >= self.batch.max_deferred:
            raise DeliveryDeferred(
                f"{self.deferred_in_a_row} messages in a row were not accepted; "
                "the rest of the batch stays pending"
            )


def _read_queued(batch: Batch, outbox_ids: Sequence[int]) -> tuple[list[Queued], dict[int, Visit]]:
    """The batch's rows still pending, in order, and their visits."""
    with batch.factory() as session:
        items = [
            Queued(
                id=row.id,
                key=row.idempotency_key,
                kind=row.kind,
                channel=row.channel,
                appointment_id=row.appointment_id or 0,
                patient_id=row.patient_id,
                recipient=row.recipient,
                detail=dict(row.detail),
                created_at=row.created_at,
            )
            for row in session.execute(
                select(
                    OutboxItem.id,
                    OutboxItem.idempotency_key,
                    OutboxItem.kind,
                    OutboxItem.channel,
                    OutboxItem.appointment_id,
                    OutboxItem.patient_id,
                    OutboxItem.recipient,
                    OutboxItem.detail,
                    OutboxItem.created_at,
                )
                .where(
                    OutboxItem.id.in_(outbox_ids),
                    OutboxItem.status == OutboxStatus.PENDING,
                    OURS,
                )
                .order_by(OutboxItem.id)
            )
        ]
        visits = load_visits(session, {item.appointment_id for item in items}, batch.policy)
    return items, visits


def _draft(item: Queued, visit: Visit, recipient: str) -> Draft:
    return Draft(
        item_id=item.id,
        key=item.key,
        kind=item.kind,
        detail=item.detail,
        created_at=item.created_at,
        recipient=recipient,
        visit=visit,
    )


def _drafts_ahead(
    items: Sequence[Queued], visits: dict[int, Visit], now: datetime, policy: Policy
) -> list[Draft]:
    """The emails this batch will most likely send, judged at its start, to build ahead."""
    if sum(item.channel is Channel.EMAIL for item in items) < AHEAD_MIN:
        return []
    learned = Learned()
    drafts: list[Draft] = []
    for item in items:
        visit = visits.get(item.appointment_id)
        if item.channel is not Channel.EMAIL or visit is None:
            continue
        verdict = judge(item, visit, now, policy, learned)
        if verdict.action == "send" and verdict.recipient:
            drafts.append(_draft(item, visit, verdict.recipient))
    return drafts


def _compose(
    item: Queued, visit: Visit, verdict: Verdict, settings: Settings, secret: str
) -> tuple[Wire | str | None, Verdict]:
    """The row's message, or a skip with why: one row that cannot be built never stops a batch.

    Only the exception's type is kept: its message may quote the row (the calendar
    library's errors quote the value they refused).
    """
    draft = _draft(item, visit, verdict.recipient or "")
    try:
        if item.channel is Channel.EMAIL:
            return compose_email(draft, settings, secret), verdict
        body = compose_sms(draft, settings, secret)
    except Exception as exc:  # recorded on the row and as a work item
        return None, Verdict("close", OutboxStatus.SKIPPED, not_built(exc))
    if not sms_fits(body):
        return None, Verdict("close", OutboxStatus.SKIPPED, "text longer than 160 characters")
    return body, verdict


def _describe(exc: BaseException) -> str:
    # Adapter messages carry codes only, never addresses or content (their contract).
    return f"{type(exc).__name__}: {exc}"[:500]


async def _deliver(
    item: Queued,
    payload: Wire | str,
    recipient: str,
    channels: Channels,
    retry_delays: Sequence[float],
    claim: Coroutine[Any, Any, bool],
) -> Outcome | None:
    """Claim the row and hand its message to the transport, retrying "not now" answers.

    The claim commits while an SMTP server takes the envelope (MAIL, RCPT); the message
    itself goes out only once the claim has committed (`Mailer.send`'s `ready`), so a
    kill before the commit leaves an SMTP transaction with no content. Returns None when
    another run holds the row (nothing went out); never raises for the transport, and
    raises what the claim raised.
    """
    claimed = asyncio.ensure_future(claim)
    try:
        last: BaseException | None = None
        for attempt, delay in enumerate((0.0, *retry_delays)):
            if delay:
                await asyncio.sleep(delay)
            try:
                outcome = await _hand_over(
                    item, payload, recipient, channels, claimed if attempt == 0 else None
                )
            except (MailRetryableError, SmsRetryableError) as exc:
                outcome, last = None, exc
            if not await claimed:
                return None
            if outcome is not None:
                return outcome
        return Outcome(OutboxStatus.PENDING, error="deferred: " + _describe(last) if last else None)
    finally:
        if not claimed.done():  # cancelled mid-send: the claim's commit is let finish
            await asyncio.wait([claimed])


async def _hand_over(
    item: Queued,
    payload: Wire | str,
    recipient: str,
    channels: Channels,
    ready: Awaitable[bool] | None,
) -> Outcome | None:
    """One attempt at the transport, after `ready`'s go-ahead; None when it gave none.

    Raises:
        MailRetryableError, SmsRetryableError: Not now; nothing went out.
    """
    try:
        if isinstance(payload, Wire):
            provider_id = await channels.mailer.send(payload, ready=ready)
        else:
            if ready is not None and not await ready:
                return None
            provider_id = await channels.sms.send(
                to=recipient, body=payload, idempotency_key=item.key
            )
    except (MailRetryableError, SmsRetryableError):
        raise
    except MailRecipientRejected as exc:
        return Outcome(OutboxStatus.FAILED, error=_describe(exc), rejected_address=True)
    except (MailAmbiguousError, SmsAmbiguousError) as exc:
        return Outcome(OutboxStatus.UNKNOWN, error=_describe(exc))
    except MailPermanentError as exc:
        return Outcome(OutboxStatus.FAILED, error=_describe(exc))
    except SmsRejected as exc:
        return Outcome(OutboxStatus.FAILED, error=_describe(exc), opted_out=exc.opted_out)
    except Exception as exc:  # a transport bug must not end the batch
        # It may have gone out or not; a person decides. Its message may quote the row.
        # (A claim that failed is raised by the caller, which awaits it again.)
        return Outcome(OutboxStatus.UNKNOWN, error=f"unexpected {type(exc).__name__}")
    if provider_id is None:
        return None
    return Outcome(OutboxStatus.SENT, provider_id=provider_id)
