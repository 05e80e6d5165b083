"""Whether a queued row is still right to send, at the moment it goes.

A row was right when it was recorded; by the time its batch reaches it the
patient may have opted out, the appointment moved or been cancelled, the send
window closed, or an earlier message of the same batch may have bounced.
`judge` weighs all of that and says send (to whom), close (withdrawn or skipped,
with why), or wait for a later run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from office.models import AppointmentStatus, Channel, OutboxStatus
from office.reminders.policy import Contact, Planned, Policy, due_now, plan_reminders, route
from office.reminders.visits import ACTIVE, Visit, stamp

__all__ = ["Learned", "Queued", "Verdict", "judge"]


@dataclass(frozen=True, slots=True)
class Queued:
    """An outbox row as read at the start of a batch."""

    id: int
    key: str
    kind: str
    channel: Channel
    appointment_id: int
    patient_id: int | None
    recipient: str
    detail: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Verdict:
    """Send (to `recipient`), close (as `status`, because `reason`), or wait for a later run."""

    action: Literal["send", "close", "defer"]
    status: OutboxStatus | None = None
    reason: str | None = None
    recipient: str | None = None


@dataclass
class Learned:
    """What a batch learned mid-way: addresses that bounced, numbers that opted out."""

    undeliverable: set[int] = field(default_factory=set)
    sms_opted_out: set[int] = field(default_factory=set)

    def contact(self, visit: Visit) -> Contact:
        contact = visit.contact
        if visit.patient_id in self.undeliverable:
            contact = replace(contact, email_undeliverable=True)
        if visit.patient_id in self.sms_opted_out:
            contact = replace(contact, opted_out=contact.opted_out | {Channel.SMS})
        return contact


def judge(
    item: Queued, visit: Visit | None, now: datetime, policy: Policy, learned: Learned
) -> Verdict:
    """Is this row still right to send, now? Opt-outs and moves since it was queued count."""
    withdraw = OutboxStatus.WITHDRAWN
    skipped = OutboxStatus.SKIPPED
    if visit is None:
        return Verdict("close", withdraw, "appointment deleted")
    if item.kind == "cancellation":
        if visit.status is not AppointmentStatus.CANCELLED:
            return Verdict("close", withdraw, "appointment active again")
    else:
        if visit.status not in ACTIVE:
            return Verdict("close", withdraw, "appointment cancelled")
        if visit.start <= now:
            return Verdict("close", skipped, "appointment already started")
    if int(item.detail.get("start", 0)) != stamp(visit.start):
        return Verdict("close", withdraw, "appointment moved")
    contact = learned.contact(visit)
    open_window = policy.window.may_send(now, visit.zone)
    if item.kind == "reminder":
        facts = replace(visit.facts, contact=contact)
        match: Planned | None = None
        for plan in due_now(plan_reminders(facts, policy), now):
            if plan.offset.key == item.detail.get("offset") and plan.channel is item.channel:
                match = plan
        if match is None:
            return Verdict("close", skipped, "no longer scheduled")
        if match.skip is not None:
            return Verdict("close", skipped, match.skip)
        if not open_window:
            return Verdict("defer")
        return Verdict("send", recipient=match.address)
    found = route(contact, item.channel)
    if not found.usable:
        return Verdict("close", skipped, found.reason)
    if item.channel is Channel.SMS and not open_window:
        return Verdict("defer")
    return Verdict("send", recipient=found.address)
