"""Which reminder goes to whom, when, and on which channel: plain functions over plain data.

Nothing here touches the database or Prefect; the service gathers the facts and
this module decides. Every decision not to send carries a short reason (no PHI)
that the outbox, the preview and the audit show.

Two kinds of offset, because they differ across a DST change:

- ``{"hours": 24}`` is an instant offset: exactly 24 real hours before.
- ``{"days_before": 1, "at": "09:00"}`` is wall-clock: 09:00 on the previous
  local day, however long that day was.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from office.contacts import recipient_problem
from office.models import AppointmentStatus, Channel, CheckStatus

__all__ = [
    "DEFAULT_OFFSETS",
    "DEFAULT_POLICY",
    "MESSAGE_CHANNELS",
    "Contact",
    "Facts",
    "Offset",
    "OffsetError",
    "Planned",
    "Policy",
    "Route",
    "SendWindow",
    "bring_insurance_card",
    "due_now",
    "notice_route",
    "parse_offsets",
    "plan_reminders",
    "reachable",
    "route",
    "visit_label",
    "zone_for",
]

MESSAGE_CHANNELS = (Channel.EMAIL, Channel.SMS)

# Skip reasons: short, stable, free of PHI; they are stored in outbox.error.
BOOKED_INSIDE = "booked inside window"
NO_WINDOW = "no send window left before the appointment"
CONFIRMED = "patient already confirmed"
SUPERSEDED = "superseded by a later reminder"
ONE_TEXT_A_DAY = "one text a day"
NO_CONSENT = "no consent"
OPTED_OUT = "opted out"
NO_EMAIL = "no email address"
NO_PHONE = "no mobile number"
NOT_APPROVED = "confidential: not the approved channel"
UNDELIVERABLE = "email undeliverable"
NOT_ACTIVE = "appointment not active"
AFTER_START = "step falls after the appointment"

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class OffsetError(ValueError):
    """An appointment type's reminder settings cannot be read; the message says which part."""


@dataclass(frozen=True, slots=True)
class Offset:
    """One reminder step: when, relative to the appointment, and on which channels.

    Exactly one of `hours` (an instant offset) or `days_before` + `at` (a
    wall-clock time on an earlier local day) is set.
    """

    key: str
    channels: tuple[Channel, ...]
    hours: float | None = None
    days_before: int | None = None
    at: time | None = None

    def __post_init__(self) -> None:
        instant = self.hours is not None
        wall_clock = self.days_before is not None and self.at is not None
        if instant == wall_clock:
            raise OffsetError("an offset needs either hours or days_before with at")

    def nominal(self, start: datetime, zone: ZoneInfo) -> datetime:
        """The instant this step is meant for, before send windows move it."""
        if self.hours is not None:
            return start - timedelta(hours=self.hours)
        day = start.astimezone(zone).date() - timedelta(days=self.days_before or 0)
        # A wall time inside the spring gap resolves forward, one in the autumn
        # repeat to its first occurrence: zoneinfo's fold=0 behaviour.
        return datetime.combine(day, self.at or time(0), zone).astimezone(UTC)

    @property
    def max_lead(self) -> timedelta:
        """The furthest ahead of the appointment this step can fire, window moves included."""
        if self.hours is not None:
            return timedelta(hours=self.hours, days=1)
        return timedelta(days=(self.days_before or 0) + 2)


def _offset(hours: float, *channels: Channel) -> Offset:
    return Offset(key=f"{hours:g}h", channels=channels, hours=hours)


DEFAULT_OFFSETS: tuple[Offset, ...] = (
    _offset(72, Channel.EMAIL),
    _offset(24, Channel.EMAIL, Channel.SMS),
    _offset(2, Channel.SMS),
)


def parse_offsets(raw: Sequence[Any] | None) -> tuple[Offset, ...]:
    """Read `AppointmentType.reminder_offsets`; None means the practice default.

    Each entry is ``{"hours": 24, "channels": ["email", "sms"]}`` or
    ``{"days_before": 1, "at": "09:00", "channels": ["sms"]}``. An empty list
    switches reminders off for the type.

    Raises:
        OffsetError: naming the entry and the field that is wrong.
    """
    if raw is None:
        return DEFAULT_OFFSETS
    if not isinstance(raw, (list, tuple)):
        raise OffsetError("reminder_offsets must be a list")
    offsets: list[Offset] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            raise OffsetError(f"reminder_offsets[{index}] must be an object")
        channels = _channels(entry.get("channels"), index)
        if "hours" in entry:
            hours = entry["hours"]
            if isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours <= 0:
                raise OffsetError(f"reminder_offsets[{index}].hours must be a positive number")
            offsets.append(Offset(key=f"{hours:g}h", channels=channels, hours=float(hours)))
        elif "days_before" in entry:
            days = entry["days_before"]
            if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= 60:
                raise OffsetError(f"reminder_offsets[{index}].days_before must be 0 to 60")
            at = entry.get("at")
            match = _HHMM.match(at) if isinstance(at, str) else None
            if match is None:
                raise OffsetError(f"reminder_offsets[{index}].at must be HH:MM")
            clock = time(int(match.group(1)), int(match.group(2)))
            key = f"d{days}at{clock:%H%M}"
            offsets.append(Offset(key=key, channels=channels, days_before=days, at=clock))
        else:
            raise OffsetError(f"reminder_offsets[{index}] needs hours or days_before")
    keys = [offset.key for offset in offsets]
    if len(set(keys)) != len(keys):
        raise OffsetError("reminder_offsets has the same step twice")
    return tuple(offsets)


def _channels(raw: object, index: int) -> tuple[Channel, ...]:
    if not isinstance(raw, (list, tuple)) or not raw:
        raise OffsetError(f"reminder_offsets[{index}].channels must be a non-empty list")
    channels: list[Channel] = []
    for name in raw:
        if name not in ("email", "sms"):
            raise OffsetError(f"reminder_offsets[{index}].channels: only email and sms")
        if Channel(name) not in channels:
            channels.append(Channel(name))
    return tuple(channels)


@dataclass(frozen=True, slots=True)
class SendWindow:
    """The local hours messages may go out in; 09:00-20:00 by default.

    `margin` keeps planned sends that far before closing time, so a run on the
    15-minute schedule still finds them inside the window.
    """

    opens: time = time(9, 0)
    closes: time = time(20, 0)
    margin: timedelta = timedelta(minutes=15)

    def __post_init__(self) -> None:
        opens = self.opens.hour * 60 + self.opens.minute
        closes = self.closes.hour * 60 + self.closes.minute
        if closes - self.margin.total_seconds() / 60 <= opens:
            raise ValueError("the send window must stay open longer than its margin")

    def _last(self, day: Any, zone: ZoneInfo) -> datetime:
        return datetime.combine(day, self.closes, zone) - self.margin

    def may_send(self, instant: datetime, zone: ZoneInfo) -> bool:
        """True while `instant` is inside the window in `zone` (a run may send now)."""
        local = instant.astimezone(zone)
        return self.opens <= local.time() < self.closes

    def latest_slot(self, instant: datetime, zone: ZoneInfo) -> datetime:
        """`instant` if it is a plannable time, else the latest such time before it."""
        local = instant.astimezone(zone)
        last_today = self._last(local.date(), zone)
        if self.opens <= local.time() and local <= last_today:
            return instant
        if local > last_today:
            return last_today.astimezone(UTC)
        return self._last(local.date() - timedelta(days=1), zone).astimezone(UTC)

    def next_opening(self, instant: datetime, zone: ZoneInfo) -> datetime:
        """`instant` if the window is open then, else when it next opens."""
        if self.may_send(instant, zone):
            return instant
        local = instant.astimezone(zone)
        day = local.date() if local.time() < self.opens else local.date() + timedelta(days=1)
        return datetime.combine(day, self.opens, zone).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Policy:
    """Practice-wide reminder rules; appointment types refine the offsets."""

    window: SendWindow = field(default_factory=SendWindow)
    default_offsets: tuple[Offset, ...] = DEFAULT_OFFSETS
    # TCPA healthcare exemption: at most one text a day per appointment.
    one_text_a_day: bool = True


DEFAULT_POLICY = Policy()
"""The rules a run keeps unless it is given others."""


@dataclass(frozen=True, slots=True)
class Contact:
    """How a patient may be reached, reduced to what routing needs."""

    email: str | None
    phone: str | None
    consented: frozenset[Channel] = frozenset()
    opted_out: frozenset[Channel] = frozenset()
    confidential: bool = False
    confidential_channel: Channel | None = None
    confidential_address: str | None = None
    email_undeliverable: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    """Where a message on one channel goes, or why it cannot go there."""

    channel: Channel
    address: str | None
    reason: str | None = None

    @property
    def usable(self) -> bool:
        return self.address is not None and self.reason is None


def route(contact: Contact, channel: Channel) -> Route:
    """The address for `channel`, honouring consent, opt-outs and confidential communications."""
    if channel in contact.opted_out:
        return Route(channel, None, OPTED_OUT)
    if channel not in contact.consented:
        return Route(channel, None, NO_CONSENT)
    if channel is Channel.EMAIL and contact.email_undeliverable:
        return Route(channel, None, UNDELIVERABLE)
    if contact.confidential:
        # 45 CFR 164.522(b): only the channel and address the patient approved.
        if contact.confidential_channel is not channel:
            return Route(channel, None, NOT_APPROVED)
        address = contact.confidential_address or _own(contact, channel)
    else:
        address = _own(contact, channel)
    if not address:
        return Route(channel, None, NO_EMAIL if channel is Channel.EMAIL else NO_PHONE)
    # Checked again here, whatever the entry checks were: a row stored before them, or
    # written around them, must not put a second recipient into a header or a calendar.
    problem = recipient_problem(channel.value, address)
    if problem is not None:
        return Route(channel, None, problem)
    return Route(channel, address)


def _own(contact: Contact, channel: Channel) -> str | None:
    return contact.email if channel is Channel.EMAIL else contact.phone


def notice_route(contact: Contact) -> Route | None:
    """Booking, cancellation and reschedule notices: email (with the calendar), else a text."""
    for channel in MESSAGE_CHANNELS:
        found = route(contact, channel)
        if found.usable:
            return found
    return None


def reachable(contact: Contact) -> bool:
    """False when no channel is usable: a person has to call instead."""
    return any(route(contact, channel).usable for channel in MESSAGE_CHANNELS)


@dataclass(frozen=True, slots=True)
class Facts:
    """What planning needs to know about one appointment, gathered by the service."""

    appointment_id: int
    start: datetime
    status: AppointmentStatus
    scheduled_at: datetime  # when the patient learned this time: booking or last move
    zone: ZoneInfo  # the patient's zone, else the location's
    offsets: tuple[Offset, ...]
    stop_on_confirm: bool
    contact: Contact


@dataclass(frozen=True, slots=True)
class Planned:
    """One reminder on one channel: when it goes, where, or why it does not."""

    offset: Offset
    channel: Channel
    send_at: datetime
    nominal_at: datetime
    address: str | None
    skip: str | None = None

    @property
    def moved(self) -> bool:
        return self.send_at != self.nominal_at


def zone_for(patient_zone: str | None, location_zone: str) -> ZoneInfo:
    """The patient's own zone when known and valid, else the location's."""
    if patient_zone:
        try:
            return ZoneInfo(patient_zone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(location_zone)


def plan_reminders(facts: Facts, policy: Policy) -> list[Planned]:
    """Every reminder this appointment gets at its current time, skipped ones included.

    The result depends only on the facts, never on the clock, so every run and
    the preview agree; `due_now` then picks what a run at a given moment sends.
    """
    zone = facts.zone
    window = policy.window
    active = facts.status in (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED)
    plans: list[Planned] = []
    for offset in facts.offsets:
        nominal = offset.nominal(facts.start, zone)
        send_at = window.latest_slot(nominal, zone)
        skip: str | None = None
        if not active:
            skip = NOT_ACTIVE
        elif nominal >= facts.start:
            skip = AFTER_START
        elif nominal < facts.scheduled_at:
            skip = BOOKED_INSIDE
        elif send_at < facts.scheduled_at:
            skip = NO_WINDOW
        elif facts.status is AppointmentStatus.CONFIRMED and facts.stop_on_confirm:
            skip = CONFIRMED
        for channel in offset.channels:
            found = route(facts.contact, channel)
            reason = skip or found.reason
            plans.append(
                Planned(offset, channel, send_at, nominal, found.address, reason),
            )
    plans.sort(key=lambda plan: (plan.send_at, plan.nominal_at))
    if policy.one_text_a_day:
        plans = _one_text_a_day(plans, zone)
    return plans


def _one_text_a_day(plans: list[Planned], zone: ZoneInfo) -> list[Planned]:
    """Keep the first text of each local day; later ones that day are skipped."""
    days: set[object] = set()
    kept: list[Planned] = []
    for plan in plans:  # already in send order
        if plan.channel is Channel.SMS and plan.skip is None:
            day = plan.send_at.astimezone(zone).date()
            if day in days:
                plan = replace(plan, skip=ONE_TEXT_A_DAY)
            else:
                days.add(day)
        kept.append(plan)
    return kept


def due_now(plans: Iterable[Planned], now: datetime) -> list[Planned]:
    """The reminders whose time has come, each older one skipped if a newer one is due too.

    A run that was down for a while must not send both the 72 h and the 24 h
    reminder at once: the later one (closer to the appointment) wins.
    """
    due = [plan for plan in plans if plan.send_at <= now]
    winners: dict[Channel, Planned] = {}
    for plan in due:
        best = winners.get(plan.channel)
        if plan.skip is None and (
            best is None or (plan.send_at, plan.nominal_at) > (best.send_at, best.nominal_at)
        ):
            winners[plan.channel] = plan
    return [
        plan
        if plan.skip is not None or winners[plan.channel] is plan
        else replace(plan, skip=SUPERSEDED)
        for plan in due
    ]


def visit_label(*, sensitive: bool, type_name: str, language: str) -> str:
    """The noun a message uses for the visit; sensitive types never show their name."""
    neutral = "cita" if language == "es" else "appointment"
    if sensitive or language != "en" or not type_name.strip():
        return neutral
    return type_name.strip().lower()


def bring_insurance_card(latest_check: CheckStatus | None) -> bool:
    """Ask for the insurance card when the visit's latest eligibility answer is not a clean yes."""
    return latest_check in (CheckStatus.UNVERIFIED, CheckStatus.ERROR, CheckStatus.INACTIVE)
