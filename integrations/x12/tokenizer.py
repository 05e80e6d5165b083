"""Split an X12 interchange into segments using the separators its own ISA declares.

Real files break the fixed-width ISA, terminate segments with `~`, a bare CR or 0x1D, indent
after terminators and sometimes lose a terminator; the tokenizer copes with all of those and
stays linear in the input size (only `str.split`/`str.strip`, no regular expressions).
"""

from __future__ import annotations

from dataclasses import dataclass

ISA_LENGTH = 106
# Where the element separator sits in a fixed-width ISA (ISA01..ISA16 boundaries).
_ISA_ELEMENT_POSITIONS = (3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103)
_ISA_ELEMENTS = 16
_BOM = "\ufeff"
_WHITESPACE = " \t\r\n\x0b\x0c"
_ID_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ID_REST = _ID_FIRST | frozenset("0123456789")


class X12Error(ValueError):
    """The codec's only error: the input is not the X12 it should be, or cannot be built."""


@dataclass(frozen=True, slots=True)
class Separators:
    """The four delimiters of one interchange; `repetition` is None before 5010 (ISA11 = U)."""

    element: str
    repetition: str | None
    component: str
    segment: str


def _strip_preamble(data: str) -> str:
    """Drop a UTF-8 BOM and leading whitespace, which several real senders prepend."""
    return data.lstrip(_BOM + _WHITESPACE)


def _is_delimiter(char: str) -> bool:
    return len(char) == 1 and not char.isalnum() and char not in _WHITESPACE


def read_separators(data: str) -> Separators:
    """Read the delimiters from the ISA header, positionally when it is 106 chars, else by split."""
    text = _strip_preamble(data)
    if not text.startswith("ISA") or len(text) < 4:
        raise X12Error("not an X12 interchange: no ISA header")
    element = text[3]
    if not _is_delimiter(element):
        raise X12Error("not an X12 interchange: invalid element separator in ISA")
    if len(text) >= ISA_LENGTH and all(text[i] == element for i in _ISA_ELEMENT_POSITIONS):
        isa11, isa12 = text[82], text[84:89]
        component, segment = text[104], text[105]
    else:
        # Senders that mis-pad an ISA field shift every position; splitting still finds ISA16.
        parts = text.split(element, _ISA_ELEMENTS)
        if len(parts) <= _ISA_ELEMENTS or len(parts[_ISA_ELEMENTS]) < 2:
            raise X12Error("not an X12 interchange: ISA header is incomplete")
        isa11, isa12 = parts[11], parts[12]
        component, segment = parts[_ISA_ELEMENTS][0], parts[_ISA_ELEMENTS][1]
    if not _is_delimiter(component):
        raise X12Error("not an X12 interchange: invalid component separator in ISA16")
    if segment.isalnum() or segment in (element, component) or segment in " \t":
        raise X12Error("not an X12 interchange: invalid segment terminator after ISA16")
    if component == element:
        raise X12Error("not an X12 interchange: component separator equals element separator")
    repetition: str | None = None
    # ISA11 is a separator only from 00501 on; in 4010 it is the standards id "U".
    if isa12.strip() == "00501" and _is_delimiter(isa11) and isa11 not in (element, segment):
        repetition = isa11
    return Separators(element, repetition, component, segment)


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # X12 is ASCII in practice; Latin-1 maps every byte, so stray bytes never stop parsing.
        return data.decode("latin-1")


def _starts_segment(line: str, element: str) -> bool:
    """True when `line` opens with a segment id (two or three upper-case chars) and a separator."""
    end = line.find(element, 0, 4)
    if end not in (2, 3):
        return False
    return line[0] in _ID_FIRST and all(char in _ID_REST for char in line[1:end])


def _split_line_breaks(piece: str, element: str) -> list[str]:
    """Recover from a lost terminator: a line that starts a segment is one; others are wraps.

    Fixed-record senders wrap long segments at any column, so a continuation keeps its
    blanks and only the line break itself is dropped. A segment's lines are gathered and
    joined once: appending to a growing string copies it per line, quadratic in its length.
    """
    lines = piece.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[list[str]] = []
    for raw in lines:
        line = raw.lstrip(_WHITESPACE)
        if not line:
            continue
        if out and not _starts_segment(line, element):
            out[-1].append(raw)
        else:
            out.append([line])
    return ["".join(parts).rstrip(_WHITESPACE) for parts in out]


def tokenize(data: bytes | str) -> tuple[Separators, list[list[str]]]:
    """Split an interchange into segments of elements (element 0 is the id).

    Blanks and line breaks around segments are dropped; padding inside elements (the ISA's
    fixed-width fields) is kept, so callers strip values they compare.
    """
    text = _strip_preamble(_decode(data))
    separators = read_separators(text)
    element, terminator = separators.element, separators.segment
    strip = "".join(c for c in _WHITESPACE if c not in (element, terminator))
    terminator_is_line_break = terminator in "\r\n"
    segments: list[list[str]] = []
    for raw in text.split(terminator):
        piece = raw.strip(strip)
        if not piece:
            continue
        if not terminator_is_line_break and ("\n" in piece or "\r" in piece):
            segments.extend(part.split(element) for part in _split_line_breaks(piece, element))
        else:
            segments.append(piece.split(element))
    return separators, segments
