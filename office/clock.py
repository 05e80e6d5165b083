"""Instants and batches: the two small helpers every service uses.

Instants are timezone-aware UTC everywhere in the domain; a wall-clock time without an
offset (a form in Prefect's UI, a CLI option) is read in the practice's zone, never
guessed as UTC.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

__all__ = ["CHUNK", "as_utc", "chunks"]

# Bound parameters per IN (...) list; far below any backend's limit.
CHUNK = 500
_T = TypeVar("_T")


def as_utc(moment: datetime, zone: str) -> datetime:
    """The UTC instant `moment` names; without an offset it is wall-clock time in `zone`."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(UTC)


def chunks(items: Sequence[_T], size: int = CHUNK) -> Iterator[Sequence[_T]]:
    """`items` in consecutive slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
