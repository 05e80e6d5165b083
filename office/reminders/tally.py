"""Counting a run's messages per (kind, channel, outcome): the flow's summary and artifact rows."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Tally"]


@dataclass
class Tally:
    """Counts per (kind, channel, outcome): the artifact's rows and the flow's summary."""

    cells: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def add(self, kind: str, channel: str, outcome: str, n: int = 1) -> None:
        self.cells[(kind, channel, outcome)] += n

    def merge(self, other: Tally | dict[str, int]) -> Tally:
        if isinstance(other, Tally):
            self.cells.update(other.cells)
        else:
            for name, n in other.items():
                kind, channel, outcome = name.split("/")
                self.cells[(kind, channel, outcome)] += n
        return self

    def to_dict(self) -> dict[str, int]:
        """`kind/channel/outcome` -> count; what tasks hand back to the flow."""
        return {"/".join(cell): n for cell, n in sorted(self.cells.items())}

    def total(self, outcome: str) -> int:
        return sum(n for (_, _, seen), n in self.cells.items() if seen == outcome)

    def flat(self) -> dict[str, int]:
        """`sent_email`, `sent_sms`, sent per kind, and every other outcome in total."""
        out: Counter[str] = Counter()
        for (kind, channel, outcome), n in self.cells.items():
            if outcome == "sent":
                out[f"sent_{channel}"] += n
                out[kind] += n
            else:
                out[outcome] += n
        for name in ("sent_email", "sent_sms", "skipped"):
            out.setdefault(name, 0)
        return dict(sorted(out.items()))

    def rows(self) -> list[dict[str, Any]]:
        """One row per kind, channel and outcome: no PHI, fit for an artifact."""
        return [
            {"kind": kind, "channel": channel, "outcome": outcome, "count": n}
            for (kind, channel, outcome), n in sorted(self.cells.items())
        ]
