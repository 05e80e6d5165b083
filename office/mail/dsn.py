"""Delivery status notifications (RFC 3464): which of our messages bounced, for whom, why.

A DSN is a ``multipart/report; report-type=delivery-status`` holding a
``message/delivery-status`` part (a block of per-message fields, then one block
per recipient) and, usually, the original message or its headers. The original
Message-ID links the bounce to the outbox row that sent it; the recipient
address is the fallback link.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

__all__ = ["DeliveryReport", "RecipientStatus", "read_report"]


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """One recipient's fate: `action` failed|delayed|delivered|relayed|expanded, `status` 5.1.1."""

    address: str
    original: str | None
    action: str
    status: str

    @property
    def failed(self) -> bool:
        """Permanently undeliverable: action failed, or a 5.x.x status."""
        return self.action == "failed" or self.status.startswith("5")


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What a DSN says about the message it reports on."""

    original_message_id: str | None
    recipients: tuple[RecipientStatus, ...]

    @property
    def failures(self) -> tuple[RecipientStatus, ...]:
        return tuple(recipient for recipient in self.recipients if recipient.failed)


def read_report(message: Message) -> DeliveryReport | None:
    """The report inside a multipart/report, or None when it is not a delivery-status one."""
    try:
        if str(message.get_param("report-type", "", header="content-type")).lower() != (
            "delivery-status"
        ):
            return None
        recipients: list[RecipientStatus] = []
        original: str | None = None
        for part in message.walk():
            kind = part.get_content_type()
            if kind == "message/delivery-status":
                recipients.extend(_recipients(part))
            elif kind in ("message/rfc822", "message/rfc822-headers") and original is None:
                original = _inner_message_id(part)
            elif kind == "text/rfc822-headers" and original is None:
                original = _headers_message_id(part)
    except Exception:  # a malformed report is read as ordinary mail
        return None
    if not recipients:
        return None
    return DeliveryReport(original_message_id=original, recipients=tuple(recipients))


def _recipients(part: Message) -> list[RecipientStatus]:
    blocks = part.get_payload()
    if not isinstance(blocks, list):
        return []
    found = []
    for block in blocks[1:]:  # the first block holds the per-message fields
        if not isinstance(block, Message):
            continue
        final = _address(block.get("Final-Recipient"))
        if not final:
            continue
        found.append(
            RecipientStatus(
                address=final,
                original=_address(block.get("Original-Recipient")) or None,
                action=str(block.get("Action", "")).strip().lower(),
                status=str(block.get("Status", "")).strip().split(" ", 1)[0],
            )
        )
    return found


def _address(value: object) -> str:
    """'rfc822; someone@example.org' -> 'someone@example.org'."""
    if value is None:
        return ""
    text = str(value).strip()
    _kind, _, address = text.partition(";")
    return (address or text).strip().strip("<>").lower()


def _inner_message_id(part: Message) -> str | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        value = payload[0].get("Message-ID")
        return str(value).strip() or None if value is not None else None
    return None


def _headers_message_id(part: Message) -> str | None:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return None
    headers = HeaderParser().parsestr(payload.decode("utf-8", "replace"))
    value = headers.get("Message-ID")
    return str(value).strip() or None if value is not None else None
