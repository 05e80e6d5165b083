"""Parsing: real-world shapes read right, and hostile input never raises.

Every hostile message must come back either `Parsed` or `Unreadable` with a reason;
nothing is logged (the test fails on any log record at WARNING or above).
"""

from __future__ import annotations

import logging
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.demo_mail import synthetic_mail
from office.mail import Parsed, Unreadable, parse_mail
from office.mail.parse import MAX_DEPTH, html_to_text


def _parsed(raw: bytes) -> Parsed:
    result = parse_mail(raw)
    assert isinstance(result, Parsed), result
    return result


def test_headers_addresses_and_plain_text() -> None:
    raw = (
        b"Return-Path: <bounce+x@lab.example>\r\n"
        b"From: =?utf-8?q?Jos=C3=A9?= <Results@Lab.Example>\r\n"
        b"To: Front <frontdesk+labs@clinic.example>, other@clinic.example\r\n"
        b"Cc: billing@clinic.example\r\nSubject: =?utf-8?b?TGFiIHLDqXN1bHRz?=\r\n"
        b"Date: Tue, 01 Dec 2026 10:00:00 -0600\r\nMessage-ID: <a1@lab.example>\r\n\r\nHello\r\n"
    )
    mail = _parsed(raw)
    assert mail.sender == "results@lab.example"
    assert mail.return_path == "bounce+x@lab.example"
    assert mail.recipients == (
        "frontdesk+labs@clinic.example",
        "other@clinic.example",
        "billing@clinic.example",
    )
    assert mail.subject == "Lab résults"
    assert mail.message_id == "<a1@lab.example>"
    assert mail.date is not None
    assert mail.date.hour == 16
    assert mail.text.strip() == "Hello"


def test_exchange_style_message_id_and_encoded_word_with_newline_are_kept() -> None:
    raw = (
        b"From: a@b.example\r\nMessage-ID: <[1.2.3.4]abc@exchange>\r\n"
        b"Subject: =?utf-8?q?broken\r\n word?=\r\n\r\nbody\r\n"
    )
    mail = _parsed(raw)
    assert mail.message_id == "<[1.2.3.4]abc@exchange>"
    assert "broken" in mail.subject


def test_html_only_body_becomes_text_without_scripts() -> None:
    message = EmailMessage()
    message["From"] = "p@example.org"
    message.set_content(
        "<html><head><style>p{}</style></head><body><p>Book&nbsp;an <b>appointment</b></p>"
        "<script>alert(1)</script><p>Thanks</p></body></html>",
        subtype="html",
    )
    mail = _parsed(message.as_bytes())
    assert "Book an appointment" in mail.text
    assert "alert" not in mail.text
    assert "p{}" not in mail.text
    assert html_to_text("<p>a</p><p>b</p>").split() == ["a", "b"]


def test_forward_carries_the_real_sender_and_attachment_metadata() -> None:
    forward = next(raw for key, raw in synthetic_mail(12) if b"Fwd:" in raw)
    mail = _parsed(forward)
    assert mail.forwarded is not None
    assert mail.forwarded.sender == "noreply@labcorp.example"
    assert mail.original_sender == "noreply@labcorp.example"
    assert any(a.content_type == "message/rfc822" for a in mail.attachments)
    referral = _parsed(synthetic_mail(1)[0][1])
    [pdf] = referral.attachments
    assert (pdf.name, pdf.content_type) == ("referral.pdf", "application/pdf")
    assert pdf.size > 20


def test_delivery_status_notification_is_read() -> None:
    raw = synthetic_mail(10)[9][1]
    mail = _parsed(raw)
    assert mail.report is not None
    [recipient] = mail.report.recipients
    assert recipient.failed
    assert recipient.status == "5.1.1"
    assert mail.report.original_message_id is not None


def test_unknown_charset_and_nul_bytes_are_replaced_not_fatal() -> None:
    raw = (
        b"From: a@b.example\r\nSubject: =?x-unknown?q?abc?=\r\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nbo\x00dy \xff\xfe\r\n"
    )
    mail = _parsed(raw)
    assert "\x00" not in mail.text
    assert "bo" in mail.text


def test_empty_and_headerless_input_is_unreadable_with_a_reason() -> None:
    assert isinstance(parse_mail(b""), Unreadable)
    garbage = parse_mail(b"\x00\x01\x02 not an email at all")
    assert isinstance(garbage, Unreadable)
    assert garbage.reason


def test_deep_nesting_is_cut_off_not_followed() -> None:
    raw = _nested(50)
    mail = _parsed(raw)
    assert "NestedTooDeep" in mail.defects
    assert MAX_DEPTH < 50


def test_twenty_megabyte_attachment_is_measured() -> None:
    message = EmailMessage()
    message["From"] = "fax@fax.example"
    message.set_content("fax")
    message.add_attachment(
        b"\x00" * (20 * 1024 * 1024), maintype="application", subtype="pdf", filename="big.pdf"
    )
    mail = _parsed(message.as_bytes())
    assert mail.attachments[0].size == 20 * 1024 * 1024


def _nested(depth: int) -> bytes:
    head = b"From: a@b.example\r\nMIME-Version: 1.0\r\n"
    body = b"Content-Type: text/plain\r\n\r\ninnermost\r\n"
    for level in range(depth):
        boundary = f"b{level}".encode()
        body = (
            b'Content-Type: multipart/mixed; boundary="'
            + boundary
            + b'"\r\n\r\n--'
            + boundary
            + b"\r\n"
            + body
            + b"\r\n--"
            + boundary
            + b"--\r\n"
        )
    return head + body


_HEADER_NAMES = st.sampled_from(
    [
        "From",
        "To",
        "Subject",
        "Date",
        "Message-ID",
        "Content-Type",
        "Return-Path",
        "Content-Transfer-Encoding",
        "X-Weird",
        "Auto-Submitted",
        "References",
    ]
)
_HOSTILE_VALUES = st.one_of(
    st.binary(max_size=80),
    st.sampled_from(
        [
            b"=?utf-8?b?!!!notbase64?=",
            b"=?unknown-8?q?x?=",
            b"=?utf-8?q?a\r\n b?=",
            b"multipart/mixed; boundary=",
            b'multipart/mixed; boundary="x"',
            b"<[]>",
            b"<>",
            b'text/plain; charset="\xff"',
            b"base64",
            b"quoted-printable",
            b"\x00\x00",
            b"Tue, 99 Foo 99999 99:99:99 +9999",
            b"undisclosed-recipients:;",
        ]
    ),
)


@st.composite
def hostile_messages(draw: st.DrawFn) -> bytes:
    headers = draw(st.lists(st.tuples(_HEADER_NAMES, _HOSTILE_VALUES), max_size=12))
    head = b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers)
    parts = draw(st.lists(st.binary(max_size=200), max_size=4))
    boundary = draw(st.sampled_from([b"x", b"", b"--", b"b\x00"]))
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
    if draw(st.booleans()):
        body += b"--" + boundary + b"--"
    separator = draw(st.sampled_from([b"\r\n", b"\n", b""]))
    return head + separator + body


@given(hostile_messages())
def test_hostile_messages_never_raise(raw: bytes) -> None:
    result = parse_mail(raw)
    assert isinstance(result, Parsed | Unreadable)
    if isinstance(result, Unreadable):
        assert result.reason


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    assert isinstance(parse_mail(raw), Parsed | Unreadable)


def test_parsing_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for raw in (_nested(50), b"\x00", b"From: x\r\nContent-Type: multipart/mixed\r\n\r\n--"):
        parse_mail(raw)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
