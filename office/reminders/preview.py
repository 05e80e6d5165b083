"""What the next hours' runs would send or skip, to whom (masked) and when; reads only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select

from office.clock import chunks
from office.models import OutboxItem, OutboxStatus
from office.reminders.enqueue import candidates, identity, max_lead, recorded
from office.reminders.policy import DEFAULT_POLICY, Policy, due_now, plan_reminders
from office.reminders.rows import OURS
from office.reminders.visits import load_visits

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["PreviewLine", "mask_address", "preview"]

_UTC = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class PreviewLine:
    """One message a run would send (or skip) in the preview period."""

    send_at: datetime
    local: datetime  # in the patient's zone
    appointment_id: int
    kind: str
    offset: str
    channel: str
    to: str  # masked
    skip: str | None


def mask_address(address: str | None) -> str:
    """ "j***@e***.test", "+1******0123": enough to recognise, not enough to use."""
    if not address:
        return "-"
    if "@" in address:
        local, _, domain = address.partition("@")
        label, dot, rest = domain.partition(".")
        tail = f".{rest.rsplit('.', 1)[-1]}" if dot else ""
        return f"{local[:1]}***@{label[:1]}***{tail}"
    digits = address.strip()
    if len(digits) <= 6:
        return "*" * len(digits)
    return digits[:2] + "*" * (len(digits) - 6) + digits[-4:]


def preview(
    factory: sessionmaker[Session],
    *,
    now: datetime,
    hours: float,
    policy: Policy = DEFAULT_POLICY,
) -> list[PreviewLine]:
    """What runs in the next `hours` would send or skip; reads only, writes nothing."""
    until = now + timedelta(hours=hours)
    with factory() as session:
        lines = _planned(session, now, until, policy) + _queued(session, now, until, policy)
    lines.sort(key=lambda line: (line.send_at, line.appointment_id, line.kind, line.channel))
    return lines


def _planned(session: Session, now: datetime, until: datetime, policy: Policy) -> list[PreviewLine]:
    """Reminders not yet recorded whose time comes by `until`."""
    lines: list[PreviewLine] = []
    ids = candidates(session, now, until + max_lead(session, policy))
    for chunk in chunks(ids):
        visits = load_visits(session, chunk, policy)
        seen = recorded(session, chunk)
        for visit in visits.values():
            plans = plan_reminders(visit.facts, policy)
            due = [plan for plan in plans if plan.send_at <= now]
            # due_now answers in the order it was given, a superseded plan as a new copy.
            overdue = {id(plan): shown for plan, shown in zip(due, due_now(due, now), strict=True)}
            for plan in plans:
                if plan.send_at > until or identity(visit, plan) in seen:
                    continue
                shown = overdue.get(id(plan), plan) if plan.send_at <= now else plan
                lines.append(
                    PreviewLine(
                        send_at=max(shown.send_at, now),
                        local=max(shown.send_at, now).astimezone(visit.zone),
                        appointment_id=visit.appointment_id,
                        kind="reminder",
                        offset=plan.offset.key,
                        channel=str(plan.channel),
                        to=mask_address(plan.address),
                        skip=shown.skip,
                    )
                )
    return lines


def _queued(session: Session, now: datetime, until: datetime, policy: Policy) -> list[PreviewLine]:
    """Messages already pending whose time comes by `until`."""
    queued = list(
        session.scalars(
            select(OutboxItem).where(
                OutboxItem.status == OutboxStatus.PENDING,
                OURS,
                OutboxItem.due_at <= until,
            )
        )
    )
    owners = load_visits(session, {item.appointment_id or 0 for item in queued}, policy)
    lines = []
    for item in queued:
        due = max(item.due_at or now, now)
        owner = owners.get(item.appointment_id or 0)
        zone = owner.zone if owner is not None else _UTC
        lines.append(
            PreviewLine(
                send_at=due,
                local=due.astimezone(zone),
                appointment_id=item.appointment_id or 0,
                kind=item.kind,
                offset=str(item.detail.get("offset", "")),
                channel=str(item.channel),
                to=mask_address(item.recipient),
                skip=None,
            )
        )
    return lines
