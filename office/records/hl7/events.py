"""Which HL7 v2 events officeflows reads, and what each one becomes."""

from __future__ import annotations

from typing import Final

__all__ = ["ADT_EVENTS", "SIU_EVENTS", "SUPPORTED_EVENTS"]

# A04 register, A08 update, A28 add person, A31 update person, A40 merge (a review item).
ADT_EVENTS: Final = frozenset({"A04", "A08", "A28", "A31", "A40"})
# S12 new, S13 rescheduled, S14 modified, S15 cancelled, S17 deleted, S26 no-show.
SIU_EVENTS: Final = frozenset({"S12", "S13", "S14", "S15", "S17", "S26"})
SUPPORTED_EVENTS: Final = frozenset(
    {("ADT", e) for e in ADT_EVENTS} | {("SIU", e) for e in SIU_EVENTS}
)
