"""Outbound mail: one `Mailer` contract, an SMTP and a file transport, one error tree."""

from __future__ import annotations

from integrations.mail.base import (
    Envelope,
    MailAmbiguousError,
    Mailer,
    MailerKind,
    MailError,
    MailPermanentError,
    MailRecipientRejected,
    MailRetryableError,
    TlsMode,
    Wire,
    envelope_of,
    get_mailer,
    to_wire,
)
from integrations.mail.file import FileMailer
from integrations.mail.smtp import SmtpMailer

__all__ = [
    "Envelope",
    "FileMailer",
    "MailAmbiguousError",
    "MailError",
    "MailPermanentError",
    "MailRecipientRejected",
    "MailRetryableError",
    "Mailer",
    "MailerKind",
    "SmtpMailer",
    "TlsMode",
    "Wire",
    "envelope_of",
    "get_mailer",
    "to_wire",
]
