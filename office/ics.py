"""The RFC 5545 / iTIP invitation attached to appointment mail.

Calendar clients match updates by UID and order them by SEQUENCE, so both come
from the appointment (its id and its version), never from the render: a fresh
UID per message duplicates the event, and a cancellation sent as REQUEST leaves
it in the calendar.

The file is written line by line, in the order and with the escaping, quoting and
folding icalendar gives the same calendar (a test holds the two byte for byte):
building icalendar's objects for every message cost more than the rest of the
email together. icalendar still writes the VTIMEZONE, once per zone and years.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar, Event
from icalendar.timezone.tzid import tzid_from_tzinfo

__all__ = ["PRODID", "appointment_uid", "build_ics"]

PRODID = "-//officeflows//appointment reminders//EN"

_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_UTC = ZoneInfo("UTC")
_FOLD_AT = 75  # octets: a longer content line is folded (RFC 5545 3.1)
_QUOTED = re.compile("[,;:\u2019]")  # a parameter value holding one is quoted
_CARET = re.compile(r'\^|\r\n|\r|\n|"')  # RFC 6868 parameter escapes
_CARETS = {"^": "^^", "\r\n": "^n", "\r": "^n", "\n": "^n", '"': "^'"}


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
        start, end = start_utc.astimezone(_UTC), end_utc.astimezone(_UTC)

    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{_text(PRODID)}",
        "CALSCALE:GREGORIAN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"SUMMARY:{_text(summary)}",
        _instant("DTSTART", start),
        _instant("DTEND", end),
        _instant("DTSTAMP", dtstamp.astimezone(_UTC).replace(microsecond=0)),
        f"UID:{_text(uid)}",
        f"SEQUENCE:{sequence}",
    ]
    if attendee_email is not None:
        # Replies come back through the signed links, not iTIP REPLY mail.
        lines.append(
            "ATTENDEE;PARTSTAT=NEEDS-ACTION;ROLE=REQ-PARTICIPANT;RSVP=FALSE:"
            + _address(attendee_email)
        )
    lines.append(f"LOCATION:{_text(location)}")
    if organizer_name:
        lines.append(f"ORGANIZER;CN={_common_name(organizer_name)}:{_address(organizer_email)}")
    else:
        lines.append(f"ORGANIZER:{_address(organizer_email)}")
    lines += [
        f"STATUS:{'CANCELLED' if method == 'CANCEL' else 'CONFIRMED'}",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    ical = "\r\n".join(map(_fold, lines)).encode("utf-8")
    # A VTIMEZONE spanning the event's calendar years keeps the file small yet
    # covers any DST change between start and end. It depends only on the zone
    # and the years, so icalendar builds it once per pair and it is spliced in
    # ahead of the event, where `add_missing_timezones` would put it.
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


def _text(value: str) -> str:
    """A TEXT value, escaped as RFC 5545 3.3.11 says (and as icalendar does it)."""
    return (
        value.replace("\\N", "\n")
        .replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def _parameter(value: str, *, quote: bool = False) -> str:
    """A parameter value: RFC 6868 escapes, in double quotes where a delimiter needs them."""
    value = _CARET.sub(lambda found: _CARETS[found.group(0)], value)
    return f'"{value}"' if quote or _QUOTED.search(value) else value


def _common_name(name: str) -> str:
    # icalendar also quotes a CN holding a space or an apostrophe.
    return _parameter(name, quote=" " in name or "'" in name)


def _address(email: str) -> str:
    if "\r" in email or "\n" in email:
        raise ValueError("calendar addresses must be a single line")
    return f"mailto:{email}"


@functools.lru_cache(maxsize=64)
def _tzid(zone: tzinfo) -> str:
    """The zone's TZID as icalendar names it; "UTC" for every zone equivalent to UTC."""
    return tzid_from_tzinfo(zone) or ""


def _instant(name: str, moment: datetime) -> str:
    """A DATE-TIME property: UTC with the Z suffix, any other zone with its TZID."""
    value = (
        f"{moment.year:04}{moment.month:02}{moment.day:02}"
        f"T{moment.hour:02}{moment.minute:02}{moment.second:02}"
    )
    tzid = _tzid(moment.tzinfo) if moment.tzinfo is not None else ""
    if tzid == "UTC":
        return f"{name}:{value}Z"
    return f"{name};TZID={_parameter(tzid or moment.tzname() or '')}:{value}"


def _fold(line: str) -> str:
    """Fold a content line longer than 75 octets, never splitting a character or an escape."""
    if len(line) < _FOLD_AT and line.isascii():
        return line
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for char in line:
        width = len(char.encode("utf-8"))
        if current and size + width >= _FOLD_AT:
            # Clients misread a backslash or caret escape split across lines: it moves down.
            carried = current.pop() if len(current) > 1 and current[-1] in "\\^" else ""
            parts.append("".join(current))
            current = [carried] if carried else []
            size = len(carried)
        current.append(char)
        size += width
    parts.append("".join(current))
    return "\r\n ".join(parts)
