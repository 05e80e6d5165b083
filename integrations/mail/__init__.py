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
    envelope_of,
    get_mailer,
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
    "envelope_of",
    "get_mailer",
]
