"""Synthetic inbound mail for the demo, the tests and the benchmark: every category, made up.

`synthetic_mail` writes realistic messages (referrals with PDFs, lab results from
known labs, records requests, billing and appointment questions, refill requests,
marketing, fax-gateway PDFs, staff forwards with the real sender inside, bounces
of messages the practice sent, out-of-office replies, mail no rule knows).
`fill_demo_mailbox` delivers them into `OFFICE_HOME/mail/<mailbox>` for `office demo`,
naming the demo's own patients and bouncing some of the reminders it sent.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING

from integrations.mailbox import deliver

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from office.settings import Settings

__all__ = ["CATEGORIES", "Person", "SentMail", "fill_demo_mailbox", "synthetic_mail"]

CATEGORIES = (
    "referral",
    "lab_result",
    "records_request",
    "billing",
    "appointment_request",
    "refill",
    "spam",
    "fax",
    "forward",
    "bounce",
    "auto_reply",
    "triage",
)
_FIRST = ("Maria", "James", "Aisha", "Wei", "Carlos", "Emily", "Noah", "Fatima", "Liam", "Grace")
_LAST = ("Garcia", "Smith", "Khan", "Chen", "Lopez", "Brown", "Nguyen", "Patel", "Okafor", "Miller")
_PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass(frozen=True, slots=True)
class Person:
    """A patient the messages may name (the demo's own, or made up)."""

    mrn: str
    first: str
    last: str
    birth: date
    email: str


@dataclass(frozen=True, slots=True)
class SentMail:
    """A message the practice sent, which a synthetic bounce reports as undeliverable."""

    message_id: str
    recipient: str


def synthetic_mail(
    n: int,
    *,
    seed: int = 7,
    practice_domain: str = "riverbend.test",
    mailbox_address: str = "frontdesk@riverbend.test",
    people: Sequence[Person] = (),
    sent: Sequence[SentMail] = (),
    now: datetime | None = None,
) -> list[tuple[str, bytes]]:
    """`n` messages as (Maildir key, bytes), cycling through every category."""
    rng = random.Random(seed)
    moment = now or datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    people = list(people) or [_person(rng, i) for i in range(50)]
    out: list[tuple[str, bytes]] = []
    for index in range(n):
        category = CATEGORIES[index % len(CATEGORIES)]
        person = people[index % len(people)]
        when = moment - timedelta(minutes=n - index)
        writer = _Writer(rng, index, when, practice_domain, mailbox_address, person)
        bounce = sent[(index // len(CATEGORIES)) % len(sent)] if sent else None
        message = writer.build(category, bounce)
        key = f"{int(when.timestamp())}.M{index:06d}P{seed}.demo"
        out.append((key, message if isinstance(message, bytes) else message.as_bytes()))
    return out


def fill_demo_mailbox(
    settings: Settings, session: Session, *, count: int = 48, seed: int = 7
) -> dict[str, int]:
    """Deliver `count` synthetic messages into the first mailbox's Maildir; counts per category.

    Uses the demo practice's patients (MRN, name, date of birth) and bounces
    reminders it already sent. Call it after seeding and after the reminders ran:
    `fill_demo_mailbox(settings, session)` inside the demo's transaction.
    """
    from sqlalchemy import select

    from office.models import OutboxItem, OutboxStatus, Patient

    box = settings.inbound_mailboxes[0]
    patients = session.scalars(select(Patient).order_by(Patient.id).limit(40)).all()
    people = [
        Person(p.mrn, p.first_name, p.last_name, p.date_of_birth, p.email or f"p{p.id}@example.org")
        for p in patients
    ]
    sent_rows = session.execute(
        select(OutboxItem.message_id, OutboxItem.recipient)
        .where(OutboxItem.status == OutboxStatus.SENT, OutboxItem.message_id.is_not(None))
        .order_by(OutboxItem.id)
        .limit(5)
    ).all()
    sent = [SentMail(str(row.message_id), row.recipient) for row in sent_rows]
    domain = box.address.rpartition("@")[2]
    path = settings.mailbox_path(box)
    messages = synthetic_mail(
        count,
        seed=seed,
        practice_domain=domain,
        mailbox_address=box.address,
        people=people,
        sent=sent,
    )
    for key, raw in messages:
        deliver(path, key, raw)
    return dict(Counter(CATEGORIES[i % len(CATEGORIES)] for i in range(count)))


def _person(rng: random.Random, index: int) -> Person:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    birth = date(1940 + rng.randrange(70), 1 + rng.randrange(12), 1 + rng.randrange(28))
    return Person(f"MRN{200000 + index}", first, last, birth, f"{first}.{last}{index}@example.org")


class _Writer:
    def __init__(
        self,
        rng: random.Random,
        index: int,
        when: datetime,
        domain: str,
        mailbox: str,
        person: Person,
    ) -> None:
        self.rng, self.index, self.when = rng, index, when
        self.domain, self.mailbox, self.person = domain, mailbox, person

    def base(self, sender: str, subject: str, to: str | None = None) -> EmailMessage:
        message = EmailMessage()
        message["From"] = sender
        message["To"] = to or self.mailbox
        message["Subject"] = subject
        message["Date"] = format_datetime(self.when)
        message["Message-ID"] = make_msgid(f"m{self.index}", sender.rpartition("@")[2].strip(">"))
        return message

    def build(self, category: str, bounce: SentMail | None) -> EmailMessage | bytes:
        p = self.person
        dob = p.birth.strftime("%m/%d/%Y")
        local, _, _ = self.mailbox.partition("@")
        if category == "referral":
            m = self.base(
                "Dr. Alan Reyes <referrals@lakeside-cardiology.example>",
                f"Referral: {p.first} {p.last}",
                to=f"{local}+referrals@{self.domain}",
            )
            m.set_content(
                f"Please see our patient {p.first} {p.last}, DOB {dob}, for evaluation of "
                "chest pain. Notes attached.\n\nLakeside Cardiology\n"
            )
            m.add_attachment(_PDF, maintype="application", subtype="pdf", filename="referral.pdf")
        elif category == "lab_result":
            m = self.base("Quest Results <results@questlabs.example>", "Your lab report is ready")
            m.set_content(f"Lab report for MRN {p.mrn}. Collected {self.when:%Y-%m-%d}.\n")
            m.add_attachment(_PDF, maintype="application", subtype="pdf", filename="labs.pdf")
        elif category == "records_request":
            m = self.base(f"{p.first} {p.last} <{p.email}>", "Medical records request")
            m.set_content(
                f"Hello, I am {p.first} {p.last} (born {dob}). I would like copies of my "
                "medical records sent to my new doctor.\nThank you\n"
            )
        elif category == "billing":
            m = self.base(f"{p.first} {p.last} <{p.email}>", "Question about my statement")
            m.set_content("I was charged twice for my last visit. Can someone check my balance?\n")
        elif category == "appointment_request":
            m = self.base(f"{p.first} {p.last} <{p.email}>", "Appointment next week?")
            m.set_content(
                "<html><body><p>Hi,</p><p>Could I <b>book an appointment</b> next week, "
                "any morning?</p><p>Thanks</p></body></html>",
                subtype="html",
            )
        elif category == "refill":
            m = self.base(f"{p.first} {p.last} <{p.email}>", "Refill please")
            m.set_content(f"Please refill my prescription for lisinopril. DOB {dob}.\n")
        elif category == "spam":
            m = self.base("Growth Team <news@medmarketing.example>", "Limited time offer: 40% off")
            m["List-Unsubscribe"] = "<mailto:unsubscribe@medmarketing.example>"
            m["Precedence"] = "bulk"
            m.set_content("Grow your practice with our exclusive deal on SEO services!\n")
        elif category == "fax":
            m = self.base("Fax Service <fax-3125550199@fax.riverbend.test>", "Fax from 3125550199")
            m.set_content("You have received a 2 page fax.\n")
            m.add_attachment(_PDF, maintype="application", subtype="pdf", filename="fax.pdf")
        elif category == "forward":
            inner = self.base(
                "LabCorp <noreply@labcorp.example>", "Laboratory report", to="staff@example.org"
            )
            inner.set_content(f"Laboratory report for MRN {p.mrn}.\n")
            m = self.base(f"Front Desk <staff@{self.domain}>", "Fwd: Laboratory report")
            m.set_content("Forwarding this from my personal inbox.\n")
            m.add_attachment(inner)
        elif category == "bounce":
            return self.bounce(bounce)
        elif category == "auto_reply":
            m = self.base(f"{p.first} {p.last} <{p.email}>", "Out of office")
            m["Auto-Submitted"] = "auto-replied"
            m.set_content("I am out of the office until Monday.\n")
        else:
            m = self.base(f"{p.first} {p.last} <{p.email}>", "A question")
            m.set_content("Is there parking near your office on Main Street?\n")
        return m

    def bounce(self, sent: SentMail | None) -> bytes:
        """A DSN as an MTA writes it (the email package cannot build message/delivery-status)."""
        recipient = sent.recipient if sent else self.person.email
        original = sent.message_id if sent else f"<unknown{self.index}@{self.domain}>"
        boundary = f"dsn-{self.index}-{self.rng.randrange(10**9)}"
        text = (
            f"From: Mail Delivery System <MAILER-DAEMON@mx.{self.domain}>\r\n"
            f"To: reminders@{self.domain}\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\n"
            f"Date: {format_datetime(self.when)}\r\n"
            f"Message-ID: <dsn{self.index}.{boundary}@mx.{self.domain}>\r\n"
            "Auto-Submitted: auto-replied\r\n"
            "MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"'
            "\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
            "Your message could not be delivered to one or more recipients.\r\n\r\n"
            f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
            f"Reporting-MTA: dns; mx.{self.domain}\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            "Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n"
            f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            f"Message-ID: {original}\r\nTo: {recipient}\r\nSubject: Appointment reminder\r\n"
            f"\r\n--{boundary}--\r\n"
        )
        return text.encode("ascii")


def demo_mail_path(settings: Settings) -> Path:
    """Where `fill_demo_mailbox` delivers: the first mailbox's Maildir."""
    return settings.mailbox_path(settings.inbound_mailboxes[0])
