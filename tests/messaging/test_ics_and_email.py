"""The iTIP calendar part and the MIME message, each parsed back the way a client would."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from icalendar import Calendar

from office.ics import appointment_uid, build_ics
from office.messages import build_email, message_id_for

START = datetime(2025, 3, 12, 14, 30, tzinfo=UTC)
STAMP = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def ics(method: str = "REQUEST", sequence: int = 0, **overrides: object) -> bytes:
    arguments: dict[str, object] = {
        "uid": appointment_uid(42, "clinic.example"),
        "sequence": sequence,
        "start_utc": START,
        "end_utc": START + timedelta(minutes=30),
        "tz": "America/New_York",
        "summary": "Appointment at Riverside Clinic",
        "location": "1200 Main Street, Springfield",
        "organizer_email": "frontdesk@clinic.example",
        "method": method,
        "dtstamp": STAMP,
    }
    arguments.update(overrides)
    return build_ics(**arguments)  # type: ignore[arg-type]


def event_of(data: bytes) -> tuple[Calendar, object]:
    calendar = Calendar.from_ical(data)
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    return calendar, events[0]


def email_with(data: bytes | None, method: str | None) -> bytes:
    message = build_email(
        message_id=message_id_for("appt-42:reminder-24h:email", "clinic.example"),
        sender="Riverside Clinic <reminders@clinic.example>",
        to="María López <maria@patients.example>",
        subject="Recordatorio de su cita",
        text="Hola, María: le recordamos su cita.",
        html="<p>Hola, María: le recordamos su cita.</p>",
        ics=data,
        method=method,
        date=STAMP,
    )
    return bytes(message)


def parse(raw: bytes) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_request_carries_uid_sequence_method_and_local_start() -> None:
    calendar, event = event_of(ics(sequence=3))
    assert calendar["METHOD"] == "REQUEST"
    assert event["UID"] == "appt-42@clinic.example"  # type: ignore[index]
    assert event["SEQUENCE"] == 3  # type: ignore[index]
    assert event["STATUS"] == "CONFIRMED"  # type: ignore[index]
    start = event.decoded("DTSTART")  # type: ignore[attr-defined]
    assert start == START
    assert start.tzinfo.key == "America/New_York"
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["America/New_York"]


def test_cancel_sets_method_and_status_cancelled_with_the_same_uid() -> None:
    _, request_event = event_of(ics(sequence=1))
    cancel_cal, cancel_event = event_of(ics("CANCEL", sequence=2))
    assert cancel_cal["METHOD"] == "CANCEL"
    assert cancel_event["STATUS"] == "CANCELLED"  # type: ignore[index]
    assert cancel_event["UID"] == request_event["UID"]  # type: ignore[index]
    assert cancel_event["SEQUENCE"] > request_event["SEQUENCE"]  # type: ignore[index]


def test_output_is_deterministic_for_the_same_appointment_version() -> None:
    assert ics(sequence=5) == ics(sequence=5)
    assert ics(sequence=5) != ics(sequence=6)


def test_utc_zone_is_written_with_z_suffix() -> None:
    data = ics(tz="UTC")
    assert b"DTSTART:20250312T143000Z" in data
    assert b"VTIMEZONE" not in data


def test_ambiguous_fall_back_hour_is_written_in_utc() -> None:
    # 06:30 UTC on 2 Nov 2025 is the second 01:30 in New York; a TZID time would mean the first.
    start = datetime(2025, 11, 2, 6, 30, tzinfo=UTC)
    _, event = event_of(ics(start_utc=start, end_utc=start + timedelta(minutes=20)))
    assert event.decoded("DTSTART") == start  # type: ignore[attr-defined]
    assert event["DTSTART"].to_ical() == b"20251102T063000Z"  # type: ignore[index]


def test_attendee_and_organizer() -> None:
    _, event = event_of(
        ics(attendee_email="maria@patients.example", organizer_name="Riverside Clinic")
    )
    assert str(event["ORGANIZER"]) == "mailto:frontdesk@clinic.example"  # type: ignore[index]
    assert event["ORGANIZER"].params["CN"] == "Riverside Clinic"  # type: ignore[index]
    assert str(event["ATTENDEE"]) == "mailto:maria@patients.example"  # type: ignore[index]
    assert event["ATTENDEE"].params["RSVP"] == "FALSE"  # type: ignore[index]


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"start_utc": datetime(2025, 3, 12, 14, 30)}, "timezone-aware"),
        ({"dtstamp": datetime(2025, 3, 1)}, "timezone-aware"),
        ({"end_utc": START}, "after"),
        ({"sequence": -1}, "sequence"),
        ({"method": "PUBLISH"}, "method"),
        ({"tz": "Mars/Olympus_Mons"}, "IANA"),
        ({"uid": "appt-1\r\nX-INJECTED:1"}, "uid"),
    ],
)
def test_invalid_arguments_are_refused(overrides: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ics(**overrides)


@given(
    start=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=5, max_value=600),
    zone=st.sampled_from(
        ["America/New_York", "America/Chicago", "America/Phoenix", "Pacific/Honolulu", "UTC"]
    ),
)
def test_any_instant_round_trips_through_the_file(start: datetime, minutes: int, zone: str) -> None:
    end = start + timedelta(minutes=minutes)
    _, event = event_of(ics(start_utc=start, end_utc=end, tz=zone))
    # iCalendar has whole seconds; appointments never need finer.
    assert event.decoded("DTSTART") == start.replace(microsecond=0)  # type: ignore[attr-defined]
    assert event.decoded("DTEND") == end.replace(microsecond=0)  # type: ignore[attr-defined]


def test_appointment_uid_is_stable_and_validated() -> None:
    assert appointment_uid(7, "clinic.example") == "appt-7@clinic.example"
    with pytest.raises(ValueError, match="domain"):
        appointment_uid(7, "clinic.example>")


def test_email_with_invitation_has_calendar_part_whose_method_matches_the_file() -> None:
    parsed = parse(email_with(ics(sequence=4), "REQUEST"))

    assert parsed.get_content_type() == "multipart/mixed"
    alternative, attachment = parsed.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    kinds = [part.get_content_type() for part in alternative.iter_parts()]
    assert kinds == ["text/plain", "text/html", "text/calendar"]
    calendar_part = list(alternative.iter_parts())[2]
    assert calendar_part.get_param("method") == "REQUEST"
    assert str(calendar_part.get_content_charset()).lower() == "utf-8"

    inline = Calendar.from_ical(calendar_part.get_content())
    assert inline["METHOD"] == "REQUEST"
    event = inline.walk("VEVENT")[0]
    assert (event["UID"], event["SEQUENCE"]) == ("appt-42@clinic.example", 4)

    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_filename() == "invite.ics"
    assert Calendar.from_ical(attachment.get_content())["METHOD"] == "REQUEST"


def test_cancellation_email_says_cancel_in_mime_and_in_the_file() -> None:
    parsed = parse(email_with(ics("CANCEL", sequence=5), "CANCEL"))
    calendar_part = next(
        part for part in parsed.walk() if part.get_content_type() == "text/calendar"
    )
    assert calendar_part.get_param("method") == "CANCEL"
    inline = Calendar.from_ical(calendar_part.get_content())
    assert inline["METHOD"] == "CANCEL"
    assert inline.walk("VEVENT")[0]["STATUS"] == "CANCELLED"


def test_headers_and_bodies_survive_a_round_trip() -> None:
    parsed = parse(email_with(None, None))
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Message-ID"] == message_id_for("appt-42:reminder-24h:email", "clinic.example")
    assert parsed["Subject"] == "Recordatorio de su cita"
    assert parsed["To"].addresses[0].display_name == "María López"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Date"].datetime == STAMP
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None
    assert html is not None
    assert text.get_content().strip() == "Hola, María: le recordamos su cita."
    assert "<p>Hola, María" in html.get_content()


def test_every_part_is_7bit_safe() -> None:
    raw = email_with(ics(summary="Cita en Clínica"), "REQUEST")
    assert all(byte < 128 for byte in raw)


@pytest.mark.parametrize(
    ("data", "method", "match"),
    [
        (b"ics", None, "together"),
        (None, "REQUEST", "together"),
        ("request-file", "CANCEL", "does not match"),
    ],
)
def test_method_must_agree_with_the_file(data: object, method: str | None, match: str) -> None:
    payload = ics() if data == "request-file" else data
    with pytest.raises(ValueError, match=match):
        email_with(payload, method)  # type: ignore[arg-type]


def test_header_injection_in_subject_is_refused() -> None:
    with pytest.raises(ValueError, match="linefeed"):
        build_email(
            message_id=message_id_for("k", "clinic.example"),
            sender="reminders@clinic.example",
            to="maria@patients.example",
            subject="Hello\r\nBcc: everyone@example.com",
            text="t",
            html="<p>t</p>",
            ics=None,
            method=None,
        )


def test_message_id_is_stable_per_key_and_leaks_nothing() -> None:
    key = "appt-42:maria@patients.example:reminder-24h"
    first = message_id_for(key, "clinic.example")
    assert first == message_id_for(key, "clinic.example")
    assert first != message_id_for(key + "x", "clinic.example")
    assert "maria" not in first
    assert "appt-42" not in first


@given(key=st.text(min_size=1), domain=st.from_regex(r"[a-z0-9]{1,10}\.example", fullmatch=True))
def test_message_id_is_always_a_valid_header_value(key: str, domain: str) -> None:
    message_id = message_id_for(key, domain)
    assert re.fullmatch(rf"<[0-9a-f]{{32}}@{re.escape(domain)}>", message_id)
    message = EmailMessage()
    message["Message-ID"] = message_id
    assert parse(bytes(message))["Message-ID"] == message_id


@pytest.mark.parametrize(("key", "domain"), [("", "clinic.example"), ("k", "a b"), ("k", "")])
def test_message_id_inputs_are_validated(key: str, domain: str) -> None:
    with pytest.raises(ValueError, match="must"):
        message_id_for(key, domain)


def test_build_email_refuses_a_malformed_message_id() -> None:
    with pytest.raises(ValueError, match="message_id"):
        build_email(
            message_id="no-brackets@clinic.example",
            sender="reminders@clinic.example",
            to="maria@patients.example",
            subject="s",
            text="t",
            html="<p>t</p>",
            ics=None,
            method=None,
        )


def test_local_zone_is_the_locations_not_the_servers() -> None:
    _, event = event_of(ics(tz="America/Phoenix"))
    start = event.decoded("DTSTART")  # type: ignore[attr-defined]
    assert start.utcoffset() == ZoneInfo("America/Phoenix").utcoffset(START.replace(tzinfo=None))
    assert start.hour == 7
