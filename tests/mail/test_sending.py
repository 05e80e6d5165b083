"""The general sender (office.mailing.send_outbox) at a real SMTP server on loopback:
acknowledgements leave with the null envelope sender, each message goes once, a send
without a verdict becomes "unknown" for a person, a refusal "failed", a deferral waits."""

from __future__ import annotations

import asyncio
import email
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from email import policy

from aiosmtpd.smtp import SMTP, Envelope, Session

from app.demo_mail import synthetic_mail
from integrations.mail import SmtpMailer
from office.db import transaction
from office.ledgers import claim_outbox
from office.mail import MailIdentity, mail_composers
from office.mailing import DEFAULT_LEASE, send_outbox
from office.models import OutboxStatus, WorkStatus
from tests.mail.conftest import ADDRESS, MAILBOX, NOW, Office


@dataclass
class Server:
    """A recording SMTP server: what it took, and how it answers after the body."""

    answer: Callable[[int], str | None] = lambda n: None
    taken: list[tuple[str, bytes]] = field(default_factory=list)
    seen: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.seen += 1
        reply = self.answer(self.seen)
        if reply == "drop":
            assert server.transport is not None
            server.transport.close()
            return "421 closing"
        if reply:
            return reply
        self.taken.append((envelope.mail_from or "", envelope.original_content or b""))
        return "250 OK"


def routed(practice: Office, n: int = 12) -> None:
    practice.deliver(synthetic_mail(n, mailbox_address=ADDRESS, now=NOW))
    practice.run()  # the file mailer sends nothing real; reset what it did below
    with transaction(practice.factory) as session:
        for item in practice.outbox():
            session.get_one(type(item), item.id).status = OutboxStatus.PENDING


def send(practice: Office, server: Server, *, now=NOW, resend_safe: bool = False):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        listening = await loop.create_server(
            lambda: SMTP(server, hostname="sink.localhost"), host="127.0.0.1", port=0
        )
        port = listening.sockets[0].getsockname()[1]
        try:
            identity = MailIdentity({MAILBOX: ADDRESS}, now)
            return await send_outbox(
                practice.factory,
                SmtpMailer("127.0.0.1", port, timeout=10),
                mail_composers(identity),
                now=now,
                resend_safe=resend_safe,
            )
        finally:
            listening.close()
            await listening.wait_closed()

    return asyncio.run(main())


def test_acknowledgements_use_the_null_sender_and_rfc_3834_headers(practice: Office) -> None:
    routed(practice)
    server = Server()
    tally = send(practice, server)
    acks = [i for i in practice.outbox() if i.kind == "mail_ack"]
    assert tally.total("sent") == len(acks) == len(server.taken)
    for mail_from, content in server.taken:
        assert mail_from == "<>" or mail_from == ""
        message = email.message_from_bytes(content, policy=policy.default)
        assert message["Auto-Submitted"] == "auto-replied"
        assert message["From"].addresses[0].addr_spec == ADDRESS
    assert {i.status for i in practice.outbox()} == {OutboxStatus.SENT}
    assert send(practice, Server()).total("sent") == 0  # nothing goes twice


def test_a_send_without_verdict_is_unknown_and_never_resent(practice: Office) -> None:
    routed(practice)
    server = Server(answer=lambda n: "drop" if n == 2 else None)
    tally = send(practice, server)
    assert tally.total("unknown") == 1
    unknown = [i for i in practice.outbox() if i.status is OutboxStatus.UNKNOWN]
    assert len(unknown) == 1
    items = [w for w in practice.work() if w.kind == "mail_send_unknown"]
    assert [(w.entity_id, w.status) for w in items] == [(unknown[0].id, WorkStatus.OPEN)]
    again = Server()
    send(practice, again)
    assert unknown[0].message_id not in {
        email.message_from_bytes(c, policy=policy.default)["Message-ID"] for _, c in again.taken
    }


def test_refusals_fail_and_deferrals_wait_for_the_next_run(practice: Office) -> None:
    routed(practice)
    refused = send(
        practice, Server(answer=lambda n: "554 5.7.1 no" if n == 1 else "451 4.3.0 later")
    )
    assert refused.total("failed") == 1
    assert refused.total("deferred") == 1
    pending = [i for i in practice.outbox() if i.status is OutboxStatus.PENDING]
    assert pending
    later = send(practice, Server())
    assert later.total("sent") == len(pending)
    assert [w.kind for w in practice.work() if w.kind.startswith("mail_send")] == [
        "mail_send_failed"
    ]


def test_a_claim_left_by_a_killed_run_is_settled_after_its_lease(practice: Office) -> None:
    routed(practice)
    [first, *_] = [i for i in practice.outbox() if i.kind == "mail_ack"]
    with transaction(practice.factory) as session:
        assert claim_outbox(session, first.id, now=NOW, recipient=first.recipient, message_id=None)
    early = send(practice, Server(), now=NOW + timedelta(minutes=1))
    assert early.total("unknown") == 0
    late = send(practice, Server(), now=NOW + DEFAULT_LEASE + timedelta(minutes=1))
    assert late.total("unknown") == 1
    routed_again = Server()
    settled = send(
        practice, routed_again, now=NOW + DEFAULT_LEASE + timedelta(minutes=2), resend_safe=True
    )
    assert settled.total("requeued") == 0  # already settled as unknown: never resent
