"""Twilio Programmable Messaging: one form-encoded POST per text.

Twilio's Messages API takes no idempotency key, so the outbox key is not sent;
exactly-once rests on the caller marking a message "unknown" after
`SmsAmbiguousError` instead of resending it.
"""

from __future__ import annotations

from typing import Any

import httpx

from office.contracts.sms import (
    SmsAmbiguousError,
    SmsRejected,
    SmsRetryableError,
    one_number,
)

__all__ = ["TWILIO_OPTED_OUT", "TwilioSms"]

TWILIO_OPTED_OUT = 21610
"""Twilio: the recipient replied STOP (or another opt-out keyword) to this sender."""

# Raised before a byte of the request can have reached Twilio.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)


class TwilioSms:
    """Sends texts through Twilio's REST API from a number or a Messaging Service.

    Args:
        account_sid, auth_token: HTTP basic credentials.
        from_number: Sending number in E.164; or
        messaging_service_sid: The Messaging Service (needed for Advanced Opt-Out
            and scheduled sends). Exactly one of the two.
        client: Reused for every send when given; its owner closes it. Without
            one, each send opens and closes its own client.
        base_url: Overridden only to point at a test double.
        timeout: Seconds for connect, write and the wait for Twilio's answer.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        client: httpx.AsyncClient | None = None,
        base_url: str = "https://api.twilio.com",
        timeout: float = 15.0,
    ) -> None:
        if (from_number is None) == (messaging_service_sid is None):
            raise ValueError("give exactly one of from_number or messaging_service_sid")
        self._account_sid = account_sid
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._sender: tuple[str, str]
        if from_number is not None:
            self._sender = ("From", from_number)
        else:
            self._sender = ("MessagingServiceSid", str(messaging_service_sid))
        self._client = client
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout

    async def send(self, *, to: str, body: str, idempotency_key: str) -> str:
        """POST the message; return Twilio's message sid (SM...)."""
        if not idempotency_key:
            raise ValueError("idempotency_key must not be empty")
        one_number(to)
        if self._client is not None:
            return await self._post(self._client, to=to, body=body)
        async with httpx.AsyncClient() as client:
            return await self._post(client, to=to, body=body)

    async def _post(self, client: httpx.AsyncClient, *, to: str, body: str) -> str:
        url = f"{self._base_url}/2010-04-01/Accounts/{self._account_sid}/Messages.json"
        form = {"To": to, "Body": body, self._sender[0]: self._sender[1]}
        try:
            response = await client.post(url, data=form, auth=self._auth, timeout=self._timeout)
        except _NOT_SENT as exc:
            raise SmsRetryableError("could not reach Twilio; the message was not sent") from exc
        except httpx.TransportError as exc:
            raise SmsAmbiguousError(
                "no answer from Twilio after the request was sent; it may have been delivered"
            ) from exc
        return _sid_or_raise(response)


def _sid_or_raise(response: httpx.Response) -> str:
    status = response.status_code
    if status in (200, 201):
        try:
            sid = response.json()["sid"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SmsAmbiguousError(
                f"Twilio answered HTTP {status} without a message sid", http_status=status
            ) from exc
        if not isinstance(sid, str) or not sid:
            raise SmsAmbiguousError(
                f"Twilio answered HTTP {status} without a message sid", http_status=status
            )
        return sid
    code = _error_code(response)
    if status == httpx.codes.TOO_MANY_REQUESTS or status >= 500:
        raise SmsRetryableError(
            f"Twilio deferred the message (HTTP {status}, error {code})",
            http_status=status,
            error_code=code,
        )
    raise SmsRejected(
        f"Twilio rejected the message (HTTP {status}, error {code})",
        http_status=status,
        error_code=code,
        opted_out=code == TWILIO_OPTED_OUT,
    )


def _error_code(response: httpx.Response) -> int | None:
    """Twilio's numeric error code; its `message` field is never read, it echoes the number."""
    try:
        payload: Any = response.json()
    except ValueError:
        return None
    code = payload.get("code") if isinstance(payload, dict) else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None
