"""Build the configured mail transport; each implements `office.contracts.mail.Mailer`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pathlib import Path

    from office.contracts.mail import Mailer
    from office.settings import Settings

__all__ = ["MailerKind", "TlsMode", "get_mailer", "mailer_from_settings"]

MailerKind = Literal["file", "smtp"]
TlsMode = Literal["none", "starttls", "tls"]


def get_mailer(
    kind: MailerKind,
    *,
    outbox_dir: Path | None = None,
    host: str | None = None,
    port: int | None = None,
    username: str | None = None,
    password: str | None = None,
    tls: TlsMode = "none",
    sender_domain: str = "localhost",
    timeout: float = 30.0,
) -> Mailer:
    """Build the configured transport: "file" for development and demos, "smtp" for real mail.

    Args:
        kind: "file" writes .eml files into `outbox_dir`; "smtp" talks to `host`.
        port: Defaults by `tls`: 25 for "none", 587 for "starttls", 465 for "tls".
        password: Plain text; unwrap a SecretStr at the edge.
        sender_domain: The name this client announces in EHLO.
    """
    # Imported here: the implementations import this module for the contract.
    if kind == "file":
        from integrations.mail.file import FileMailer

        if outbox_dir is None:
            raise ValueError("the file mailer needs outbox_dir")
        return FileMailer(outbox_dir)
    if kind == "smtp":
        from integrations.mail.smtp import SmtpMailer

        if not host:
            raise ValueError("the smtp mailer needs host")
        default_port = {"none": 25, "starttls": 587, "tls": 465}[tls]
        return SmtpMailer(
            host,
            port if port is not None else default_port,
            username=username,
            password=password,
            tls=tls,
            timeout=timeout,
            sender_domain=sender_domain,
        )
    raise ValueError(f"unknown mailer kind {kind!r}; expected 'file' or 'smtp'")


def mailer_from_settings(settings: Settings) -> Mailer:
    """The practice's configured mailer (OFFICE_MAILER, OFFICE_SMTP_*), one connection."""
    from office.messages import address_domain

    password = settings.smtp_password
    return get_mailer(
        settings.mailer,
        outbox_dir=settings.outbox_dir,
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=password.get_secret_value() if password is not None else None,
        tls=settings.smtp_tls,
        sender_domain=address_domain(settings.mail_from),
    )
