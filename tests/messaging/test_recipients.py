"""One recipient, plainly: the rule in office.contacts and every door that reads it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from integrations.mail.file import FileMailer
from integrations.sms.file import FileSms
from office.contacts import (
    CONTROL_CHARACTER,
    LIST_SEPARATOR,
    NOT_E164,
    NOT_ONE_ADDRESS,
    RecipientError,
    email_problem,
    phone_problem,
)
from office.contracts.mail import MailRecipientRejected, Wire
from office.contracts.sms import SmsRejected
from office.db import transaction
from office.mailing import send_outbox
from office.mailing.send import Outgoing
from office.models import Channel, OutboxItem, OutboxStatus, Patient, WorkItem
from office.records.updates import PatientUpdate
from office.records.validate import validate

HOSTILE_EMAILS = {
    "x@y.test\r\nBcc: evil@z.test": CONTROL_CHARACTER,
    "x@y.test\nBcc: evil@z.test": CONTROL_CHARACTER,
    "x@y.test\x00": CONTROL_CHARACTER,
    "x\u2028@y.test": CONTROL_CHARACTER,
    "x\u200b@y.test": CONTROL_CHARACTER,
    "a;b@x.test": LIST_SEPARATOR,
    "a@x.test, b@y.test": LIST_SEPARATOR,
    "a@x.test,b@y.test": LIST_SEPARATOR,
    "a@x.test b@y.test": LIST_SEPARATOR,
    "Jane <j@x.test>": LIST_SEPARATOR,
    "<j@x.test>": NOT_ONE_ADDRESS,
    '"a b"@x.test': LIST_SEPARATOR,
    '"a"@x.test': NOT_ONE_ADDRESS,
    "a@b@x.test": NOT_ONE_ADDRESS,
    "j@[10.0.0.1]": NOT_ONE_ADDRESS,
    "j(comment)@x.test": NOT_ONE_ADDRESS,
    "jé@x.test": NOT_ONE_ADDRESS,
    "j@x..test": NOT_ONE_ADDRESS,
    ".j@x.test": NOT_ONE_ADDRESS,
    "j@": NOT_ONE_ADDRESS,
    "@x.test": NOT_ONE_ADDRESS,
    "": NOT_ONE_ADDRESS,
    "a" * 65 + "@x.test": NOT_ONE_ADDRESS,
}


@pytest.mark.parametrize(("address", "reason"), sorted(HOSTILE_EMAILS.items()))
def test_an_email_is_one_plain_address_or_a_reason(address: str, reason: str) -> None:
    assert email_problem(address) == reason


@pytest.mark.parametrize(
    "address", ["ava@example.test", "a.b+tag@mail.clinic.example", "o'neil@x.test", "r@localhost"]
)
def test_plain_addresses_pass(address: str) -> None:
    assert email_problem(address) is None


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("+13125550123\n", CONTROL_CHARACTER),
        ("+13125550123;+13125550199", LIST_SEPARATOR),
        ("+13125550123,+13125550199", LIST_SEPARATOR),
        ("+1 312 555 0123", LIST_SEPARATOR),
        ("3125550123", NOT_E164),
        ("+0123456789", NOT_E164),
        ("+1312555012345678", NOT_E164),
        ("+1312555O123", NOT_E164),
    ],
)
def test_a_phone_is_one_e164_number_or_a_reason(number: str, reason: str) -> None:
    assert phone_problem(number) == reason
    assert phone_problem("+13125550123") is None


def _patient(**contact: str) -> Patient:
    return Patient(
        mrn="M1", first_name="Ava", last_name="Tester", date_of_birth=date(1980, 1, 1), sex="F",
        **contact,
    )  # fmt: skip


@pytest.mark.parametrize(
    "contact",
    [
        {"email": "x@y.test\r\nBcc: evil@z.test"},
        {"email": "a;b@x.test"},
        {"email": "a@x.test, b@y.test"},
        {"phone": "+13125550123,+13125550199"},
        {"phone": "(312) 555-0123"},
        {"confidential_address": "a@x.test, b@y.test"},
    ],
)
def test_the_patients_table_refuses_more_than_one_recipient_without_echoing_it(
    contact: dict[str, str],
) -> None:
    with pytest.raises(RecipientError) as caught:
        _patient(**contact)
    value = next(iter(contact.values()))
    assert value not in str(caught.value)
    assert str(caught.value).startswith("bad_recipient:")


def test_the_patients_table_takes_one_plain_address_and_number(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        patient = _patient(email="ava@example.test", phone="+13125550123")
        patient.confidential_address = "+13125550199"
        session.add(patient)
    with factory() as session:
        stored = session.query(Patient).one()
        assert (stored.email, stored.phone) == ("ava@example.test", "+13125550123")


@pytest.mark.parametrize(
    "fields",
    [
        {"email": "a@x.example, b@y.example"},
        {"email": "a;b@x.example"},
        {"phone": "312-555-0123; 312-555-0199"},
        {"phone": "312-555-0123\x00"},
        {"phone": "3125550123;3125550199"},
    ],
)
def test_records_in_refuse_lists_and_line_breaks(fields: dict[str, str]) -> None:
    update = PatientUpdate(mrn="M1", **fields)  # type: ignore[arg-type]
    problems = validate(update, where="row 1")
    assert set(fields) <= {p.field for p in problems}
    assert all(next(iter(fields.values())) not in str(p) for p in problems)


@pytest.mark.parametrize("to", ["a;b@x.test", "<a b@x.test>", "a@x.test, b"])
def test_mailers_refuse_what_reads_as_several_recipients(tmp_path: Path, to: str) -> None:
    message = EmailMessage()
    message["Message-ID"] = "<1@x.test>"
    message["From"] = "desk@clinic.test"
    message["To"] = to
    with pytest.raises(MailRecipientRejected, match="is not one plain address") as caught:
        asyncio.run(FileMailer(tmp_path).send(message))
    assert "x.test" not in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_sms_senders_refuse_anything_but_one_number(tmp_path: Path) -> None:
    sender = FileSms(tmp_path)
    with pytest.raises(SmsRejected) as caught:
        asyncio.run(sender.send(to="+13125550123,+13125550199", body="hi", idempotency_key="k"))
    assert "+1312" not in str(caught.value)
    assert not list(tmp_path.iterdir())


# --- the general outbox sender --------------------------------------------------------------


class _Mailer:
    """Takes every message; remembers the envelopes."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, ...]] = []

    async def __aenter__(self) -> _Mailer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, message: Wire | EmailMessage, *, ready: object = None) -> str:
        assert isinstance(message, Wire)
        self.sent.append(message.envelope.recipients)
        return message.envelope.message_id


def _compose(session: Session, item: OutboxItem) -> Outgoing:
    if item.detail.get("explode"):
        raise KeyError(f"no template for {item.recipient}")
    message = EmailMessage()
    message["Message-ID"] = f"<{item.id}@clinic.test>"
    message["From"] = "desk@clinic.test"
    message["To"] = item.recipient
    message.set_content("Thank you for your message.")
    return Outgoing(message)


def test_the_outbox_sender_skips_bad_rows_with_a_reason_and_sends_the_rest(
    factory: sessionmaker[Session],
) -> None:
    now = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    rows = {
        "good": ("ok@example.test", {}),
        "crlf": ("x@y.test\r\nBcc: evil@z.test", {}),
        "list": ("a@x.test, b@y.test", {}),
        "semicolon": ("a;b@x.test", {}),
        "explode": ("fine@example.test", {"explode": True}),
        "after": ("later@example.test", {}),
    }
    with transaction(factory) as session:
        for key, (recipient, detail) in rows.items():
            session.add(
                OutboxItem(
                    idempotency_key=f"ack:{key}",
                    channel=Channel.EMAIL,
                    kind="ack",
                    recipient=recipient,
                    detail=detail,
                    due_at=now,
                )
            )
    mailer = _Mailer()

    tally = asyncio.run(send_outbox(factory, mailer, {"ack": _compose}, now=now, resend_safe=False))

    assert mailer.sent == [("ok@example.test",), ("later@example.test",)]
    assert tally.total("sent") == 2
    assert tally.total("skipped") == 4
    with factory() as session:
        found = {r.idempotency_key: r for r in session.scalars(select(OutboxItem))}
        items = list(session.scalars(select(WorkItem)))
    assert found["ack:crlf"].error == CONTROL_CHARACTER
    assert found["ack:list"].error == found["ack:semicolon"].error == LIST_SEPARATOR
    assert found["ack:explode"].error == "cannot be built: KeyError"
    assert {r.status for k, r in found.items() if k not in ("ack:good", "ack:after")} == {
        OutboxStatus.SKIPPED
    }
    assert sorted(i.kind for i in items) == ["message_not_built", *["recipient_invalid"] * 3]
    assert not any("@" in i.summary + repr(i.detail) for i in items)
