"""A run's counts, read back from what was stored: outcomes, and alerts by kind."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from office.clock import chunks
from office.models import CheckStatus, EligibilityCheck, WorkItem

__all__ = ["OUTCOMES", "summarize"]

# Every run reports these, zero or not, so summaries line up from one run to the next.
OUTCOMES = ("due", "checked", "active", "inactive", "unverified", "errors", "alerts")


def summarize(session: Session, check_ids: Sequence[int]) -> Counter[str]:
    """Counts for a run: outcomes, and the work items its answers raised, by kind.

    Read from the database rather than added up in memory, so a batch that was retried (or
    a run that was restarted) is counted once, as it ended. A problem is one item per
    subject, so one patient-level problem two visits share counts once.
    """
    counts: Counter[str] = Counter(dict.fromkeys(OUTCOMES, 0))
    counts["due"] = len(check_ids)
    wanted = set(check_ids)
    patients: set[int] = set()
    for chunk in chunks(sorted(wanted)):
        rows = session.execute(
            select(EligibilityCheck.status, EligibilityCheck.patient_id).where(
                EligibilityCheck.id.in_(chunk)
            )
        )
        for row in rows:
            if row.status is CheckStatus.PENDING:
                counts["pending"] += 1
                continue
            counts["checked"] += 1
            counts["errors" if row.status is CheckStatus.ERROR else row.status.value] += 1
            patients.add(row.patient_id)
    for chunk in chunks(sorted(patients)):
        items = session.execute(
            select(WorkItem.kind, WorkItem.detail).where(WorkItem.patient_id.in_(chunk))
        )
        for item in items:
            if (item.detail or {}).get("check_id") in wanted:
                counts["alerts"] += 1
                counts[f"alert_{item.kind}"] += 1
    return counts
