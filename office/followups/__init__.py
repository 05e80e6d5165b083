"""Follow-ups that survive failure: what must run after an inbound payload changed a record.

Each is recorded with its inbox item, in the handler's transaction, before anything runs
(`record_followups`); each then runs as its own Prefect deployment run, and a failure is
retried with a back-off until, out of attempts, it becomes a work item for a person
(`ledger`). Starting them and learning how their runs ended is the flows' job
(`flows.followups`); this package only keeps the books.
"""

from __future__ import annotations

from office.followups.ledger import (
    BACKOFF,
    MAX_ATTEMPTS,
    STALE_CLAIM,
    Claim,
    FollowupCall,
    claim,
    due_followups,
    followups_of,
    mark_done,
    mark_failed,
    mark_started,
    record_followups,
    record_run,
    run_ended,
    started_followups,
)

__all__ = [
    "BACKOFF",
    "MAX_ATTEMPTS",
    "STALE_CLAIM",
    "Claim",
    "FollowupCall",
    "claim",
    "due_followups",
    "followups_of",
    "mark_done",
    "mark_failed",
    "mark_started",
    "record_followups",
    "record_run",
    "run_ended",
    "started_followups",
]
