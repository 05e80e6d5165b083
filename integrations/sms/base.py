"""The outbound SMS contract, its error tree, and the factory that picks a provider.

Errors are split by what the caller may do next::

    SmsError
    ├── SmsRetryableError   nothing reached the provider, or it asked us to come
    │                       back (connect failure, 429, 5xx): send again later
    ├── SmsAmbiguousError   the request went out and no answer came back: mark
    │                       "unknown", never resend blindly
    └── SmsRejected         the provider refused this message for good (opted-out
                            number, invalid number, any other 4xx)

Messages carry HTTP statuses and provider error codes, never phone numbers,
bodies or URLs: they end up in Prefect's logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

__all__ = [
    "TWILIO_OPTED_OUT",
    "SmsAmbiguousError",
    "SmsError",
    "SmsRejected",
    "SmsRetryableError",
    "SmsSender",
    "SmsSenderKind",
    "get_sms_sender",
]

SmsSenderKind = Literal["file", "twilio"]

TWILIO_OPTED_OUT = 21610
"""Twilio: the recipient replied STOP (or another opt-out keyword) to this sender."""


class SmsError(Exception):
    """Root of every SMS adapter failure; transport exceptions are chained as __cause__."""

    def __init__(
        self, message: str, *, http_status: int | None = None, error_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.error_code = error_code


class SmsRetryableError(SmsError):
    """The provider did not take the message; the same message may be sent again."""


class SmsAmbiguousError(SmsError):
    """The request was sent but no answer arrived; the message may or may not go out."""


class SmsRejected(SmsError):
    """The provider refused the message; resending it unchanged cannot succeed."""

    @property
    def opted_out(self) -> bool:
        """True when the patient opted out: record it locally and stop texting them."""
        return self.error_code == TWILIO_OPTED_OUT


@runtime_checkable
class SmsSender(Protocol):
    """Sends one text message and names the provider's id for it."""

    async def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        """Send `body` to the E.164 number `to`; return the provider's message id.

        `idempotency_key` names the outbox row; providers that honour one use it,
        the rest rely on the caller never resending after `SmsAmbiguousError`.
        """
        ...


def get_sms_sender(
    kind: SmsSenderKind,
    *,
    outbox_dir: Path | None = None,
    account_sid: str | None = None,
    auth_token: str | None = None,
    from_number: str | None = None,
    messaging_service_sid: str | None = None,
    client: httpx.AsyncClient | None = None,
) -> SmsSender:
    """Build the configured provider: "file" for development and demos, "twilio" for real texts.

    Args:
        auth_token: Plain text; unwrap a SecretStr at the edge.
        client: Reused for every send when given (and closed by its owner);
            otherwise each send opens and closes its own.
    """
    # Imported here: the implementations import this module for the contract.
    if kind == "file":
        from integrations.sms.file import FileSms

        if outbox_dir is None:
            raise ValueError("the file SMS sender needs outbox_dir")
        return FileSms(outbox_dir)
    if kind == "twilio":
        from integrations.sms.twilio import TwilioSms

        if not account_sid or not auth_token:
            raise ValueError("the twilio SMS sender needs account_sid and auth_token")
        return TwilioSms(
            account_sid,
            auth_token,
            from_number=from_number,
            messaging_service_sid=messaging_service_sid,
            client=client,
        )
    raise ValueError(f"unknown SMS sender kind {kind!r}; expected 'file' or 'twilio'")
