"""The fast paths of message building write exactly what the standard library would.

`to_wire` skips refolding header lines that already fit, `office.messages.POLICY`
parses each structural header once, and `build_ics` splices a cached VTIMEZONE:
each is checked here against the slow, standard path, byte for byte.
"""

from __future__ import annotations

import email.policy
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formataddr

from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from office.contracts.mail import to_wire
from office.ics import appointment_uid, build_ics
from office.messages import build_email, message_id_for

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
