"""The four ledgers every flow writes: inbox, outbox, audit and work queue.

Each function takes the caller's session and never commits: the caller's unit
of work decides what lands together (a work item with the result that raised it).
"""

from __future__ import annotations

from office.ledgers.audit import RecordChanges, apply_changes, record_change, record_changes
from office.ledgers.errors import LedgerError
from office.ledgers.inbox import mark_processed, reject, replay, start_attempt, store_inbound
from office.ledgers.outbox import claim_outbox, enqueue_outbox, finish_outbox
from office.ledgers.work import close_work_item, open_items_by_kind, open_work_item

__all__ = [
    "LedgerError",
    "RecordChanges",
    "apply_changes",
    "claim_outbox",
    "close_work_item",
    "enqueue_outbox",
    "finish_outbox",
    "mark_processed",
    "open_items_by_kind",
    "open_work_item",
    "record_change",
    "record_changes",
    "reject",
    "replay",
    "start_attempt",
    "store_inbound",
]
