"""Reading one inbound message: who sent it, to whom, its text, attachments and forwards.

`parse_mail` never raises. `email.policy.default` builds the MIME tree and is
tried first; a message whose tree it cannot walk is read again with `compat32`
(the per-message fallback). Header values are read from the raw fields with a
lenient decoder, one header at a time, because `policy.default`'s header
classes raise on, or rewrite, headers real mail carries (Exchange's `<[…]>`
Message-IDs, a newline inside an RFC 2047 word, unknown charsets). What cannot
be read at all comes back as `Unreadable` with a reason naming no content.

Delivery status notifications (RFC 3464) are read by `office.mail.dsn` from the
same tree.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy as email_policy
from email.header import decode_header
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from functools import lru_cache
from html.parser import HTMLParser

from office.mail.dsn import DeliveryReport, read_report
from office.messages import MIME_HEADERS, SharedHeaders

__all__ = ["Attachment", "Parsed", "Unreadable", "parse_mail"]

MAX_TEXT = 50_000
"""Characters of body text kept for the rules; the raw message keeps the rest."""
MAX_DEPTH = 12
"""Nested parts walked; deeper ones are counted as a defect, never followed."""
MAX_FORWARDS = 3
"""message/rfc822 parts read as forwards (the first gives the original sender)."""

_ADDRESS_HEADERS = ("to", "cc", "delivered-to", "x-original-to", "envelope-to")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_ENCODED_WORD = "=?"
_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote"}
)


@dataclass(frozen=True, slots=True)
class Attachment:
    """What an attachment is, never what it says: name, MIME type, decoded size."""

    name: str | None
    content_type: str
    size: int


@dataclass(frozen=True, slots=True)
class Parsed:
    """The parts of a message rules and policies read."""

    message_id: str | None
    sender: str  # From's address, lower case; "" when there is none
    return_path: str | None  # None: no Return-Path; "": the null sender <>
    recipients: tuple[str, ...]  # To, Cc, Delivered-To, X-Original-To, lower case
    subject: str
    date: datetime | None
    headers: dict[str, tuple[str, ...]]  # lower-case name -> decoded values
    text: str
    attachments: tuple[Attachment, ...] = ()
    forwarded: Parsed | None = None
    report: DeliveryReport | None = None
    defects: tuple[str, ...] = ()
    fallback: bool = False  # compat32 read it

    def header(self, name: str) -> str | None:
        """The first value of a header, decoded; None when absent."""
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def all_text(self) -> str:
        """This message's text and its forwards', for body rules."""
        if self.forwarded is None:
            return self.text
        return f"{self.text}\n{self.forwarded.all_text}"

    @property
    def original_sender(self) -> str:
        """The sender inside a forward, else this message's sender."""
        inner = self.forwarded
        while inner is not None and inner.forwarded is not None and not inner.sender:
            inner = inner.forwarded
        return inner.sender if inner is not None and inner.sender else self.sender


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A payload that is not a readable message, and why (no content in the reason)."""

    reason: str


# Reading a part's type, charset, disposition, file name and transfer encoding reads the
# same few headers over and over: parsed once per value (office.messages.SharedHeaders).
_DEFAULT = BytesParser(
    policy=email_policy.default.clone(header_factory=SharedHeaders(MIME_HEADERS, limit=4096))
)
_COMPAT = BytesParser(policy=email_policy.compat32)


def parse_mail(raw: bytes) -> Parsed | Unreadable:
    """Read a message; never raises (see the module docstring)."""
    if not raw.strip():
        return Unreadable("empty message")
    first_error = ""
    for parser, fallback in ((_DEFAULT, False), (_COMPAT, True)):
        try:
            message = parser.parsebytes(raw)
            parsed = _read(message, depth=0, fallback=fallback)
        except Exception as exc:  # the parser is fed hostile input; any failure falls back
            first_error = first_error or type(exc).__name__
            continue
        if not parsed.headers:
            return Unreadable("no header fields: not an email message")
        return parsed
    return Unreadable(f"unreadable MIME structure ({first_error})")


def _read(message: Message, *, depth: int, fallback: bool) -> Parsed:
    headers = _headers(message)
    defects = [type(defect).__name__ for defect in getattr(message, "defects", ())]
    texts: list[str] = []
    htmls: list[str] = []
    attachments: list[Attachment] = []
    forwards: list[Parsed] = []
    report: DeliveryReport | None = None
    if message.get_content_type() == "multipart/report":
        report = read_report(message)
    _walk(message, depth, fallback, texts, htmls, attachments, forwards, defects)
    text = "\n".join(texts) if texts else "\n".join(html_to_text(h) for h in htmls)
    return Parsed(
        message_id=_message_id(headers),
        sender=_first_address(headers.get("from", ())),
        return_path=_return_path(headers.get("return-path", ())),
        recipients=tuple(
            dict.fromkeys(
                address
                for name in _ADDRESS_HEADERS
                for address in _addresses(headers.get(name, ()))
            )
        ),
        subject=headers.get("subject", ("",))[0],
        date=_date(headers.get("date", ())),
        headers=headers,
        text=text[:MAX_TEXT],
        attachments=tuple(attachments),
        forwarded=forwards[0] if forwards else None,
        report=report,
        defects=tuple(dict.fromkeys(defects)),
        fallback=fallback,
    )


def _walk(
    part: Message,
    depth: int,
    fallback: bool,
    texts: list[str],
    htmls: list[str],
    attachments: list[Attachment],
    forwards: list[Parsed],
    defects: list[str],
) -> None:
    """Collect text, HTML, attachments and forwards; parts past MAX_DEPTH are not followed."""
    if depth > MAX_DEPTH:
        defects.append("NestedTooDeep")
        return
    kind = part.get_content_type()
    if part.is_multipart():
        payload = part.get_payload()
        if kind == "message/rfc822" or (kind.startswith("message/") and isinstance(payload, list)):
            _message_part(part, depth, fallback, attachments, forwards, defects)
            return
        if isinstance(payload, list):
            for child in payload:
                if isinstance(child, Message):
                    _walk(child, depth + 1, fallback, texts, htmls, attachments, forwards, defects)
        return
    disposition = (part.get_content_disposition() or "").lower()
    name = _filename(part)
    if disposition != "attachment" and name is None and kind in ("text/plain", "text/html"):
        body = _decoded_text(part)
        (texts if kind == "text/plain" else htmls).append(body)
        return
    if kind in ("message/delivery-status", "text/rfc822-headers"):
        return  # read by office.mail.dsn
    attachments.append(Attachment(name=name, content_type=kind, size=_size(part)))


def _message_part(
    part: Message,
    depth: int,
    fallback: bool,
    attachments: list[Attachment],
    forwards: list[Parsed],
    defects: list[str],
) -> None:
    inner = part.get_payload()
    if not isinstance(inner, list) or not inner or not isinstance(inner[0], Message):
        return
    kind = part.get_content_type()
    if kind == "message/rfc822":
        if len(forwards) < MAX_FORWARDS:
            forwards.append(_read(inner[0], depth=depth + 1, fallback=fallback))
        else:
            defects.append("TooManyForwards")
        attachments.append(Attachment(name=_filename(part), content_type=kind, size=0))


def _headers(message: Message) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        key = str(name).strip().lower()
        if not key:
            continue
        found.setdefault(key, []).append(decode_value(value))
    return {key: tuple(values) for key, values in found.items()}


def decode_value(value: object) -> str:
    """One header value as text: unfolded, RFC 2047 words decoded, bad bytes replaced."""
    text = str(value)
    text = _FOLD.sub("", text).replace("\x00", "")
    if not text.isascii():
        # BytesParser keeps 8-bit header bytes as surrogates; most such mail is UTF-8.
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if _ENCODED_WORD not in text:
        return text.strip()
    try:
        pieces = []
        for chunk, charset in decode_header(text):
            if isinstance(chunk, str):
                pieces.append(chunk)
            else:
                pieces.append(_decode_bytes(chunk, charset))
        return "".join(pieces).strip()
    except Exception:  # a malformed encoded word: keep the raw text rather than nothing
        return text.strip()


def _decode_bytes(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "ascii", "replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", "replace")


def _decoded_text(part: Message) -> str:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        return ""
    if not isinstance(data, bytes):
        return ""
    return _decode_bytes(data, part.get_content_charset() or "utf-8").replace("\x00", "")


def _size(part: Message) -> int:
    try:
        data = part.get_payload(decode=True)
    except Exception:
        return 0
    return len(data) if isinstance(data, bytes) else 0


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    if not name:
        return None
    return decode_value(name)[:200] or None


@lru_cache(maxsize=2048)
def _addresses(values: tuple[str, ...]) -> tuple[str, ...]:
    """The addresses in these header values, lower case (the same values recur: memoised)."""
    if not values:
        return ()
    try:
        pairs = getaddresses(list(values))
    except Exception:
        return ()
    return tuple(address.strip().lower() for _, address in pairs if "@" in address)


def _first_address(values: tuple[str, ...]) -> str:
    found = _addresses(values[:1])
    return found[0] if found else ""


def _return_path(values: tuple[str, ...]) -> str | None:
    if not values:
        return None
    value = values[-1].strip()
    if value in ("<>", ""):
        return ""
    found = _addresses((value,))
    return found[0] if found else ""


def _message_id(headers: dict[str, tuple[str, ...]]) -> str | None:
    values = headers.get("message-id")
    if not values:
        return None
    value = values[0].strip()
    return value[:250] or None


def _date(values: tuple[str, ...]) -> datetime | None:
    if not values:
        return None
    try:
        moment = parsedate_to_datetime(values[0])
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # "-0000": the zone is unknown; read as UTC
    return moment.astimezone(UTC)


class _Text(HTMLParser):
    """Text of an HTML body, for rules: scripts and styles dropped, blocks on new lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head") and self._skip:
            self._skip -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


_SPACES = re.compile(r"[ \t\r\f\v\xa0]+")
_LINES = re.compile(r"\n\s*\n+")


def html_to_text(source: str) -> str:
    """Readable text from an HTML body; never raises."""
    reader = _Text()
    try:
        reader.feed(source)
        reader.close()
    except Exception:  # HTMLParser is lenient; this guards its rare assertion paths
        return html.unescape(re.sub(r"<[^>]*>", " ", source))
    text = _SPACES.sub(" ", "".join(reader.parts))
    return _LINES.sub("\n\n", text).strip()
