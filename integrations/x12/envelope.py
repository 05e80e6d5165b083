"""Envelope walking and element access shared by the 270 and 271 readers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from integrations.x12.tokenizer import X12Error

Segment = list[str]

_ENVELOPE = frozenset({"ISA", "IEA", "GS", "GE"})


@dataclass(frozen=True, slots=True)
class Transaction:
    """One ST..SE set: its segments with their 1-based position in the interchange."""

    segments: list[tuple[int, Segment]]
    group_date: date | None  # GS04, the date the group was created


def element(segment: Segment, index: int) -> str:
    """Element `index` (1-based like the X12 names, EB03 is 3) stripped, or "" when absent."""
    return segment[index].strip() if index < len(segment) else ""


def optional(segment: Segment, index: int) -> str | None:
    """Like `element`, but None for an empty or absent element."""
    return element(segment, index) or None


def transactions(segments: list[Segment], transaction_set: str) -> list[Transaction]:
    """Split an interchange into its ST..SE sets, refusing any set of another kind."""
    found: list[Transaction] = []
    current: list[tuple[int, Segment]] | None = None
    group_date: date | None = None
    for position, segment in enumerate(segments, start=1):
        tag = segment[0].strip()
        if tag == "ST":
            kind = element(segment, 1)
            if kind != transaction_set:
                shown = kind if kind.isascii() and kind.isdigit() and len(kind) == 3 else "other"
                raise X12Error(
                    f"segment {position}: transaction set {shown} is not a {transaction_set}"
                )
            current = []
            found.append(Transaction(current, group_date))
        elif tag == "SE" or tag in _ENVELOPE:
            # A missing SE (truncated or concatenated files) ends the set at the next envelope.
            current = None
            if tag == "GS":
                group_date = parse_date(element(segment, 4))
        elif current is not None:
            current.append((position, segment))
    if not found:
        raise X12Error(f"not a {transaction_set}: the interchange has no ST transaction set")
    return found


def parse_date(value: str) -> date | None:
    """CCYYMMDD (or the date part of CCYYMMDDHHMM) to a date; None when it is not one."""
    text = value[:8]
    if len(text) != 8 or not (text.isascii() and text.isdigit()):
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def parse_period(fmt: str, value: str) -> tuple[date, date] | None:
    """A DTP D8/DT/RD8 value as (begin, end); a single date is its own begin and end."""
    if fmt == "RD8":
        begin_text, dash, end_text = value.partition("-")
        begin, end = parse_date(begin_text), parse_date(end_text)
        if not dash or len(begin_text) != 8 or len(end_text) != 8 or begin is None or end is None:
            return None
        return begin, end
    if fmt in ("D8", "DT"):
        single = parse_date(value)
        return None if single is None else (single, single)
    return None
