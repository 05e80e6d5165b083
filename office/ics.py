"""The RFC 5545 / iTIP invitation attached to appointment mail.

Calendar clients match updates by UID and order them by SEQUENCE, so both come
from the appointment (its id and its version), never from the render: a fresh
UID per message duplicates the event, and a cancellation sent as REQUEST leaves
it in the calendar.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event, vCalAddress, vText

__all__ = ["PRODID", "appointment_uid", "build_ics"]

PRODID = "-//officeflows//appointment reminders//EN"

_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


def appointment_uid(appointment_id: int, domain: str) -> str:
    """The UID every invitation for one appointment shares, for its whole life."""
    if appointment_id < 0:
        raise ValueError("appointment_id must not be negative")
    if not _DOMAIN.fullmatch(domain):
        raise ValueError("domain must be a bare DNS name such as clinic.example")
    return f"appt-{appointment_id}@{domain}"


def build_ics(
    *,
    uid: str,
    sequence: int,
    start_utc: datetime,
    end_utc: datetime,
    tz: str,
    summary: str,
    location: str,
    organizer_email: str,
    method: Literal["REQUEST", "CANCEL"],
    dtstamp: datetime,
    organizer_name: str | None = None,
    attendee_email: str | None = None,
) -> bytes:
    """Serialize one VEVENT inside an iTIP VCALENDAR.

    Times are written in the location's zone with TZID and a VTIMEZONE covering
    the event's years, so the patient's calendar shows the clinic's wall clock;
    a zone of "UTC" is written with the Z suffix instead. The output depends
    only on the arguments, so a retry produces identical bytes.

    Args:
        uid: From `appointment_uid`; identical for the booking, every reschedule
            and the cancellation.
        sequence: The appointment's version; must grow with each change.
        start_utc: Aware start instant (any zone; converted to `tz`).
        end_utc: Aware end instant, after `start_utc`.
        tz: The location's IANA zone, e.g. "America/Chicago".
        summary: Neutral title chosen by the caller; never the visit reason.
        method: "REQUEST" books or updates; "CANCEL" removes the event and sets
            STATUS:CANCELLED.
        dtstamp: Aware instant the invitation was generated (the outbox row's
            creation time, so a resend keeps it).
        attendee_email: The patient's address; RFC 5546 asks for an ATTENDEE in
            REQUEST and CANCEL, and Outlook ignores invitations without one.
    """
    for name, value in (("start_utc", start_utc), ("end_utc", end_utc), ("dtstamp", dtstamp)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")
    # iCalendar times have whole-second resolution.
    start_utc, end_utc = start_utc.replace(microsecond=0), end_utc.replace(microsecond=0)
    if end_utc <= start_utc:
        raise ValueError("end_utc must be after start_utc")
    if sequence < 0:
        raise ValueError("sequence must not be negative")
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError("method must be REQUEST or CANCEL")
    if not organizer_email:
        raise ValueError("organizer_email must not be empty")
    if not uid or any(char in uid for char in "\r\n"):
        raise ValueError("uid must be a non-empty single line")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError("tz must be an IANA time zone such as America/Chicago") from exc

    start = start_utc.astimezone(zone)
    end = end_utc.astimezone(zone)
    if _ambiguous(start) or _ambiguous(end):
        # A wall time inside the autumn repeat hour cannot say which 01:30 it
        # means (clients take the first), so the instant is written in UTC.
        start, end = start_utc.astimezone(ZoneInfo("UTC")), end_utc.astimezone(ZoneInfo("UTC"))

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)

    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", dtstamp.astimezone(ZoneInfo("UTC")).replace(microsecond=0))
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", summary)
    event.add("location", location)
    event.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    event.add("transp", "OPAQUE")

    organizer = vCalAddress(f"mailto:{organizer_email}")
    if organizer_name:
        organizer.params["CN"] = vText(organizer_name)
    event.add("organizer", organizer)
    if attendee_email is not None:
        attendee = vCalAddress(f"mailto:{attendee_email}")
        attendee.params["ROLE"] = vText("REQ-PARTICIPANT")
        attendee.params["PARTSTAT"] = vText("NEEDS-ACTION")
        # Replies come back through the signed links, not iTIP REPLY mail.
        attendee.params["RSVP"] = vText("FALSE")
        event.add("attendee", attendee)

    calendar.add_component(event)
    # A VTIMEZONE spanning the event's calendar years keeps the file small yet
    # covers any DST change between start and end. It depends only on the zone
    # and the years, so icalendar builds it once per pair and it is spliced in
    # ahead of the event, where `add_missing_timezones` would put it.
    ical: bytes = calendar.to_ical()
    if start.tzinfo is zone:  # wall-clock times, which need their zone's rules
        at = ical.index(b"BEGIN:VEVENT\r\n")
        ical = ical[:at] + _vtimezone(tz, start.year, end.year) + ical[at:]
    return ical


@functools.lru_cache(maxsize=64)
def _vtimezone(tz: str, first_year: int, last_year: int) -> bytes:
    """The serialized VTIMEZONE covering `first_year` through `last_year` in `tz`."""
    zone = ZoneInfo(tz)
    calendar = Calendar()
    event = Event()
    event.add("dtstart", datetime(first_year, 1, 1, 12, tzinfo=zone))
    calendar.add_component(event)
    calendar.add_missing_timezones(
        first_date=date(first_year, 1, 1),
        last_date=date(last_year, 1, 1) + timedelta(days=366),
    )
    return b"".join(component.to_ical() for component in calendar.walk("VTIMEZONE"))


def _ambiguous(local: datetime) -> bool:
    """True when this wall-clock time occurs twice in its zone (the DST fall-back hour)."""
    return local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset()
