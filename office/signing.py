"""HMAC signatures on inbound webhooks (patient links sign their own: office.reminders.links).

A webhook is signed over `{timestamp}.{source}.{key}.{body}`: the timestamp bounds a replay to
five minutes, and the source and the Idempotency-Key (empty when absent) bind the signature to
the one inbox slot it was sent for, so the same request cannot be stored again under another
key, without one, or from another source. None of the three may hold a ".", so the signed
string splits one way only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

__all__ = [
    "WEBHOOK_TOLERANCE_SECONDS",
    "LinkError",
    "is_idempotency_key",
    "is_webhook_source",
    "sign_webhook",
    "verify_webhook",
]

WEBHOOK_TOLERANCE_SECONDS = 300
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # unix seconds; 12 digits reach the year 33658
_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")
_SOURCE = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_KEY = re.compile(r"[!-\-/-~]{1,200}")  # visible ASCII but ".", at most the column's 200


def is_webhook_source(source: str) -> bool:
    """A source name as it appears in /webhooks/{source}: lower-case letters, digits, - and _."""
    return _SOURCE.fullmatch(source) is not None


def is_idempotency_key(key: str) -> bool:
    """1-200 visible ASCII characters, none of them "."."""
    return _KEY.fullmatch(key) is not None


def _message(timestamp: int, source: str, key: str, body: bytes) -> bytes:
    if not is_webhook_source(source) or (key and not is_idempotency_key(key)):
        raise ValueError("a webhook source or Idempotency-Key that cannot be signed")
    return f"{timestamp}.{source}.{key}.".encode() + body


def sign_webhook(secret: str, timestamp: int, source: str, key: str, body: bytes) -> str:
    """The `X-Office-Signature` value for `body` sent to `source` at `timestamp` under `key`.

    Args:
        key: The Idempotency-Key header, or "" when the request carries none.
    """
    mac = hmac.new(secret.encode(), _message(timestamp, source, key, body), hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_webhook(
    secret: str,
    timestamp_header: str | None,
    signature_header: str | None,
    *,
    source: str,
    key: str,
    body: bytes,
    now: float | None = None,
) -> bool:
    """True when the signature covers exactly these values and is at most five minutes off.

    Never raises on what a client sent: a header of any length or alphabet is just False.
    """
    if timestamp_header is None or signature_header is None:
        return False
    if _TIMESTAMP.fullmatch(timestamp_header) is None:
        return False
    if _SIGNATURE.fullmatch(signature_header) is None:
        return False
    if not is_webhook_source(source) or (key and not is_idempotency_key(key)):
        return False
    timestamp = int(timestamp_header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > WEBHOOK_TOLERANCE_SECONDS:
        return False
    expected = sign_webhook(secret, timestamp, source, key, body)
    return hmac.compare_digest(expected.encode(), signature_header.encode())


class LinkError(ValueError):
    """A link token that is forged, expired, or meant for something else."""
