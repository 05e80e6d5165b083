"""The fast paths of message building write exactly what the standard library would.

`to_wire` skips refolding header lines that already fit, `office.messages.POLICY`
parses each structural header once, `invitation_wire` writes an invitation's bytes
without building the message, and `build_ics` writes the calendar without icalendar's
objects and splices a cached VTIMEZONE: each is checked here against the slow,
standard path (the standard library's `EmailMessage`, icalendar's `Calendar`), byte
for byte.
"""

from __future__ import annotations

import email.policy
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formataddr
from typing import Literal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Event, vCalAddress, vText

from office.contracts.mail import to_wire
from office.ics import PRODID, appointment_uid, build_ics
from office.messages import Invitation, build_email, invitation_wire, message_id_for

STAMP = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)

# Header text as people type it: plain ASCII mostly, accents and the odd long line.
line = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), max_codepoint=0x2FF), min_size=1, max_size=120
).filter(lambda text: text.strip() != "")


def message(subject: str, name: str, recipient: str, body: str) -> EmailMessage:
    return build_email(
        message_id=message_id_for(subject, "clinic.example"),
        sender=formataddr((name, "reminders@clinic.example")),
        to=recipient,
        subject=subject,
        text=body,
        html=f"<p>{body}</p>",
        ics=None,
        method=None,
        date=STAMP,
    )


@settings(max_examples=300)
@given(
    subject=line,
    name=line,
    local=st.from_regex(r"[a-z0-9][a-z0-9.+-]{0,20}", fullmatch=True),
    body=st.text(max_size=300),
)
def test_wire_bytes_equal_the_standard_smtp_flatten(
    subject: str, name: str, local: str, body: str
) -> None:
    built = message(subject, name, f"{local}@patients.example", body)
    assert to_wire(built).data == built.as_bytes(policy=email.policy.SMTP)


def test_wire_of_a_full_reminder_equals_the_standard_flatten() -> None:
    calendar = build_ics(
        uid=appointment_uid(7, "clinic.example"),
        sequence=2,
        start_utc=STAMP + timedelta(days=2),
        end_utc=STAMP + timedelta(days=2, minutes=30),
        tz="America/Chicago",
        summary="Cita - Clínica del Lago",
        location="Clínica del Lago, 100 Oak Street, Chicago IL 60601",
        organizer_email="reminders@clinic.example",
        organizer_name="Clínica del Lago",
        attendee_email="maria@patients.example",
        method="REQUEST",
        dtstamp=STAMP,
    )
    built = build_email(
        message_id=message_id_for("k", "clinic.example"),
        sender=formataddr(("Clínica del Lago", "reminders@clinic.example")),
        to="maria@patients.example",
        subject="Recordatorio: su cita del miércoles 3 de diciembre a las 10:00",
        text="Hola, María.\n" * 30,
        html="<p>Hola, María.</p>" * 30,
        ics=calendar,
        method="REQUEST",
        date=STAMP,
    )
    assert to_wire(built).data == built.as_bytes(policy=email.policy.SMTP)


def test_shared_structural_headers_do_not_tie_messages_together() -> None:
    first = message("one", "Clinic", "a@patients.example", "first")
    second = message("two", "Clinic", "b@patients.example", "second")
    plain = next(part for part in first.walk() if part.get_content_type() == "text/plain")
    plain.set_param("format", "flowed")
    other = next(part for part in second.walk() if part.get_content_type() == "text/plain")
    assert plain.get_param("format") == "flowed"
    assert other.get_param("format") is None
    assert b"format" not in bytes(second)


@given(
    zone=st.sampled_from(
        ["America/Chicago", "America/New_York", "America/Phoenix", "Europe/London", "UTC"]
    ),
    minutes=st.integers(0, 3 * 365 * 24 * 4).map(lambda quarter: quarter * 15),
    length=st.sampled_from([15, 30, 600, 40 * 24 * 60]),
)
def test_cached_vtimezone_equals_icalendars_own(zone: str, minutes: int, length: int) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    data = build_ics(
        uid=appointment_uid(1, "clinic.example"),
        sequence=0,
        start_utc=start,
        end_utc=start + timedelta(minutes=length),
        tz=zone,
        summary="Appointment",
        location="Main",
        organizer_email="reminders@clinic.example",
        method="REQUEST",
        dtstamp=STAMP,
    )
    parsed = Calendar.from_ical(data)
    cached = [tz.to_ical() for tz in parsed.walk("VTIMEZONE")]
    # What icalendar itself adds to the same calendar, over the same years.
    parsed.subcomponents = [c for c in parsed.subcomponents if c.name != "VTIMEZONE"]
    event = parsed.walk("VEVENT")[0]
    first, last = event.decoded("DTSTART").year, event.decoded("DTEND").year
    parsed.add_missing_timezones(
        first_date=date(first, 1, 1), last_date=date(last, 1, 1) + timedelta(days=366)
    )
    assert cached == [tz.to_ical() for tz in parsed.walk("VTIMEZONE")]
    # Wall-clock times carry a TZID and need the zone; UTC (and the DST repeat hour) do not.
    assert bool(cached) == ("TZID" in event["DTSTART"].params)


def test_a_rebuilt_message_is_byte_identical() -> None:
    first = message("Reminder", "Clinic", "a@patients.example", "=_ looks like a boundary")
    again = message("Reminder", "Clinic", "a@patients.example", "=_ looks like a boundary")
    assert to_wire(first).data == to_wire(again).data
    assert first.get_boundary() is not None
    assert first.get_boundary().startswith("=_")  # type: ignore[union-attr]
    parsed = BytesParser(policy=email.policy.default).parsebytes(to_wire(first).data)
    body = parsed.get_body(preferencelist=("plain",))
    assert body is not None
    assert body.get_content().strip() == "=_ looks like a boundary"  # type: ignore[attr-defined]


# --- the calendar file, against icalendar's own objects ----------------------------------

# Calendar text as people type it, with every character iCalendar escapes or quotes.
calendar_text = st.text(
    st.one_of(
        st.sampled_from(list(",;:\\^\"'\u2019\n\r\tN ")),
        st.characters(blacklist_categories=("Cs", "Cc"), max_codepoint=0x2FF),
    ),
    max_size=150,
)


def icalendar_ics(
    *,
    uid: str,
    sequence: int,
    start: datetime,
    end: datetime,
    summary: str,
    location: str,
    organizer_email: str,
    organizer_name: str | None,
    attendee_email: str | None,
    method: str,
    dtstamp: datetime,
) -> bytes:
    """The same invitation built from icalendar's objects, as `build_ics` once built it."""
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
        attendee.params["RSVP"] = vText("FALSE")
        event.add("attendee", attendee)
    calendar.add_component(event)
    ical: bytes = calendar.to_ical()
    return ical


def without_vtimezone(ical: bytes) -> bytes:
    if b"BEGIN:VTIMEZONE" not in ical:
        return ical
    return ical[: ical.index(b"BEGIN:VTIMEZONE")] + ical[ical.index(b"BEGIN:VEVENT") :]


@settings(max_examples=400)
@given(
    summary=calendar_text,
    location=calendar_text,
    organizer_name=st.one_of(st.none(), calendar_text),
    attendee=st.one_of(
        st.none(), st.from_regex(r"[a-z0-9.+-]{1,70}@[a-z]{1,9}\.example", fullmatch=True)
    ),
    zone=st.sampled_from(["America/Chicago", "Asia/Kolkata", "UTC", "Etc/UTC", "Europe/London"]),
    minutes=st.integers(0, 3 * 365 * 24 * 4).map(lambda quarter: quarter * 15),
    seconds=st.sampled_from([0, 7]),
    sequence=st.integers(0, 10_000),
    method=st.sampled_from(["REQUEST", "CANCEL"]),
)
def test_the_calendar_file_equals_icalendars(
    summary: str,
    location: str,
    organizer_name: str | None,
    attendee: str | None,
    zone: str,
    minutes: int,
    seconds: int,
    sequence: int,
    method: Literal["REQUEST", "CANCEL"],
) -> None:
    start_utc = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes, seconds=seconds)
    end_utc = start_utc + timedelta(minutes=30)
    built = build_ics(
        uid=appointment_uid(sequence, "clinic.example"),
        sequence=sequence,
        start_utc=start_utc,
        end_utc=end_utc,
        tz=zone,
        summary=summary,
        location=location,
        organizer_email="reminders@clinic.example",
        organizer_name=organizer_name,
        attendee_email=attendee,
        method=method,
        dtstamp=STAMP + timedelta(microseconds=seconds),
    )
    # The times as `build_ics` writes them: the zone's wall clock, or UTC in a repeat hour.
    start, end = start_utc.astimezone(ZoneInfo(zone)), end_utc.astimezone(ZoneInfo(zone))
    if b"TZID=" not in built and zone not in ("UTC", "Etc/UTC"):
        start, end = start_utc.astimezone(ZoneInfo("UTC")), end_utc.astimezone(ZoneInfo("UTC"))
    reference = icalendar_ics(
        uid=appointment_uid(sequence, "clinic.example"),
        sequence=sequence,
        start=start,
        end=end,
        summary=summary,
        location=location,
        organizer_email="reminders@clinic.example",
        organizer_name=organizer_name,
        attendee_email=attendee,
        method=method,
        dtstamp=STAMP + timedelta(microseconds=seconds),
    )
    assert without_vtimezone(built) == reference


def test_a_calendar_address_on_two_lines_is_refused() -> None:
    with pytest.raises(ValueError, match="single line"):
        build_ics(
            uid=appointment_uid(1, "clinic.example"),
            sequence=0,
            start_utc=STAMP,
            end_utc=STAMP + timedelta(minutes=30),
            tz="America/Chicago",
            summary="Appointment",
            location="Main",
            organizer_email="reminders@clinic.example",
            attendee_email="ava@patients.example\r\nATTENDEE:mailto:eve@evil.example",
            method="REQUEST",
            dtstamp=STAMP,
        )


# --- the invitation's wire bytes, against the standard library's message ----------------

INVITE = build_ics(
    uid=appointment_uid(7, "clinic.example"),
    sequence=2,
    start_utc=STAMP + timedelta(days=2),
    end_utc=STAMP + timedelta(days=2, minutes=30),
    tz="America/Chicago",
    summary="Cita - Clínica del Lago",
    location="Clínica del Lago, 100 Oak Street, Chicago IL 60601",
    organizer_email="reminders@clinic.example",
    organizer_name="Clínica del Lago",
    attendee_email="maria@patients.example",
    method="REQUEST",
    dtstamp=STAMP,
)


@settings(max_examples=400)
@given(
    subject=st.one_of(line, st.from_regex(r"[ -~]{1,90}", fullmatch=True)),
    name=st.one_of(line, st.sampled_from(["Riverside Clinic", "St. Mary's", ""])),
    to=st.one_of(
        st.from_regex(r"[a-z0-9][a-z0-9.+-]{0,70}@patients\.example", fullmatch=True),
        st.sampled_from(["María <maria@patients.example>", "a@b.example, c@d.example"]),
    ),
    body=st.text(max_size=400),
    html=st.text(max_size=400),
    date=st.sampled_from([STAMP, STAMP.astimezone(ZoneInfo("America/Chicago"))]),
    key=st.one_of(st.text(min_size=1, max_size=20), st.just("<a(b)@c>")),
)
def test_invitation_wire_equals_the_standard_message_flattened(
    subject: str, name: str, to: str, body: str, html: str, date: datetime, key: str
) -> None:
    parts = Invitation(
        message_id=key if key.startswith("<") else message_id_for(key, "clinic.example"),
        sender=formataddr((name, "reminders@clinic.example")),
        to=to,
        subject=subject,
        text=body,
        html=html,
        ics=INVITE,
        method="REQUEST",
        date=date,
    )
    assert invitation_wire(**parts) == to_wire(build_email(**parts))


def test_invitation_wire_refuses_what_build_email_refuses() -> None:
    parts = Invitation(
        message_id="<k@clinic.example>",
        sender="reminders@clinic.example",
        to="ava@patients.example",
        subject="Reminder",
        text="Hello",
        html="<p>Hello</p>",
        ics=INVITE,
        method="REQUEST",
        date=STAMP,
    )
    invitation_wire(**parts)
    for wrong, why in (
        ({"method": "CANCEL"}, "METHOD"),
        ({"message_id": "k@clinic.example"}, "local@domain"),
        ({"to": ""}, "no recipient"),
    ):
        with pytest.raises(ValueError, match=why):
            to_wire(build_email(**{**parts, **wrong}))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=why):
            invitation_wire(**{**parts, **wrong})  # type: ignore[arg-type]
