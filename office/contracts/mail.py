"""The outbound mail contract: a `Mailer`, its error tree, and the wire form of a message.

Errors are split by what the caller may do next, so a Prefect
``retry_condition_fn`` can retry exactly the retryable branch::

    MailError
    ├── MailRetryableError      nothing was accepted (connect failed, dropped
    │                           before DATA, any 4xx): safe to send again later
    ├── MailAmbiguousError      the body went out and no verdict came back
    │                           (timeout or drop after DATA): mark "unknown",
    │                           never resend blindly
    └── MailPermanentError      a 5xx refusal: resending the same message fails again
        └── MailRecipientRejected   5xx on RCPT for one recipient

Messages carry SMTP codes and recipient positions, never addresses, server
text or message content: they end up in Prefect's logs.
"""

from __future__ import annotations

import copy
import dataclasses
import email.generator
import io
from dataclasses import dataclass
from email.policy import EmailPolicy
from email.utils import getaddresses
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from office.contacts import email_problem

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from email.message import EmailMessage
    from types import TracebackType

__all__ = [
    "Envelope",
    "MailAmbiguousError",
    "MailError",
    "MailPermanentError",
    "MailRecipientRejected",
    "MailRetryableError",
    "Mailer",
    "Wire",
    "envelope_of",
    "plain_recipients",
    "to_wire",
]


class MailError(Exception):
    """Root of every mail adapter failure; vendor exceptions are chained as __cause__."""

    def __init__(self, message: str, *, smtp_code: int | None = None) -> None:
        super().__init__(message)
        self.smtp_code = smtp_code


class MailRetryableError(MailError):
    """Nothing was accepted for delivery; the same message may be sent again."""


class MailAmbiguousError(MailError):
    """The body was transmitted but no verdict arrived; it may or may not be delivered."""


class MailPermanentError(MailError):
    """The server refused for good; retrying the same message cannot succeed."""


class MailRecipientRejected(MailPermanentError):
    """A recipient address was refused (5xx on RCPT); the address needs fixing."""

    def __init__(self, message: str, *, recipient_index: int, smtp_code: int | None) -> None:
        super().__init__(message, smtp_code=smtp_code)
        self.recipient_index = recipient_index


@runtime_checkable
class Mailer(Protocol):
    """Sends built messages; one `async with` block is one connection for a batch."""

    async def __aenter__(self) -> Mailer: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def send(
        self, message: EmailMessage | Wire, *, ready: Awaitable[bool] | None = None
    ) -> str | None:
        """Send one message and return the provider's id for it (its Message-ID here).

        A `Wire` is a message already flattened by `to_wire` (in another process,
        say); it goes out byte for byte.

        `ready` is the caller's go-ahead, when it has one: a send loop's claim on the
        message, committing meanwhile. It is awaited once the server has taken the
        envelope and before any of the message goes out; when it gives False the
        transaction is reset, nothing is sent and `send` returns None. What it raises is
        raised, the message unsent.

        Raises:
            MailRetryableError, MailAmbiguousError, MailPermanentError: see the tree above.
            ValueError: the message has no Message-ID, sender or recipient.
        """
        ...


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who a message is from and to, as SMTP needs it, plus its id."""

    message_id: str
    sender: str
    recipients: tuple[str, ...]


def envelope_of(message: EmailMessage) -> Envelope:
    """Read the envelope from the headers, refusing a message that cannot be tracked.

    Raises:
        ValueError: no Message-ID (outbox idempotency depends on it), no sender or no recipient.
    """
    message_id = str(message.get("Message-ID", "")).strip()
    if not message_id:
        raise ValueError("message has no Message-ID; build it with office.messages.build_email")
    senders = [addr for _, addr in getaddresses(_header_values(message, "Sender"))] or [
        addr for _, addr in getaddresses(_header_values(message, "From"))
    ]
    if not senders or not senders[0]:
        raise ValueError("message has no From address")
    recipients = tuple(
        addr
        for name in ("To", "Cc", "Bcc")
        for _, addr in getaddresses(_header_values(message, name))
        if addr
    )
    if not recipients:
        raise ValueError("message has no recipient")
    return Envelope(message_id=message_id, sender=senders[0], recipients=recipients)


def plain_recipients(envelope: Envelope) -> Envelope:
    """`envelope` when each recipient is one plain address; every mailer checks before sending.

    A header such as ``a;b@x`` reads as the two recipients ``a`` and ``b@x``, one of
    them nobody meant (`office.contacts`).

    Raises:
        MailRecipientRejected: naming the recipient's position and the reason code.
    """
    for index, recipient in enumerate(envelope.recipients):
        problem = email_problem(recipient)
        if problem is not None:
            raise MailRecipientRejected(
                f"recipient #{index} is not one plain address ({problem})",
                recipient_index=index,
                smtp_code=None,
            )
    return envelope


@dataclass(frozen=True, slots=True)
class Wire:
    """A message ready for the wire: its envelope and its CRLF bytes, without Bcc."""

    envelope: Envelope
    data: bytes


def to_wire(message: EmailMessage, *, envelope_sender: str | None = None) -> Wire:
    """Flatten a message as SMTP carries it: CRLF line ends, Bcc removed.

    Args:
        envelope_sender: MAIL FROM when it must differ from the headers; "" is the
            null sender ``<>``, which RFC 3834 asks of automatic replies so that
            no bounce or reply ever comes back to them.

    Raises:
        ValueError: as `envelope_of`.
    """
    envelope = envelope_of(message)
    if envelope_sender is not None:
        envelope = dataclasses.replace(envelope, sender=envelope_sender)
    outgoing = message
    if "Bcc" in message or "Resent-Bcc" in message:
        # Bcc must never reach the recipients; the envelope above still has them.
        outgoing = copy.copy(message)
        del outgoing["Bcc"]
        del outgoing["Resent-Bcc"]
    with io.BytesIO() as buffer:
        email.generator.BytesGenerator(buffer, policy=_WIRE).flatten(outgoing)
        return Wire(envelope, buffer.getvalue())


class _WirePolicy(EmailPolicy):
    """`email.policy.SMTP`, minus the refold of header lines that already fit.

    Refolding a header that fits on one line yields the line unchanged, yet costs
    half the flatten. A short, plain-ASCII, single-line value is written as its
    parse tree reads, which is what the refold produces; anything else takes
    the standard path. A test holds the two byte for byte.
    """

    def fold_binary(self, name: str, value: str) -> bytes:
        tree = getattr(value, "_parse_tree", None)
        if tree is not None:
            text = str(tree)
            limit = self.max_line_length  # None or 0: no limit
            if (
                text
                and text.isascii()
                and "\r" not in text
                and "\n" not in text
                and (not limit or len(name) + 2 + len(text) <= limit)
            ):
                return f"{name}: {text}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


_WIRE = _WirePolicy(linesep="\r\n")


def _header_values(message: EmailMessage, name: str) -> list[str]:
    return [str(value) for value in message.get_all(name, [])]
