"""Outbound message building: the MIME email, its stable Message-ID, and SMS text budgets.

Pure functions with no I/O, so the outbox writer and the send task can rebuild
exactly the same bytes on a retry. `build_email` builds the message as an
`EmailMessage`; `invitation_wire` writes the same message's wire bytes straight from
its parts, at a tenth of the cost, for the send loop (a test holds the two byte for byte).
"""

from __future__ import annotations

import binascii
import email.policy
import functools
import hashlib
import re
import unicodedata
from datetime import UTC, datetime
from email import quoprimime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses
from typing import Literal, TypedDict

from office.contracts.mail import Envelope, Wire

__all__ = [
    "MIME_HEADERS",
    "POLICY",
    "SMS_MAX_SEPTETS",
    "Invitation",
    "SharedHeaders",
    "address_domain",
    "build_email",
    "gsm7_length",
    "invitation_wire",
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
    _check_message_id(message_id)
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


class Invitation(TypedDict):
    """An email with a calendar invitation by part, for `build_email` or `invitation_wire`."""

    message_id: str
    sender: str
    to: str
    subject: str
    text: str
    html: str
    ics: bytes
    method: Literal["REQUEST", "CANCEL"]
    date: datetime


def invitation_wire(
    *,
    message_id: str,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    ics: bytes,
    method: Literal["REQUEST", "CANCEL"],
    date: datetime,
) -> Wire:
    """`to_wire(build_email(...))` of an email with an invitation, written from its parts.

    The layout, the part headers and their order are constant, and so are most
    header lines: only the addresses, the subject, the boundaries and the bodies
    change from message to message. Bodies are encoded by the same standard-library
    functions `build_email` uses; a header line that is not plain ASCII, or too long
    for one line, is folded by the standard header classes, as `to_wire` would.

    Raises:
        ValueError: as `build_email`, or the message has no From or To address.
    """
    _check_message_id(message_id)
    if method not in _CALENDAR_PART:
        raise ValueError("method must be REQUEST or CANCEL")
    _check_method(ics, method)
    id_line, read_id = _header("Message-ID", message_id)
    from_line, senders = _address_header("From", sender)
    to_line, found = _address_header("To", to)
    recipients = tuple(address for address in found if address)
    if not senders or not senders[0]:
        raise ValueError("message has no From address")
    if not recipients:
        raise ValueError("message has no recipient")
    mixed, alternative = _boundaries(message_id)
    data = b"".join(
        (
            id_line,
            _header("Date", format_datetime(date))[0],
            from_line,
            to_line,
            _header("Subject", subject)[0],
            b"Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="%s"\r\n\r\n--%s\r\n'
            b'Content-Type: multipart/alternative; boundary="%s"\r\n\r\n--%s\r\n'
            % (mixed, mixed, alternative, alternative),
            _TEXT_PART,
            _quoted_printable(text),
            b"\r\n--%s\r\n" % alternative,
            _HTML_PART,
            _quoted_printable(html),
            b"\r\n--%s\r\n" % alternative,
            _CALENDAR_PART[method],
            _quoted_printable(ics.decode("utf-8")),
            b"\r\n--%s--\r\n\r\n--%s\r\n" % (alternative, mixed),
            _ATTACHMENT_PART,
            _base64(ics),
            b"\r\n--%s--\r\n" % mixed,
        )
    )
    return Wire(Envelope(read_id.strip(), senders[0], recipients), data)


_QP = b'; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n'
_TEXT_PART = b"Content-Type: text/plain" + _QP + b"\r\n"
_HTML_PART = b"Content-Type: text/html" + _QP + b"MIME-Version: 1.0\r\n\r\n"
_CALENDAR_PART = {
    method: b"Content-Transfer-Encoding: quoted-printable\r\n"
    b'Content-Type: text/calendar; charset="utf-8"; method="%s"\r\n'
    b"MIME-Version: 1.0\r\n\r\n" % method.encode("ascii")
    for method in ("REQUEST", "CANCEL")
}
_ATTACHMENT_PART = (
    b"Content-Type: application/ics\r\nContent-Transfer-Encoding: base64\r\n"
    b'Content-Disposition: attachment; filename="invite.ics"\r\nMIME-Version: 1.0\r\n\r\n'
)
_LINE = 78  # the policies' max_line_length
_BASE64_CHUNK = _LINE // 4 * 3  # bytes per base64 line, as the standard encoder splits them

# Header values whose line is exactly the value as given: the parsed form prints back the same.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_PLAIN = {
    "Message-ID": re.compile(rf"<{_DOT_ATOM}@{_DOT_ATOM}>"),
    "Date": re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}"),
    "From": re.compile(rf"{_DOT_ATOM}@{_DOT_ATOM}"),
    "To": re.compile(rf"{_DOT_ATOM}@{_DOT_ATOM}"),
    "Subject": re.compile(r"(?:[!-~]+ )*[!-~]+"),
}


def _plain(name: str, value: str) -> bool:
    """True when the header's line is `name: value` as given (short, ASCII, no encoded word)."""
    return (
        len(name) + 2 + len(value) <= _LINE
        and "=?" not in value
        and _PLAIN[name].fullmatch(value) is not None
    )


def _header(name: str, value: str) -> tuple[bytes, str]:
    """One header line, CRLF-terminated, as `to_wire` folds it, and its value as read back."""
    if _plain(name, value):
        return f"{name}: {value}\r\n".encode("ascii"), value
    return _folded(name, value)


def _address_header(name: str, value: str) -> tuple[bytes, tuple[str, ...]]:
    """An address header's line, and its addresses as `envelope_of` reads them."""
    if _plain(name, value):
        return f"{name}: {value}\r\n".encode("ascii"), (value,)
    return _folded_addresses(name, value)


@functools.lru_cache(maxsize=256)
def _folded_addresses(name: str, value: str) -> tuple[bytes, tuple[str, ...]]:
    line, read = _folded(name, value)
    return line, tuple(address for _, address in getaddresses([read]))


@functools.lru_cache(maxsize=256)
def _folded(name: str, value: str) -> tuple[bytes, str]:
    """The line the standard header classes fold, and the value as they read it back.

    Cached: a practice's From line repeats on every message it sends.
    """
    _, header = POLICY.header_store_parse(name, value)
    return _FOLDING.fold_binary(name, header), str(header)


_FOLDING = email.policy.SMTP


def _quoted_printable(text: str) -> bytes:
    """A text part's body as `set_content(..., cte="quoted-printable")` encodes it, CRLF lines."""
    body = b"\n".join(text.encode("utf-8").splitlines()) + b"\n"
    encoded: str = quoprimime.body_encode(body.decode("latin-1"), _LINE)
    return encoded.replace("\n", "\r\n").encode("ascii")


def _base64(data: bytes) -> bytes:
    """An attachment's body as `add_attachment` encodes it, CRLF lines."""
    return b"".join(
        binascii.b2a_base64(data[at : at + _BASE64_CHUNK])
        for at in range(0, len(data), _BASE64_CHUNK)
    ).replace(b"\n", b"\r\n")


def _boundaries(message_id: str) -> tuple[bytes, bytes]:
    """The outer and inner boundaries `_fix_boundaries` gives an invitation's message."""
    stem = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:24]
    return f"=_{stem}.0".encode("ascii"), f"=_{stem}.1".encode("ascii")


def _fix_boundaries(message: EmailMessage, message_id: str) -> None:
    """Name each multipart boundary after the Message-ID, so a rebuild is byte-identical.

    "=_" cannot occur in quoted-printable or base64 text, the only encodings
    these parts use, so the boundary never collides with a body.
    """
    stem = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:24]
    for index, part in enumerate(message.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_{stem}.{index}")


def _check_message_id(message_id: str) -> None:
    if not _MSGID.fullmatch(message_id):
        raise ValueError("message_id must look like <local@domain>")


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
