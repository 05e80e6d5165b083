"""The RFC 3834 acknowledgement policy, one refusal at a time, and the dedupe key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from office.mail import ack_recipient, ack_refusal, dedupe_key, parse_mail
from office.mail.parse import Parsed

STORED = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
OWN = frozenset({"frontdesk@riverbend.test", "reminders@riverbend.test"})


def mail(extra: str = "", sender: str = "pat@example.org", date: str | None = None) -> Parsed:
    dated = date or "Tue, 01 Dec 2026 09:00:00 -0600"
    raw = f"From: {sender}\r\nTo: frontdesk@riverbend.test\r\nDate: {dated}\r\n{extra}\r\nhi\r\n"
    parsed = parse_mail(raw.encode())
    assert isinstance(parsed, Parsed)
    return parsed


def refusal(parsed: Parsed, *, backlog: bool = False) -> str | None:
    return ack_refusal(parsed, own_addresses=OWN, may_acknowledge=not backlog, stored_at=STORED)


def test_an_ordinary_message_may_be_acknowledged() -> None:
    assert refusal(mail()) is None
    assert refusal(mail("Auto-Submitted: no\r\n")) is None


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("Auto-Submitted: auto-replied\r\n", "Auto-Submitted"),
        ("Auto-Submitted: auto-generated; owner=x\r\n", "Auto-Submitted"),
        ("Precedence: bulk\r\n", "Precedence bulk, list or junk"),
        ("Precedence: junk\r\n", "Precedence bulk, list or junk"),
        ("Precedence: list\r\n", "Precedence bulk, list or junk"),
        ("List-Id: <news.example>\r\n", "mailing list"),
        ("List-Unsubscribe: <mailto:u@x.example>\r\n", "mailing list"),
        ("X-Auto-Response-Suppress: All\r\n", "automatic-reply suppression header"),
        ("Return-Path: <>\r\n", "null or missing sender"),
    ],
)
def test_automatic_bulk_and_list_mail_is_never_answered(extra: str, reason: str) -> None:
    assert refusal(mail(extra)) == reason


@pytest.mark.parametrize(
    "sender",
    [
        "MAILER-DAEMON@mx.example",
        "noreply@shop.example",
        "no-reply@x.example",
        "postmaster@x.example",
        "bounces+123@list.example",
        "owner-list@x.example",
        "list-request@x.example",
    ],
)
def test_daemons_and_no_reply_senders_are_never_answered(sender: str) -> None:
    assert refusal(mail(sender=sender)) == "daemon or no-reply sender"


def test_the_practice_never_answers_itself_nor_a_backlog_nor_old_mail() -> None:
    assert refusal(mail(sender="reminders@riverbend.test")) == "the practice's own address"
    assert refusal(mail(), backlog=True) == "backlog import"
    assert refusal(mail(date="Mon, 02 Nov 2026 09:00:00 -0600")) == "old message"


def test_the_reply_goes_to_the_envelope_sender() -> None:
    assert ack_recipient(mail("Return-Path: <bounce-7@esp.example>\r\n")) == "bounce-7@esp.example"
    assert ack_recipient(mail()) == "pat@example.org"


def test_dedupe_key_is_the_message_id_else_stable_headers_and_body() -> None:
    with_id = b"Message-ID: <a@b>\r\nFrom: x@y.example\r\n\r\nbody\r\n"
    key, message_id = dedupe_key(with_id)
    assert key.startswith("m:")
    assert message_id == "<a@b>"
    assert dedupe_key(b"Received: by relay\r\n" + with_id)[0] == key

    bare = (
        b"From: x@y.example\r\nSubject: s\r\nDate: Tue, 01 Dec 2026 09:00:00 -0600\r\n\r\nbody\r\n"
    )
    hashed, none = dedupe_key(bare)
    assert hashed.startswith("h:")
    assert none is None
    # a relay adds Received, another line-ending convention: still the same message
    assert dedupe_key(b"Received: from mx\r\n" + bare)[0] == hashed
    assert dedupe_key(bare.replace(b"\r\n", b"\n"))[0] == hashed
    assert dedupe_key(bare.replace(b"body", b"other"))[0] != hashed
    assert dedupe_key(bare.replace(b"Subject: s", b"Subject: t"))[0] != hashed


def test_stale_dates_are_measured_from_storage() -> None:
    fresh = mail(date="Mon, 30 Nov 2026 09:00:00 -0600")
    assert fresh.date is not None
    assert STORED - fresh.date < timedelta(days=3)
    assert refusal(fresh) is None


def test_messages_without_any_stable_header_are_told_apart_by_their_bytes() -> None:
    keys = {dedupe_key(raw)[0] for raw in (b"", b"\x00\x00", b"words only", b"X-Odd: 1\r\n\r\n")}
    assert len(keys) == 4


@pytest.mark.parametrize(
    "extra",
    [
        "Return-Path: <a;b@example.org>\r\n",
        'Return-Path: <"a, b"@example.org>\r\n',
    ],
)
def test_no_acknowledgement_to_a_sender_that_is_not_one_plain_address(extra: str) -> None:
    parsed = mail(extra)
    assert ack_recipient(parsed)
    assert refusal(parsed) == "sender is not one plain address"


def test_no_acknowledgement_to_a_from_that_reads_as_a_list() -> None:
    parsed = mail(sender="pat@example.org, other@example.org")
    if ack_recipient(parsed):
        assert refusal(parsed) == "sender is not one plain address"
