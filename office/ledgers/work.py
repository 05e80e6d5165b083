"""The work queue: what needs a person, one open item per problem and record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from office.ledgers.errors import LedgerError
from office.models import (
    WorkItem,
    WorkStatus,
    utcnow,
)

__all__ = ["close_work_item", "open_items_by_kind", "open_work_item"]


def open_work_item(
    session: Session,
    *,
    kind: str,
    entity: str,
    entity_id: int,
    summary: str,
    role: str,
    due_at: datetime | None = None,
    detail: Mapping[str, Any] | None = None,
) -> tuple[WorkItem, bool]:
    """Open one item per (kind, record); a repeat refreshes it instead of duplicating.

    An item a person dismissed stays dismissed; one marked done reopens, since the
    problem came back.
    """
    key = f"{kind}:{entity}:{entity_id}"
    item = session.scalar(select(WorkItem).where(WorkItem.dedupe_key == key))
    if item is not None:
        item.summary = summary
        item.due_at = due_at
        item.detail = dict(detail or {})
        if item.status is WorkStatus.DONE:
            item.status = WorkStatus.OPEN
            item.closed_at = None
            item.closed_by = None
        return item, False
    item = WorkItem(
        kind=kind,
        entity=entity,
        entity_id=entity_id,
        dedupe_key=key,
        summary=summary,
        role=role,
        due_at=due_at,
        detail=dict(detail or {}),
    )
    try:
        with session.begin_nested():
            session.add(item)
    except IntegrityError:
        winner = session.scalar(select(WorkItem).where(WorkItem.dedupe_key == key))
        if winner is None:
            raise
        return winner, False
    return item, True


def close_work_item(
    session: Session,
    item_id: int,
    *,
    by: str,
    status: WorkStatus = WorkStatus.DONE,
    now: datetime | None = None,
) -> WorkItem:
    item = session.get(WorkItem, item_id)
    if item is None:
        raise LedgerError(f"work item {item_id} does not exist")
    item.status = status
    item.closed_by = by
    item.closed_at = now or utcnow()
    return item


def open_items_by_kind(session: Session) -> Sequence[tuple[str, int]]:
    rows = session.execute(
        select(WorkItem.kind, func.count())
        .where(WorkItem.status == WorkStatus.OPEN)
        .group_by(WorkItem.kind)
        .order_by(WorkItem.kind)
    )
    return [(kind, count) for kind, count in rows]
