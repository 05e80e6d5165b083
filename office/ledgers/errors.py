"""The one error a ledger raises."""

from __future__ import annotations

__all__ = ["LedgerError"]


class LedgerError(ValueError):
    """A ledger operation that cannot be done (unknown id, wrong state)."""
