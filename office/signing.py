"""HMAC signatures: inbound webhooks, and the links we put in patients' messages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

__all__ = ["LinkError", "make_link_token", "read_link_token", "sign_webhook", "verify_webhook"]

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


def make_link_token(secret: str, *, purpose: str, subject: int, version: int, expires: int) -> str:
    """A signed, expiring, single-purpose token: `payload.signature`, URL-safe."""
    payload = {"p": purpose, "s": subject, "v": version, "e": expires}
    raw = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{raw}.{_mac(secret, raw)}"


def read_link_token(
    secret: str, token: str, *, purpose: str, now: float | None = None
) -> dict[str, int]:
    """Check a token and return its subject, version and expiry; raises LinkError."""
    raw, _, mac = token.partition(".")
    if not raw or not mac or not hmac.compare_digest(_mac(secret, raw), mac):
        raise LinkError("this link is not valid")
    try:
        payload = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, TypeError) as exc:
        raise LinkError("this link is not valid") from exc
    if payload.get("p") != purpose:
        raise LinkError("this link is not valid for this action")
    if (time.time() if now is None else now) > payload.get("e", 0):
        raise LinkError("this link has expired")
    return {
        "subject": int(payload["s"]),
        "version": int(payload["v"]),
        "expires": int(payload["e"]),
    }


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(secret: str, raw: str) -> str:
    return _b64(hmac.new(secret.encode(), raw.encode(), hashlib.sha256).digest()[:20])
