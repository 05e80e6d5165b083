"""Building the mail routing sends: acknowledgements (RFC 3834) and forwards to staff.

An acknowledgement answers the envelope sender from the mailbox's address, with
the null envelope sender, ``Auto-Submitted: auto-replied``, ``In-Reply-To`` and
``References``; its text comes from `templates/mail/ack/` and names only the
practice: never the subject, the sender's name or anything the message said.
A forward goes to a staff address with the original attached as received.
Both are built from the stored message when sent, so the outbox holds ids only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import TYPE_CHECKING

from sqlalchemy import select

from office.mail.parse import Parsed, parse_mail
from office.mail.route import ACK_KIND, FORWARD_KIND
from office.mailing.send import ComposeError, Composer, Outgoing
from office.messages import POLICY, address_domain, message_id_for
from office.models import MailMessage, OutboxItem, Practice
from office.render import render

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.orm import Session

__all__ = ["MailIdentity", "compose_ack", "compose_forward", "mail_composers"]


@dataclass(frozen=True, slots=True)
class MailIdentity:
    """Who the practice's automatic mail is from: each mailbox's address, and the clock."""

    mailbox_addresses: Mapping[str, str]
    now: datetime


def mail_composers(identity: MailIdentity) -> dict[str, Composer]:
    """The builders `office.mailing.send_outbox` needs for mail routing's outbox kinds."""
    return {
        ACK_KIND: lambda session, item: compose_ack(session, item, identity),
        FORWARD_KIND: lambda session, item: compose_forward(session, item, identity),
    }


def compose_ack(session: Session, item: OutboxItem, identity: MailIdentity) -> Outgoing:
    """The acknowledgement for one stored message (see module doc)."""
    mail, parsed, sender = _source(session, item, identity)
    name, phone = _practice(session)
    template = str(item.detail.get("template", "general"))
    context = {"practice_name": name, "practice_phone": phone, "mailbox_address": sender}
    message = _base(item, sender, name, identity.now)
    message["Subject"] = render(f"mail/ack/{template}.subject.txt.j2", **context).strip()
    message["Auto-Submitted"] = "auto-replied"
    original = mail.message_id or (parsed.message_id if parsed else None)
    if original:
        message["In-Reply-To"] = original
        earlier = (parsed.header("references") or "") if parsed else ""
        message["References"] = f"{earlier} {original}".strip()
    message.set_content(
        render(f"mail/ack/{template}.txt.j2", **context) + "\n", cte="quoted-printable"
    )
    return Outgoing(message, envelope_sender="")


def compose_forward(session: Session, item: OutboxItem, identity: MailIdentity) -> Outgoing:
    """A copy of one stored message for a staff address, the original attached unchanged."""
    mail, _parsed, sender = _source(session, item, identity)
    name, _phone = _practice(session)
    context = {
        "mail_id": mail.id,
        "mailbox": mail.mailbox,
        "queue": mail.queue or "",
        "category": mail.category or "",
        "rule": mail.rule or "",
    }
    message = _base(item, sender, name, identity.now)
    message["Subject"] = render("mail/forward.subject.txt.j2", **context).strip()
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(render("mail/forward.txt.j2", **context) + "\n", cte="quoted-printable")
    # As received, byte for byte: re-serialising hostile mail could fail or alter it.
    message.add_attachment(
        mail.raw,
        maintype="application",
        subtype="octet-stream",
        filename=f"original-{mail.id}.eml",
    )
    return Outgoing(message, envelope_sender=None)


def _source(
    session: Session, item: OutboxItem, identity: MailIdentity
) -> tuple[MailMessage, Parsed | None, str]:
    mail_id = item.detail.get("mail_id")
    mail = session.get(MailMessage, mail_id) if isinstance(mail_id, int) else None
    if mail is None:
        raise ComposeError("the stored message is gone")
    sender = identity.mailbox_addresses.get(mail.mailbox)
    if not sender:
        raise ComposeError("the mailbox is no longer configured")
    parsed = parse_mail(mail.raw)
    return mail, parsed if isinstance(parsed, Parsed) else None, sender


def _practice(session: Session) -> tuple[str, str | None]:
    row = session.execute(select(Practice.name, Practice.phone).limit(1)).first()
    if row is None:
        return "Our practice", None
    return row.name, row.phone


def _base(item: OutboxItem, sender: str, practice: str, now: datetime) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    message["Message-ID"] = message_id_for(item.idempotency_key, address_domain(sender))
    message["Date"] = format_datetime(now)
    message["From"] = formataddr((practice, sender))
    message["To"] = item.recipient
    return message
