"""Trying rules on a corpus without touching anything: message -> rule -> queue.

The same parser and classifier as a routing run, so what staff see here is what
routing will do; nothing is stored, sent, linked or flagged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from office.mail.classify import Decision, classify
from office.mail.parse import Parsed, Unreadable, parse_mail
from office.mail.rules import RuleSet

__all__ = ["Trial", "try_rules"]


@dataclass(frozen=True, slots=True)
class Trial:
    """One message's outcome: its decision, or why it would be quarantined."""

    name: str
    decision: Decision | None
    quarantined: str | None = None
    parsed: Parsed | None = None


def try_rules(messages: Iterable[tuple[str, bytes]], rules: RuleSet) -> Iterator[Trial]:
    """Classify each (name, raw bytes) pair; yields one `Trial` each, in order."""
    for name, raw in messages:
        parsed = parse_mail(raw)
        if isinstance(parsed, Unreadable):
            yield Trial(name, None, parsed.reason)
        else:
            yield Trial(name, classify(parsed, rules), parsed=parsed)
