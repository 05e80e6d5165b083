"""Build the configured SMS provider; each implements `office.contracts.sms.SmsSender`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from office.contracts.sms import SmsSender

__all__ = ["SmsSenderKind", "get_sms_sender"]

SmsSenderKind = Literal["file", "twilio"]


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
