"""Outbound message building: the MIME email, its stable Message-ID, and SMS text budgets.

Pure functions with no I/O, so the outbox writer and the send task can rebuild
exactly the same bytes on a retry.
"""

from __future__ import annotations

import email.policy
import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime

__all__ = [
    "MIME_HEADERS",
    "POLICY",
    "SMS_MAX_SEPTETS",
    "SharedHeaders",
    "address_domain",
    "build_email",
    "gsm7_length",
    "message_id_for",
    "sms_fits",
    "to_gsm7",
]

SMS_MAX_SEPTETS = 160
"""One GSM-7 segment; also the TCPA healthcare exemption's length limit."""

# GSM 03.38 default alphabet (ESC at 0x1B excluded: it only prefixes the extension table).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each costs an escape septet plus its own.
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

# Typography that word processors and phones insert, mapped to GSM-7 look-alikes.
_GSM7_LOOKALIKES = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u2032": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2033": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u2026": "...",
    "\u00a0": " ",
    "\u2007": " ",
    "\u202f": " ",
    "\t": " ",
}

_METHOD_LINE = re.compile(rb"^METHOD(?:;[^:\r\n]*)?:([^\r\n]*)$", re.MULTILINE | re.IGNORECASE)
_FOLD = re.compile(rb"\r?\n[ \t]")

_MSGID_DOMAIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")
_MSGID = re.compile(r"^<[^<>@\s]+@[^<>@\s]+>$")


class SharedHeaders(HeaderRegistry):
    """The standard header registry, minus its two costs per header set.

    The standard one makes a new class on every lookup and parses every value on every
    read, though messages repeat the same structural header values over and over (a
    reminder's MIME structure; the type, charset and disposition a parser reads again
    and again). Header objects are immutable strings, so each header class is made once
    and one parse of a `shared` header's value serves every message that sets it; at
    most `limit` values are kept. A value with a MIME boundary is unique to its message
    but read four or five times while that message is parsed (its type, maintype and
    boundary, by the parser and by the reader): at most `RECENT` of those are kept at once.
    """

    RECENT = 16
    """Boundary-bearing values kept: more than the multiparts one message nests."""

    def __init__(self, shared: frozenset[str], limit: int) -> None:
        super().__init__()
        self._shared = shared
        self._limit = limit
        self._made: dict[str, type[BaseHeader]] = {}
        self._parsed: dict[tuple[str, str], BaseHeader] = {}
        self._recent: dict[tuple[str, str], BaseHeader] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made

    def __call__(self, name: str, value: str) -> BaseHeader:
        key = (name.lower(), value)
        if key[0] not in self._shared:
            return self[name](name, value)
        boundary = "boundary" in value
        kept = self._recent if boundary else self._parsed
        header = kept.get(key)
        if header is None:
            header = self[name](name, value)
            if len(kept) >= (self.RECENT if boundary else self._limit):
                kept.clear()
            kept[key] = header
        return header


MIME_HEADERS = frozenset(
    {"content-disposition", "content-transfer-encoding", "content-type", "mime-version"}
)
"""The structural headers whose values recur from message to message."""

POLICY = email.policy.default.clone(
    header_factory=SharedHeaders(MIME_HEADERS | {"auto-submitted"}, limit=256)
)
"""`email.policy.default`, with header classes made once and structural headers parsed once."""


def gsm7_length(text: str) -> int | None:
    """Septets `text` costs in GSM-7, or None when one character forces UCS-2."""
    septets = 0
    for char in text:
        if char in _GSM7_BASIC:
            septets += 1
        elif char in _GSM7_EXTENSION:
            septets += 2
        else:
            return None
    return septets


def sms_fits(text: str) -> bool:
    """True when `text` is one GSM-7 segment: one emoji would switch it to 70-char UCS-2."""
    septets = gsm7_length(text)
    return septets is not None and septets <= SMS_MAX_SEPTETS


def to_gsm7(text: str) -> str:
    """Fold `text` into GSM-7 so a name like "María" cannot turn an SMS into UCS-2.

    Characters already in GSM-7 are kept; curly quotes, dashes and odd spaces
    become their plain look-alikes; accented letters lose the accent GSM-7 lacks
    ("á" -> "a"); stray combining marks are dropped; anything else becomes "?".
    """
    out: list[str] = []
    # NFC first, so "e" + combining acute becomes the GSM-7 "é" rather than "e?".
    for char in unicodedata.normalize("NFC", text):
        if char in _GSM7_BASIC or char in _GSM7_EXTENSION:
            out.append(char)
        elif char in _GSM7_LOOKALIKES:
            out.append(_GSM7_LOOKALIKES[char])
        elif unicodedata.combining(char):
            continue
        else:
            folded = "".join(
                part
                for part in unicodedata.normalize("NFKD", char)
                if part in _GSM7_BASIC or part in _GSM7_EXTENSION
            )
            out.append(folded or "?")
    return "".join(out)


def address_domain(address: str) -> str:
    """The domain of an email address ("localhost" when it has none)."""
    return address.rpartition("@")[2] or "localhost"


def message_id_for(outbox_key: str, domain: str) -> str:
    """Derive the RFC 5322 Message-ID for an outbox row, so a resend reuses the same id.

    The key is hashed: the id travels in headers and logs, and must carry no PHI.
    """
    if not outbox_key:
        raise ValueError("outbox_key must not be empty")
    if not _MSGID_DOMAIN.fullmatch(domain):
        raise ValueError("domain must be a bare DNS name such as clinic.example")
    digest = hashlib.sha256(outbox_key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def build_email(
    *,
    message_id: str,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    ics: bytes | None,
    method: str | None,
    date: datetime | None = None,
) -> EmailMessage:
    """Assemble the patient email: text and HTML alternatives, plus the invitation if any.

    With `ics`, the layout is the one Google Calendar sends and every major client
    understands: multipart/mixed holding multipart/alternative (text/plain,
    text/html, text/calendar; method=...) and the same file as an `invite.ics`
    attachment for clients that ignore inline calendar parts. The text body must
    stand on its own for recipients whose gateway strips the calendar.

    Args:
        message_id: From `message_id_for`; angle brackets included.
        ics: The `build_ics` bytes, or None for a message without an invitation.
        method: The iTIP method written inside `ics` ("REQUEST" or "CANCEL");
            must match it exactly, since clients trust the MIME parameter.
        date: The Date header; defaults to now in UTC.
    """
    if not _MSGID.fullmatch(message_id):
        raise ValueError("message_id must look like <local@domain>")
    if (ics is None) != (method is None):
        raise ValueError("ics and method must be given together")

    message = EmailMessage(policy=POLICY)
    message["Message-ID"] = message_id
    message["Date"] = format_datetime(date if date is not None else datetime.now(UTC))
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    # RFC 3834: vacation responders and ticket systems must not answer a reminder.
    message["Auto-Submitted"] = "auto-generated"
    # Quoted-printable keeps every part 7-bit, so no server needs 8BITMIME.
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")

    if ics is not None and method is not None:
        _check_method(ics, method)
        message.add_alternative(
            ics.decode("utf-8"),
            subtype="calendar",
            charset="utf-8",
            cte="quoted-printable",
            params={"method": method},
        )
        message.add_attachment(ics, maintype="application", subtype="ics", filename="invite.ics")
    _fix_boundaries(message, message_id)
    return message


def _fix_boundaries(message: EmailMessage, message_id: str) -> None:
    """Name each multipart boundary after the Message-ID, so a rebuild is byte-identical.

    "=_" cannot occur in quoted-printable or base64 text, the only encodings
    these parts use, so the boundary never collides with a body.
    """
    stem = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:24]
    for index, part in enumerate(message.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_{stem}.{index}")


def _check_method(ics: bytes, method: str) -> None:
    """Refuse a Content-Type method that disagrees with the file: clients act on either.

    METHOD is a VCALENDAR property, so it is the one unfolded content line named
    METHOD; scanning for it costs a fraction of parsing the file.
    """
    unfolded = _FOLD.sub(b"", ics).replace(b"\r\n", b"\n")
    if not unfolded.lstrip().upper().startswith(b"BEGIN:VCALENDAR"):
        raise ValueError("ics must be an iCalendar object (BEGIN:VCALENDAR)")
    found = _METHOD_LINE.search(unfolded)
    inside = found.group(1).decode("utf-8", "replace").strip() if found else ""
    if inside != method:
        raise ValueError(f"method {method!r} does not match the calendar's METHOD {inside!r}")
