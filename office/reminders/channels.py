"""The transports a reminder batch sends through: the contract `integrations.transports` fills."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from office.contracts.mail import Mailer
    from office.contracts.sms import SmsSender

__all__ = ["Channels", "Transports"]


@dataclass(frozen=True)
class Channels:
    """One batch's open mailer (one connection) and SMS sender."""

    mailer: Mailer
    sms: SmsSender


@dataclass(frozen=True)
class Transports:
    """Opens a batch's channels, and says, without opening them, which may repeat a message.

    A transport that is idempotent on the message's id (a file outbox overwrites
    the same file) may be given an interrupted message again; SMTP and SMS
    providers cannot be asked whether it arrived, so theirs become "unknown".
    """

    open: Callable[[], AbstractAsyncContextManager[Channels]]
    mail_resend_safe: bool
    sms_resend_safe: bool
