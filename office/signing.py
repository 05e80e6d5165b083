"""HMAC signatures on inbound webhooks (patient links sign their own: office.reminders.links)."""

from __future__ import annotations

import hashlib
import hmac
import time

__all__ = ["LinkError", "sign_webhook", "verify_webhook"]

WEBHOOK_TOLERANCE_SECONDS = 300


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Office-Signature` value for a body sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_webhook(
    secret: str,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    *,
    now: float | None = None,
) -> bool:
    """True when the signature matches and the timestamp is within five minutes."""
    if not timestamp_header or not signature_header:
        return False
    try:
        timestamp = int(timestamp_header)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > WEBHOOK_TOLERANCE_SECONDS:
        return False
    expected = sign_webhook(secret, timestamp, body)
    return hmac.compare_digest(expected, signature_header.strip())


class LinkError(ValueError):
    """A link token that is forged, expired, or meant for something else."""
