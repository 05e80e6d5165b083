"""SMTP transport over aiosmtplib: one connection per batch, each failure classified by phase.

The phase decides what the caller may do. Until the DATA command is answered
with 354, nothing can have been delivered, so a failure is retryable (or final,
for a 5xx). Once the body has been written, a dropped connection or a timeout
leaves the message possibly delivered: that is `MailAmbiguousError`. To know
the phase exactly, the transaction is driven command by command (MAIL, RCPT,
DATA, body) instead of through `SMTP.sendmail`, which reports a failure while
waiting for 354 the same way as one after the body.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from typing import TYPE_CHECKING

from aiosmtplib import (
    SMTP,
    SMTPAuthenticationError,
    SMTPException,
    SMTPRecipientRefused,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from integrations.mail.base import TlsMode
from office.contracts.mail import (
    MailAmbiguousError,
    MailError,
    MailPermanentError,
    MailRecipientRejected,
    MailRetryableError,
    Wire,
    plain_recipients,
    to_wire,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from email.message import EmailMessage
    from types import TracebackType

__all__ = ["SmtpMailer"]

_LINE_ENDINGS = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")
_SERVICE_CLOSING = 421
_START_MAIL_INPUT = 354
_COMPLETED = 250
_NOT_SENT = "the SMTP connection failed before the message was sent"
_UNTRUSTED = "the SMTP server's TLS certificate was not trusted"
_WITHHELD = "[withheld: may contain the recipient address]"


class SmtpMailer:
    """Sends through one SMTP connection per `async with` block, reconnecting when it went stale.

    Args:
        host, port: The submission server.
        username, password: Log in after connecting when `username` is set.
        tls: "none", "starttls" (upgrade after connecting; required) or "tls"
            (implicit TLS, usually port 465).
        timeout: Seconds to wait for any one server reply.
        sender_domain: The name announced in EHLO.
        tls_context: Trust settings for the server certificate; defaults to the
            system store with hostname checking.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: TlsMode = "none",
        timeout: float = 30.0,
        sender_domain: str = "localhost",
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if tls not in ("none", "starttls", "tls"):
            raise ValueError("tls must be 'none', 'starttls' or 'tls'")
        self.host = host
        self.port = port
        self.tls: TlsMode = tls
        self.timeout = timeout
        self.sender_domain = sender_domain
        self._username = username
        self._password = password
        self._tls_context = tls_context
        self._smtp: SMTP | None = None
        self._entered = False
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> SmtpMailer:
        self._entered = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._entered = False
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit()
            except (SMTPException, OSError):
                # Every message's fate was settled before QUIT; a failed goodbye
                # changes none of them, so the socket is simply closed.
                smtp.close()

    async def send(
        self, message: EmailMessage | Wire, *, ready: Awaitable[bool] | None = None
    ) -> str | None:
        """Send one message; return its Message-ID once the server accepted the body.

        `ready` (see `Mailer.send`) is awaited between RCPT and DATA: a claim committing
        meanwhile costs the send no round trip of its own. Given False, the transaction
        is reset (RSET); raising, the connection is dropped: either way nothing went out.
        """
        if not self._entered:
            raise RuntimeError("use SmtpMailer inside 'async with' so its connection is closed")
        wire = message if isinstance(message, Wire) else to_wire(message)
        envelope = plain_recipients(wire.envelope)
        async with self._lock:
            try:
                smtp = await self._begin(envelope.sender)
                await self._recipients(smtp, envelope.recipients)
                if ready is not None and not await ready:
                    await self._reset(smtp)
                    return None
                await self._data(smtp)
                await self._body(smtp, wire.data)
            except MailError:
                raise
            except BaseException:
                # Cancelled or failed mid-conversation: the session state is unknown.
                self._drop()
                raise
        return envelope.message_id

    async def _connect(self) -> SMTP:
        smtp = SMTP(
            hostname=self.host,
            port=self.port,
            username=self._username,
            password=self._password,
            local_hostname=self.sender_domain,
            timeout=self.timeout,
            use_tls=self.tls == "tls",
            start_tls=self.tls == "starttls",
            tls_context=self._tls_context,
        )
        try:
            await smtp.connect()
            if smtp.is_ehlo_or_helo_needed:
                await smtp.ehlo()
        except SMTPAuthenticationError as exc:
            smtp.close()
            raise _refusal(exc.code, "SMTP authentication failed") from exc
        except SMTPResponseException as exc:
            smtp.close()
            raise _refusal(exc.code, "the SMTP server refused the session") from exc
        except (SMTPServerDisconnected, SMTPTimeoutError, OSError) as exc:
            smtp.close()
            if _certificate_failure(exc):
                raise MailPermanentError(_UNTRUSTED) from exc
            raise MailRetryableError("could not connect to the SMTP server") from exc
        except SMTPException as exc:
            smtp.close()
            if _certificate_failure(exc):
                raise MailPermanentError(_UNTRUSTED) from exc
            raise MailPermanentError(
                "the SMTP server does not support the configured TLS or login"
            ) from exc
        return smtp

    async def _begin(self, sender: str) -> SMTP:
        """MAIL FROM on the open connection, or on a new one if the server dropped it while idle."""
        current = self._smtp
        if current is not None and current.is_connected:
            started = await self._mail(current, sender, reused=True)
            if started:
                return current
        self._drop()
        smtp = await self._connect()
        self._smtp = smtp
        await self._mail(smtp, sender, reused=False)
        return smtp

    async def _mail(self, smtp: SMTP, sender: str, *, reused: bool) -> bool:
        """Start the transaction; False when a reused connection turned out to be gone."""
        options = ["BODY=8BITMIME"] if smtp.supports_extension("8bitmime") else []
        try:
            await smtp.mail(sender, options=options)
        except SMTPSenderRefused as exc:
            if exc.code == _SERVICE_CLOSING and reused:
                return False
            await self._reset(smtp)
            raise _refusal(exc.code, "the SMTP server refused the sender") from exc
        except (SMTPServerDisconnected, SMTPTimeoutError) as exc:
            self._drop()
            if reused:
                return False
            raise MailRetryableError(_NOT_SENT) from exc
        except ValueError as exc:
            await self._reset(smtp)
            raise MailPermanentError("the sender address cannot be used in SMTP") from exc
        return True

    async def _recipients(self, smtp: SMTP, recipients: tuple[str, ...]) -> None:
        for index, recipient in enumerate(recipients):
            try:
                await smtp.rcpt(recipient)
            except SMTPRecipientRefused as exc:
                _withhold_text(exc)
                await self._reset(smtp)
                if 500 <= exc.code < 600:
                    raise MailRecipientRejected(
                        f"the SMTP server refused recipient #{index} (SMTP {exc.code})",
                        recipient_index=index,
                        smtp_code=exc.code,
                    ) from exc
                raise _refusal(exc.code, f"the SMTP server deferred recipient #{index}") from exc
            except (SMTPServerDisconnected, SMTPTimeoutError) as exc:
                self._drop()
                raise MailRetryableError(_NOT_SENT) from exc
            except ValueError as exc:
                exc.args = ("the address cannot be placed on an SMTP command line",)
                await self._reset(smtp)
                raise MailRecipientRejected(
                    f"recipient #{index} cannot be used in SMTP",
                    recipient_index=index,
                    smtp_code=None,
                ) from exc

    async def _data(self, smtp: SMTP) -> None:
        try:
            response = await smtp.execute_command(b"DATA")
        except (SMTPServerDisconnected, SMTPTimeoutError) as exc:
            self._drop()
            raise MailRetryableError(_NOT_SENT) from exc
        if response.code != _START_MAIL_INPUT:
            await self._reset(smtp)
            raise _refusal(response.code, "the SMTP server refused DATA")

    async def _body(self, smtp: SMTP, payload: bytes) -> None:
        protocol = smtp.protocol
        if protocol is None:
            self._drop()
            raise MailRetryableError(_NOT_SENT)
        try:
            protocol.write(_dot_stuffed(payload))
        except SMTPServerDisconnected as exc:
            self._drop()
            raise MailRetryableError(_NOT_SENT) from exc
        try:
            response = await protocol.read_response(timeout=self.timeout)
        except (SMTPServerDisconnected, SMTPTimeoutError, SMTPResponseException, OSError) as exc:
            self._drop()
            raise MailAmbiguousError(
                "no reply after the message body was sent; it may have been delivered"
            ) from exc
        if response.code == _COMPLETED:
            return
        if response.code == _SERVICE_CLOSING:
            self._drop()
        if 400 <= response.code < 600:
            raise _refusal(response.code, "the SMTP server refused the message")
        self._drop()
        raise MailAmbiguousError(
            f"unexpected reply after the message body (SMTP {response.code})",
            smtp_code=response.code,
        )

    async def _reset(self, smtp: SMTP) -> None:
        """RSET so the connection can carry the next message; drop it if even that fails."""
        if not smtp.is_connected:
            self._drop()
            return
        try:
            await smtp.rset()
        except (SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        self._smtp = None


def _refusal(code: int, what: str) -> MailError:
    """4xx is a deferral worth retrying; anything else before the body is final."""
    if 400 <= code < 500:
        return MailRetryableError(f"{what} (SMTP {code})", smtp_code=code)
    return MailPermanentError(f"{what} (SMTP {code})", smtp_code=code)


def _withhold_text(exc: SMTPRecipientRefused) -> None:
    """Blank the address and server text, which echoes it: Prefect logs the chained traceback."""
    exc.message = _WITHHELD
    exc.recipient = _WITHHELD
    exc.args = (exc.code, _WITHHELD, _WITHHELD)


def _certificate_failure(exc: BaseException) -> bool:
    """Retrying cannot fix an untrusted certificate, so it is told apart from a network fault."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _dot_stuffed(payload: bytes) -> bytes:
    """RFC 5321 4.5.2: double a leading dot on every line, then end with <CRLF>.<CRLF>."""
    body = _LINE_ENDINGS.sub(b"\r\n", payload)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return _LEADING_DOT.sub(b"..", body) + b".\r\n"
