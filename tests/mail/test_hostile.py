"""A hostile corpus through a whole routing run: every message stored, each routed or
quarantined with a reason, no crash and no traceback in any log."""

from __future__ import annotations

import logging
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from office.models import MailStatus
from tests.mail.conftest import Office
from tests.mail.test_parse import _nested, hostile_messages


def _big_attachment() -> bytes:
    message = EmailMessage()
    message["From"] = "fax@fax.example"
    message["Message-ID"] = "<big@fax.example>"
    message.set_content("fax")
    message.add_attachment(
        b"%PDF" * (5 * 1024 * 1024), maintype="application", subtype="pdf", filename="big.pdf"
    )
    return message.as_bytes()


HOSTILE = [
    (b'From: a@b.example\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n--y\r\nno end'),
    b"From: a@b.example\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\n\xff\xfe\xfd",
    b"From: =?utf-8?b?!!!?= <a@b.example>\r\nSubject: =?utf-8?q?a\r\n b?=\r\n\r\nx",
    b"From: a@b.example\r\nSubject: nul\x00byte\r\n\r\nbody\x00with\x00nuls",
    b"no headers at all, just words",
    b"",
    b"\x00\x00\x00\x00",
    b"Subject: no sender, no id, no date\r\n\r\nhello",
    _nested(50),
    _big_attachment(),
]


def test_hostile_corpus_is_stored_and_each_routed_or_quarantined(
    practice: Office, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    practice.deliver([(f"{1000 + i}.hostile", raw) for i, raw in enumerate(HOSTILE)])
    practice.run()
    rows = practice.mail()
    assert len(rows) == len(HOSTILE)
    assert sorted(len(row.raw) for row in rows) == sorted(len(raw) for raw in HOSTILE)
    for row in rows:
        assert row.status in (MailStatus.ROUTED, MailStatus.QUARANTINED)
        if row.status is MailStatus.QUARANTINED:
            assert row.reason
        else:
            assert row.rule
    assert practice.left_in_inbox() == []
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert noisy == []


@settings(max_examples=25)
@given(st.lists(hostile_messages(), min_size=1, max_size=5))
def test_generated_hostile_mail_routes_through_the_domain(raws: list[bytes]) -> None:
    from office.mail import classify, parse_mail, parse_rules

    rules = parse_rules("rules: [{name: everything, when: always, do: [{route: front_desk}]}]")
    for raw in raws:
        parsed = parse_mail(raw)
        if hasattr(parsed, "reason"):
            assert parsed.reason  # type: ignore[union-attr]
        else:
            assert classify(parsed, rules).queue == "front_desk"  # type: ignore[arg-type]
