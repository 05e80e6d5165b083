"""Signed links in onboarding mail: one click-and-confirm per checklist item.

The token is 17 bytes (23 URL-safe characters), like the patients' links:

    purpose (1 byte) | item id (4) | expiry, Unix seconds (4) | MAC (8)

under a key derived from OFFICE_SECRET_KEY for this use only, so a token can never
double as a patient link or a webhook signature. Checked against every key in
`Settings.link_keys()`, so links sent before a key rotation keep working until they
expire. A link only completes its item once: a done item refuses the second answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

from office.signing import LinkError

__all__ = ["LINK_DAYS", "LinkError", "item_link", "read_item_link"]

LINK_DAYS: Final = 60
_COMPLETE: Final = 1
_BODY: Final = struct.Struct(">BII")
_MAC_BYTES: Final = 8
INVALID: Final = "this link is not valid"
EXPIRED: Final = "this link has expired"


def _key(secret: str) -> bytes:
    return hashlib.sha256(b"officeflows onboarding links v1\x00" + secret.encode()).digest()


def item_link(secret: str, item_id: int, *, now: datetime, days: int = LINK_DAYS) -> str:
    """A token that completes item `item_id`, valid for `days` from `now`."""
    expires = int((now + timedelta(days=days)).timestamp())
    body = _BODY.pack(_COMPLETE, item_id, expires)
    mac = hmac.new(_key(secret), body, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(body + mac).rstrip(b"=").decode("ascii")


def read_item_link(secrets: Sequence[str], token: str, *, now: datetime) -> int:
    """The item id a genuine, unexpired token names.

    Raises:
        LinkError: forged, malformed or expired; the message is safe to show.
    """
    if not token or len(token) > 64:
        raise LinkError(INVALID)
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, binascii.Error) as exc:
        raise LinkError(INVALID) from exc
    if len(raw) != _BODY.size + _MAC_BYTES:
        raise LinkError(INVALID)
    body, mac = raw[: _BODY.size], raw[_BODY.size :]
    if not any(
        hmac.compare_digest(hmac.new(_key(s), body, hashlib.sha256).digest()[:_MAC_BYTES], mac)
        for s in secrets
    ):
        raise LinkError(INVALID)
    purpose, item_id, expires = _BODY.unpack(body)
    if purpose != _COMPLETE:
        raise LinkError(INVALID)
    if now >= datetime.fromtimestamp(expires, UTC):
        raise LinkError(EXPIRED)
    return int(item_id)
