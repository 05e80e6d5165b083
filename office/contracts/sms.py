"""The outbound SMS contract: an `SmsSender` and its error tree.

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

from typing import Protocol, runtime_checkable

from office.contacts import phone_problem

__all__ = [
    "SmsAmbiguousError",
    "SmsError",
    "SmsRejected",
    "SmsRetryableError",
    "SmsSender",
    "one_number",
]


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
    """The provider refused the message; resending it unchanged cannot succeed.

    `opted_out` is true when the provider says the patient opted out (a STOP reply):
    the caller records it locally and stops texting them.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        error_code: int | None = None,
        opted_out: bool = False,
    ) -> None:
        super().__init__(message, http_status=http_status, error_code=error_code)
        self.opted_out = opted_out


@runtime_checkable
class SmsSender(Protocol):
    """Sends one text message and names the provider's id for it."""

    async def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        """Send `body` to the E.164 number `to`; return the provider's message id.

        `idempotency_key` names the outbox row; providers that honour one use it,
        the rest rely on the caller never resending after `SmsAmbiguousError`.
        """
        ...


def one_number(to: str) -> str:
    """`to` when it is exactly one E.164 number; every sender checks before it sends.

    Raises:
        SmsRejected: with the reason code (`office.contacts`), never the number.
    """
    problem = phone_problem(to)
    if problem is not None:
        raise SmsRejected(f"the recipient is not one E.164 number ({problem})")
    return to
