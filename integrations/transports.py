"""The outbound transports a reminder batch sends through, built from settings."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import httpx

from integrations.mail import mailer_from_settings
from integrations.sms import get_sms_sender
from office.reminders.channels import Channels, Transports

if TYPE_CHECKING:
    from office.settings import Settings

__all__ = ["channels_from_settings"]

# Transports that write one file per message id, overwriting it: sending again is harmless.
_RESEND_SAFE = frozenset({"file"})


def channels_from_settings(settings: Settings) -> Transports:
    """The configured mailer (one connection per batch) and SMS sender, opened per batch."""

    @asynccontextmanager
    async def open_channels() -> AsyncIterator[Channels]:
        mailer = mailer_from_settings(settings)
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(mailer)
            client = None
            if settings.sms == "twilio":
                client = await stack.enter_async_context(httpx.AsyncClient())
            sms = get_sms_sender(
                settings.sms,
                outbox_dir=settings.outbox_dir / "sms",
                account_sid=settings.twilio_account_sid,
                auth_token=(
                    settings.twilio_auth_token.get_secret_value()
                    if settings.twilio_auth_token
                    else None
                ),
                from_number=settings.twilio_from,
                client=client,
            )
            yield Channels(mailer=mailer, sms=sms)

    return Transports(
        open=open_channels,
        mail_resend_safe=settings.mailer in _RESEND_SAFE,
        sms_resend_safe=settings.sms in _RESEND_SAFE,
    )
