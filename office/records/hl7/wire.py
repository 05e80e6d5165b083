"""HL7 v2 as it arrives: bytes to a message whose fields can be read, through the `hl7` library.

The encoding characters come from MSH-1 and MSH-2 of each message, never assumed to be
``|^~\\&``; the character set from MSH-18 (UTF-8 when it names none, then Windows-1252 and
Latin-1 for the senders that never say). Fields keep their raw text, and escape sequences
(``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``, ``\\Xhh\\``, formatting) are undone when a field is read:
a malformed sequence in a field nothing reads does not stop the message, and one in a field
that is read is an error naming that field. A field of exactly ``""`` is HL7's "delete this
value" and is kept as such (`Field.cleared`); an empty field means "no change".

The library splits the text; its `unescape` is called only on sequences checked here first,
because it logs the field it cannot decode (patient data) through a deprecated call.
`Hl7Error` says where a message is wrong, never what it holds.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, Final

import hl7
from hl7.util import unescape

__all__ = [
    "CLEARED",
    "Encoding",
    "Field",
    "Header",
    "Hl7Error",
    "Hl7Message",
    "Repetition",
    "Segment",
    "decode",
    "parse_message",
    "read_header",
]

CLEARED: Final = '""'
"""A field (or component) sent as two double quotes: delete the stored value."""

# HL7 table 0211 (MSH-18) names we can read, and the Python codec for each.
_CHARSETS: Final = {
    "ASCII": "ascii",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "8859/1": "iso8859-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "BIG-5": "big5",
    "GB 18030-2000": "gb18030",
    "KS X 1001": "euc_kr",
}
_GUESSES: Final = ("utf-8", "cp1252", "iso8859-1")
_SEGMENT_NAME = re.compile(r"[A-Z][A-Z0-9]{2}")
# The escape sequences the library's `unescape` decodes without logging: separators,
# highlighting (dropped), hex bytes, and the formatting commands of 2.10.6.
_SEQUENCE = re.compile(
    r"[FSTREHN]|X(?:[0-9A-Fa-f]{2})+|\.(?:br|fi|nf|ce)|\.(?:sp|in|ti|sk)(?:[+-]?[0-9]{1,3})?"
)
_HIGHLIGHT_OFF = {"H": "", "N": ""}
MAX_FIELD_NUMBER: Final = 200


class Hl7Error(ValueError):
    """The message cannot be read as HL7 v2; `where` names the segment or field, never a value."""

    def __init__(self, reason: str, *, where: str = "") -> None:
        super().__init__(f"{where}: {reason}" if where else reason)
        self.reason = reason
        self.where = where


@dataclass(frozen=True, slots=True)
class Encoding:
    """The five delimiters a message declares in MSH-1 and MSH-2."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @property
    def characters(self) -> str:
        """MSH-2 as this encoding writes it."""
        return self.component + self.repetition + self.escape + self.subcomponent

    def escape_text(self, text: str) -> str:
        """`text` with each delimiter written as its escape sequence, for a field we compose."""
        out = []
        for char in text:
            if char == self.escape:
                out.append(f"{self.escape}E{self.escape}")
            elif char == self.field:
                out.append(f"{self.escape}F{self.escape}")
            elif char == self.component:
                out.append(f"{self.escape}S{self.escape}")
            elif char == self.subcomponent:
                out.append(f"{self.escape}T{self.escape}")
            elif char == self.repetition:
                out.append(f"{self.escape}R{self.escape}")
            elif char in "\r\n":
                out.append(" ")
            else:
                out.append(char)
        return "".join(out)


@dataclass(frozen=True, slots=True)
class Repetition:
    """One occurrence of a field: its components, each a tuple of raw subcomponents."""

    components: tuple[tuple[str, ...], ...]
    where: str
    # The library's container that knows the delimiters, for its `unescape`.
    context: Any = dataclasses.field(compare=False, repr=False)

    def raw(self, component: int = 1, sub: int = 1) -> str:
        """The text as sent, escapes and all; "" when absent."""
        if component > len(self.components):
            return ""
        subs = self.components[component - 1]
        return subs[sub - 1] if sub <= len(subs) else ""

    def text(self, component: int = 1, sub: int = 1) -> str:
        """The value with escape sequences undone, surrounding blanks trimmed."""
        return _unescape(self.raw(component, sub), self.context, f"{self.where}.{component}")

    def cleared(self, component: int = 1) -> bool:
        """Whether this component was sent as `""` (delete)."""
        return self.raw(component).strip() == CLEARED

    @property
    def blank(self) -> bool:
        return not any(s.strip() for subs in self.components for s in subs)


@dataclass(frozen=True, slots=True)
class Field:
    """A field's repetitions; blank when nothing was sent, `cleared` when it was `""`."""

    repetitions: tuple[Repetition, ...]
    where: str

    @property
    def blank(self) -> bool:
        return all(r.blank for r in self.repetitions)

    @property
    def cleared(self) -> bool:
        reps = self.repetitions
        return len(reps) == 1 and len(reps[0].components) == 1 and reps[0].cleared()

    @property
    def present(self) -> tuple[Repetition, ...]:
        """The repetitions that carry something."""
        return tuple(r for r in self.repetitions if not r.blank)

    def text(self, component: int = 1, sub: int = 1) -> str:
        """The first repetition's value (see `Repetition.text`); "" when blank."""
        return self.repetitions[0].text(component, sub) if self.repetitions else ""


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment: its name and fields, numbered from 1 as the standard numbers them."""

    name: str
    fields: tuple[Field, ...]
    label: str  # "PID", or "IN1(2)" for the second IN1

    def __getitem__(self, number: int) -> Field:
        if 1 <= number <= len(self.fields):
            return self.fields[number - 1]
        return Field((), f"{self.label}-{number}")


@dataclass(frozen=True, slots=True)
class Header:
    """What MSH says about the message: who sent it, what it is, its control id."""

    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    sent_at: str  # MSH-7 as sent (a DTM)
    message_code: str  # MSH-9.1: ADT, SIU
    trigger: str  # MSH-9.2: A08, S12
    structure: str  # MSH-9.3, may be empty
    control_id: str  # MSH-10, the sender's dedupe key
    processing_id: str  # MSH-11: P, T, D
    version: str  # MSH-12
    charset: str  # MSH-18, "" when unsaid

    @property
    def message_type(self) -> str:
        """ "ADT^A08" in the standard's notation, whatever the sender's delimiters."""
        return f"{self.message_code}^{self.trigger}" if self.trigger else self.message_code


@dataclass(frozen=True, slots=True)
class Hl7Message:
    """A parsed message: its delimiters, MSH as a `Header`, and every segment in order."""

    encoding: Encoding
    header: Header
    segments: tuple[Segment, ...]

    def all(self, name: str) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.name == name)

    def first(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)


def decode(body: bytes) -> str:
    """The message's text in the character set MSH-18 names, else the usual guesses."""
    head = body.lstrip()[:2048].split(b"\r", 1)[0].split(b"\n", 1)[0].decode("iso8859-1")
    charset = _msh18(head)
    if charset:
        codec = _CHARSETS.get(charset.upper())
        if codec is None:
            raise Hl7Error("names a character set this receiver does not read", where="MSH-18")
        try:
            return body.decode(codec)
        except UnicodeDecodeError:
            raise Hl7Error("bytes outside the character set it names", where="MSH-18") from None
    for codec in _GUESSES:
        try:
            return body.decode(codec)
        except UnicodeDecodeError:
            continue
    raise AssertionError("iso8859-1 decodes every byte")  # pragma: no cover


def read_header(body: bytes) -> tuple[Encoding, Header]:
    """Only what the MLLP listener needs to store and acknowledge: delimiters and MSH."""
    text = _segments_text(decode(body))
    first = text.split("\r", 1)[0]
    encoding = _encoding(first)
    return encoding, _header(_library_parse(first), encoding)


def parse_message(body: bytes) -> Hl7Message:
    """The whole message; `Hl7Error` when it is not one readable HL7 v2 message."""
    text = _segments_text(decode(body))
    encoding = _encoding(text)
    if f"\rMSH{encoding.field}" in text:
        raise Hl7Error("more than one message in one payload (a second MSH)")
    parsed = _library_parse(text)
    seen: dict[str, int] = {}
    segments = []
    for number, raw in enumerate(parsed, start=1):
        name = str(raw[0][0]) if raw and raw[0] else ""
        if _SEGMENT_NAME.fullmatch(name) is None:
            raise Hl7Error(f"segment {number} has no valid name")
        seen[name] = seen.get(name, 0) + 1
        label = name if seen[name] == 1 else f"{name}({seen[name]})"
        segments.append(_segment(name, raw, label, parsed))
    return Hl7Message(encoding, _header(parsed, encoding), tuple(segments))


# --- inside -------------------------------------------------------------------------------


def _msh18(head: str) -> str:
    if not head.startswith("MSH") or len(head) < 8:
        return ""
    parts = head.split(head[3])
    if len(parts) < 18 or len(parts[1]) < 2:
        return ""
    return parts[17].split(parts[1][1], 1)[0].strip()


def _segments_text(text: str) -> str:
    """Segments joined by CR alone: senders end lines with CR, LF or CRLF; blank lines go."""
    text = text.replace("\r\n", "\r").replace("\n", "\r").strip(" \t\r\x0b\x1c\x00")
    return "\r".join(line for line in text.split("\r") if line.strip())


def _encoding(text: str) -> Encoding:
    if not text.startswith("MSH"):
        raise Hl7Error("does not begin with an MSH segment", where="MSH")
    if len(text) < 9:
        raise Hl7Error("MSH is too short to hold its delimiters", where="MSH")
    field = text[3]
    end = text.find(field, 4)
    characters = text[4:end] if end != -1 else ""
    if len(characters) not in (4, 5):  # v2.7 adds a fifth, the truncation character
        raise Hl7Error("needs four encoding characters", where="MSH-2")
    delimiters = field + characters
    if len(set(delimiters)) != len(delimiters) or any(
        c.isalnum() or c.isspace() or not c.isprintable() for c in delimiters
    ):
        raise Hl7Error("delimiters must be distinct printable punctuation", where="MSH-2")
    return Encoding(field, characters[0], characters[1], characters[2], characters[3])


def _library_parse(text: str) -> Any:
    try:
        return hl7.parse(text)
    except Exception:
        # The library's messages quote the segment they stopped at: patient data.
        raise Hl7Error("the HL7 parser could not split it into segments") from None


def _segment(name: str, raw: Any, label: str, context: Any) -> Segment:
    first = 3 if name == "MSH" else 1  # MSH-1 and MSH-2 are the delimiters, kept raw
    fields: list[Field] = []
    if name == "MSH":
        fields += [Field((), "MSH-1"), Field((), "MSH-2")]
    for number in range(first, min(len(raw), MAX_FIELD_NUMBER + 1)):
        where = f"{label}-{number}"
        fields.append(Field(tuple(_repetitions(raw[number], where, context)), where))
    return Segment(name, tuple(fields), label)


def _repetitions(value: Any, where: str, context: Any) -> list[Repetition]:
    """The library's tree (a str where nothing was split) as tuples at every level."""
    out = []
    for rep in value:
        if isinstance(rep, str):
            components: tuple[tuple[str, ...], ...] = ((rep,),)
        else:
            components = tuple(
                (part,) if isinstance(part, str) else tuple(str(s) for s in part) for part in rep
            )
        out.append(Repetition(components, where, context))
    return out


def _unescape(raw: str, context: Any, where: str) -> str:
    escape = context.esc
    if escape not in raw:
        return raw.strip()
    parts = raw.split(escape)
    if len(parts) % 2 == 0:
        raise Hl7Error("an escape sequence is not closed", where=where)
    for sequence in parts[1::2]:
        if _SEQUENCE.fullmatch(sequence) is None:
            raise Hl7Error("an escape sequence this receiver does not decode", where=where)
    return str(unescape(context, raw, _HIGHLIGHT_OFF)).strip()


def _header(parsed: Any, encoding: Encoding) -> Header:
    msh = _segment("MSH", parsed[0], "MSH", parsed)

    def text(number: int, component: int = 1) -> str:
        return msh[number].text(component)

    control_id = text(10)
    if not control_id:
        raise Hl7Error("the message control id is empty", where="MSH-10")
    code = text(9, 1)
    if not code:
        raise Hl7Error("the message type is empty", where="MSH-9")
    return Header(
        sending_application=_hd(msh[3]),
        sending_facility=_hd(msh[4]),
        receiving_application=_hd(msh[5]),
        receiving_facility=_hd(msh[6]),
        sent_at=text(7),
        message_code=code.upper(),
        trigger=text(9, 2).upper(),
        structure=text(9, 3).upper(),
        control_id=control_id,
        processing_id=text(11),
        version=text(12),
        charset=text(18),
    )


def _hd(field: Field) -> str:
    """An HD (hierarchic designator): its namespace id, else its universal id."""
    return field.text(1) or field.text(2)
