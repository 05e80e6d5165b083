"""The work queue as people use it: a catalog of kinds, read models, actions, a chart.

- `kinds`: what each problem is, who owns it, what to do, whether it is a note;
- `views`: the read models of the board and the CLI (`today`, `visit`, `trends`,
  `history`), plain frozen dataclasses, no ORM objects;
- `actions`: what a person does to an item (`take`, `assign`, `close`, `dismiss`);
- `digest`: the morning digest's counts and message, with no patient data;
- `chart`: the trend chart as SVG or PNG (matplotlib, Agg).

The rules that open and close items live in `office.ledgers.work`. This package's
`__init__` exports the catalog only: the ledger imports it, and `views` and `actions`
import the ledger.
"""

from __future__ import annotations

from office.workqueue.kinds import (
    KINDS,
    MANAGER_ROLE,
    PRIORITY_LABELS,
    ROLE_LABELS,
    CloseReason,
    Kind,
    Subject,
    kind_of,
    note_kinds,
)

__all__ = [
    "KINDS",
    "MANAGER_ROLE",
    "PRIORITY_LABELS",
    "ROLE_LABELS",
    "CloseReason",
    "Kind",
    "Subject",
    "kind_of",
    "note_kinds",
]
