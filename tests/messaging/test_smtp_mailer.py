"""SmtpMailer against a real aiosmtpd server on loopback: reuse, reconnects, each error phase."""

from __future__ import annotations

import socket
import traceback
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from integrations.mail import SmtpMailer
from office.contracts.mail import (
    MailAmbiguousError,
    MailPermanentError,
    MailRecipientRejected,
    MailRetryableError,
)
from office.messages import build_email, message_id_for

from .conftest import Certificate, Recorder, ServeFn

pytestmark = pytest.mark.anyio

PATIENT = "maria.lopez@patients.example"


def make_message(key: str, *, to: str = PATIENT, text: str = "See you soon.") -> EmailMessage:
    return build_email(
        message_id=message_id_for(key, "clinic.example"),
        sender="Riverside Clinic <reminders@clinic.example>",
        to=to,
        subject="Your appointment",
        text=text,
        html="<p>See you soon.</p>",
        ics=None,
        method=None,
    )


def closed_port() -> int:
    """A loopback port nobody listens on: bind, read the number, release it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_batch_reuses_one_connection_and_returns_message_ids(serve: ServeFn) -> None:
    handler = Recorder()
    async with serve(handler) as server:
        mailer = SmtpMailer("127.0.0.1", server.port, sender_domain="clinic.example")
        messages = [make_message(f"outbox-{n}") for n in range(3)]
        async with mailer:
            ids = [await mailer.send(message) for message in messages]

    assert server.connections == 1
    assert ids == [str(message["Message-ID"]) for message in messages]
    received_ids = [
        BytesParser(policy=policy.default).parsebytes(item.content)["Message-ID"]
        for item in handler.messages
    ]
    assert received_ids == ids
    assert all(item.rcpt_tos == [PATIENT] for item in handler.messages)
    assert all(item.mail_from == "reminders@clinic.example" for item in handler.messages)


async def test_ready_is_awaited_before_the_content_and_a_no_sends_nothing(
    serve: ServeFn,
) -> None:
    """A send loop's claim commits while the server takes the envelope: `ready` is the
    go-ahead, awaited before any of the message goes out; False resets the transaction
    (the connection carries the next message), an error drops the connection."""
    handler = Recorder()
    bodies_when_asked: list[int] = []

    async def answer(value: bool) -> bool:
        bodies_when_asked.append(handler.bodies_seen)
        return value

    async def broken() -> bool:
        raise RuntimeError("the claim was not written")

    async with serve(handler) as server:
        mailer = SmtpMailer("127.0.0.1", server.port)
        async with mailer:
            assert await mailer.send(make_message("lost"), ready=answer(False)) is None
            kept = await mailer.send(make_message("won"), ready=answer(True))
            with pytest.raises(RuntimeError):
                await mailer.send(make_message("failed"), ready=broken())
            again = await mailer.send(make_message("after"), ready=answer(True))

    assert bodies_when_asked == [0, 0, 1]  # nothing of a message sent before its go-ahead
    delivered = [
        BytesParser(policy=policy.default).parsebytes(item.content)["Message-ID"]
        for item in handler.messages
    ]
    assert delivered == [kept, again]
    assert server.connections == 2  # reset after the False, dropped after the error


async def test_each_async_with_block_is_its_own_connection(serve: ServeFn) -> None:
    async with serve(Recorder()) as server:
        mailer = SmtpMailer("127.0.0.1", server.port)
        for n in range(2):
            async with mailer:
                await mailer.send(make_message(f"block-{n}"))
    assert server.connections == 2


async def test_send_outside_async_with_is_refused(serve: ServeFn) -> None:
    async with serve(Recorder()) as server:
        mailer = SmtpMailer("127.0.0.1", server.port)
        with pytest.raises(RuntimeError):
            await mailer.send(make_message("outside"))
    assert server.connections == 0


async def test_reconnects_when_server_dropped_connection_between_messages(serve: ServeFn) -> None:
    handler = Recorder(drop_after=2)
    async with serve(handler) as server:
        mailer = SmtpMailer("127.0.0.1", server.port)
        async with mailer:
            for n in range(3):
                await mailer.send(make_message(f"drop-{n}"))

    assert server.connections == 2
    assert len(handler.messages) == 3
    assert len({item.connection for item in handler.messages}) == 2


async def test_reconnects_after_idle_close_by_server(serve: ServeFn) -> None:
    handler = Recorder()
    async with serve(handler) as server:
        mailer = SmtpMailer("127.0.0.1", server.port)
        async with mailer:
            await mailer.send(make_message("idle-1"))
            server.drop_all()
            await mailer.send(make_message("idle-2"))

    assert server.connections == 2
    assert len(handler.messages) == 2


async def test_reconnects_after_421_at_mail_on_reused_connection(serve: ServeFn) -> None:
    handler = Recorder(closing_after=1)
    async with serve(handler) as server:
        mailer = SmtpMailer("127.0.0.1", server.port)
        async with mailer:
            await mailer.send(make_message("closing-1"))
            await mailer.send(make_message("closing-2"))

    assert server.connections == 2
    assert len(handler.messages) == 2


async def test_421_at_mail_on_fresh_connection_is_retryable(serve: ServeFn) -> None:
    handler = Recorder(closing_after=0)
    async with serve(handler) as server:
        mailer = SmtpMailer("127.0.0.1", server.port)
        async with mailer:
            with pytest.raises(MailRetryableError) as caught:
                await mailer.send(make_message("closing-fresh"))
    assert caught.value.smtp_code == 421
    assert server.connections == 1
    assert handler.messages == []


async def test_4xx_on_rcpt_is_retryable_and_names_no_address(serve: ServeFn) -> None:
    handler = Recorder(rcpt_reply=f"450 4.2.1 <{PATIENT}> mailbox busy")
    async with serve(handler) as server:
        mailer = SmtpMailer("127.0.0.1", server.port)
        async with mailer:
            with pytest.raises(MailRetryableError) as caught:
                await mailer.send(make_message("busy"))
    assert caught.value.smtp_code == 450
    assert PATIENT not in "".join(traceback.format_exception(caught.value))
    assert handler.bodies_seen == 0


async def test_5xx_on_rcpt_rejects_recipient_by_index_and_keeps_connection(
    serve: ServeFn,
) -> None:
    handler = Recorder(rcpt_reply=f"550 5.1.1 <{PATIENT}> no such user")
    async with serve(handler) as server:
        mailer = SmtpMailer("127.0.0.1", server.port)
        async with mailer:
            with pytest.raises(MailRecipientRejected) as caught:
                await mailer.send(make_message("unknown-user"))
            handler.rcpt_reply = None
            await mailer.send(make_message("next-patient", to="ok@patients.example"))

    assert caught.value.recipient_index == 0
    assert caught.value.smtp_code == 550
    assert isinstance(caught.value, MailPermanentError)
    # Prefect logs the whole chain, so the server's echo of the address must be gone too.
    assert PATIENT not in "".join(traceback.format_exception(caught.value))
    assert caught.value.__cause__ is not None
    assert server.connections == 1
    assert [item.rcpt_tos for item in handler.messages] == [["ok@patients.example"]]


async def test_5xx_on_mail_from_is_permanent_not_a_recipient_rejection(serve: ServeFn) -> None:
    handler = Recorder(mail_reply="553 5.7.1 sender not allowed")
    async with serve(handler) as server:
        mailer = SmtpMailer("127.0.0.1", server.port)
        async with mailer:
            with pytest.raises(MailPermanentError) as caught:
                await mailer.send(make_message("bad-sender"))
    assert not isinstance(caught.value, MailRecipientRejected)
    assert caught.value.smtp_code == 553


async def test_no_reply_after_body_is_ambiguous(serve: ServeFn) -> None:
    handler = Recorder(hang_after_body=True)
    async with serve(handler) as server:
        mailer = SmtpMailer("127.0.0.1", server.port, timeout=0.3)
        async with mailer:
            with pytest.raises(MailAmbiguousError):
                await mailer.send(make_message("hang"))
    assert handler.bodies_seen == 1


async def test_after_ambiguous_failure_next_send_uses_a_new_connection(serve: ServeFn) -> None:
    handler = Recorder(hang_after_body=True)
    async with serve(handler) as server:
        mailer = SmtpMailer("127.0.0.1", server.port, timeout=0.3)
        async with mailer:
            with pytest.raises(MailAmbiguousError):
                await mailer.send(make_message("hang-1"))
            handler.hang_after_body = False
            await mailer.send(make_message("after-hang"))
    assert server.connections == 2
    assert len(handler.messages) == 1


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("451 4.3.0 try later", MailRetryableError),
        ("554 5.6.0 content refused", MailPermanentError),
    ],
)
async def test_refusal_after_body_is_definite_not_ambiguous(
    serve: ServeFn, reply: str, expected: type[Exception]
) -> None:
    handler = Recorder(data_reply=reply)
    async with serve(handler) as server:
        mailer = SmtpMailer("127.0.0.1", server.port)
        async with mailer:
            with pytest.raises(expected) as caught:
                await mailer.send(make_message("refused-body"))
    assert not isinstance(caught.value, MailAmbiguousError)


async def test_connection_refused_is_retryable() -> None:
    mailer = SmtpMailer("127.0.0.1", closed_port(), timeout=2)
    async with mailer:
        with pytest.raises(MailRetryableError) as caught:
            await mailer.send(make_message("refused"))
    assert caught.value.__cause__ is not None


async def test_lines_starting_with_a_dot_survive_transmission(serve: ServeFn) -> None:
    message = EmailMessage()
    message["Message-ID"] = message_id_for("dots", "clinic.example")
    message["From"] = "reminders@clinic.example"
    message["To"] = PATIENT
    message["Subject"] = "dots"
    text = ".leading dot\n.\n..two dots\nend\n"
    message.set_content(text, cte="7bit")
    handler = Recorder()
    async with serve(handler) as server:
        mailer = SmtpMailer("127.0.0.1", server.port)
        async with mailer:
            await mailer.send(message)
    parsed = BytesParser(policy=policy.default).parsebytes(handler.messages[0].content)
    body = parsed.get_body()
    assert body is not None
    assert body.get_content().replace("\r\n", "\n") == text


async def test_bcc_is_an_envelope_recipient_but_not_a_header(serve: ServeFn) -> None:
    message = make_message("bcc")
    message["Bcc"] = "audit@clinic.example"
    handler = Recorder()
    async with serve(handler) as server:
        mailer = SmtpMailer("127.0.0.1", server.port)
        async with mailer:
            await mailer.send(message)
    received = handler.messages[0]
    assert received.rcpt_tos == [PATIENT, "audit@clinic.example"]
    assert b"audit@clinic.example" not in received.content


async def test_starttls_with_login(serve: ServeFn, certificate: Certificate) -> None:
    handler = Recorder()
    async with serve(
        handler, starttls=certificate.server_context(), credentials=("frontdesk", "s3cret")
    ) as server:
        mailer = SmtpMailer(
            "127.0.0.1",
            server.port,
            tls="starttls",
            username="frontdesk",
            password="s3cret",
            tls_context=certificate.client_context(),
        )
        async with mailer:
            await mailer.send(make_message("tls-1"))
            await mailer.send(make_message("tls-2"))
    assert server.connections == 1
    assert [(item.tls, item.authenticated) for item in handler.messages] == [(True, True)] * 2


async def test_wrong_password_is_permanent(serve: ServeFn, certificate: Certificate) -> None:
    async with serve(
        Recorder(), starttls=certificate.server_context(), credentials=("frontdesk", "s3cret")
    ) as server:
        mailer = SmtpMailer(
            "127.0.0.1",
            server.port,
            tls="starttls",
            username="frontdesk",
            password="wrong",
            tls_context=certificate.client_context(),
        )
        async with mailer:
            with pytest.raises(MailPermanentError) as caught:
                await mailer.send(make_message("bad-login"))
    assert caught.value.smtp_code == 535
    assert "wrong" not in str(caught.value)


async def test_implicit_tls(serve: ServeFn, certificate: Certificate) -> None:
    handler = Recorder()
    async with serve(handler, implicit_tls=certificate.server_context()) as server:
        mailer = SmtpMailer(
            "127.0.0.1", server.port, tls="tls", tls_context=certificate.client_context()
        )
        async with mailer:
            await mailer.send(make_message("implicit"))
    assert handler.messages[0].tls is True


async def test_untrusted_certificate_is_permanent(serve: ServeFn, certificate: Certificate) -> None:
    handler = Recorder()
    async with serve(handler, starttls=certificate.server_context()) as server:
        # No tls_context: the system store does not trust a self-signed certificate.
        mailer = SmtpMailer("127.0.0.1", server.port, tls="starttls", timeout=5)
        async with mailer:
            with pytest.raises(MailPermanentError):
                await mailer.send(make_message("untrusted"))
    assert handler.messages == []


async def test_starttls_required_but_not_offered_is_permanent(serve: ServeFn) -> None:
    handler = Recorder()
    async with serve(handler) as server:
        mailer = SmtpMailer("127.0.0.1", server.port, tls="starttls")
        async with mailer:
            with pytest.raises(MailPermanentError):
                await mailer.send(make_message("no-starttls"))
    assert handler.messages == []


async def test_unusable_recipient_address_is_rejected_without_echoing_it(serve: ServeFn) -> None:
    # compat32 keeps the header raw; the space cannot go on an RCPT command line.
    message = EmailMessage(policy=policy.compat32)
    message["Message-ID"] = message_id_for("bad-address", "clinic.example")
    message["From"] = "reminders@clinic.example"
    message["To"] = "<maria lopez@patients.example>"
    message.set_payload("See you soon.")
    handler = Recorder()
    async with serve(handler) as server:
        mailer = SmtpMailer("127.0.0.1", server.port)
        async with mailer:
            with pytest.raises(MailRecipientRejected) as caught:
                await mailer.send(message)
    assert caught.value.recipient_index == 0
    assert "maria" not in "".join(traceback.format_exception(caught.value))
    assert handler.bodies_seen == 0


async def test_message_without_message_id_is_refused_before_connecting(serve: ServeFn) -> None:
    message = make_message("no-id")
    del message["Message-ID"]
    async with serve(Recorder()) as server:
        mailer = SmtpMailer("127.0.0.1", server.port)
        async with mailer:
            with pytest.raises(ValueError, match="Message-ID"):
                await mailer.send(message)
    assert server.connections == 0
