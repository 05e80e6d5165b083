"""Outbound mail transports: each implements `office.contracts.mail.Mailer`."""

from __future__ import annotations

from integrations.mail.base import MailerKind, TlsMode, get_mailer, mailer_from_settings
from integrations.mail.file import FileMailer
from integrations.mail.smtp import SmtpMailer

__all__ = [
    "FileMailer",
    "MailerKind",
    "SmtpMailer",
    "TlsMode",
    "get_mailer",
    "mailer_from_settings",
]
