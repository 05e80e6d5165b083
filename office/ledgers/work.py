"""The work queue: what needs a person, one open item per problem and record.

The rules live in `open_work_items`, which opens many at once (a payer batch raises
hundreds); `open_work_item` is the same code for one. One item per (kind, record):
a repeat refreshes it; one marked done reopens, since the problem came back; one a
person dismissed stays dismissed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from office.clock import chunks
from office.ledgers.errors import LedgerError
from office.models import WorkItem, WorkStatus, utcnow

__all__ = [
    "WorkNeeded",
    "close_work_item",
    "open_items_by_kind",
    "open_work_item",
    "open_work_items",
]


@dataclass(frozen=True, slots=True)
class WorkNeeded:
    """One problem a person must act on, about one record (`entity` is the model's
    singular snake-case name: "appointment", "patient", "outbox_item", ...)."""

    kind: str
    entity: str
    entity_id: int
    summary: str
    role: str
    due_at: datetime | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        return f"{self.kind}:{self.entity}:{self.entity_id}"


def open_work_items(
    session: Session, wanted: Iterable[WorkNeeded], *, now: datetime | None = None
) -> dict[str, tuple[int, bool]]:
    """Open (or refresh) an item for each problem; returns (item id, created) per dedupe key.

    One read, one update and one insert for the lot. Should another writer insert one of
    the same keys meanwhile, the insert is undone and the whole lot is applied again, so
    that writer's item is refreshed instead of duplicated.
    """
    by_key = {item.dedupe_key: item for item in wanted}
    if not by_key:
        return {}
    moment = now or utcnow()
    try:
        return _open(session, by_key, moment)
    except IntegrityError:
        return _open(session, by_key, moment)


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
    """`open_work_items` for one problem; returns the item and whether it is new."""
    wanted = WorkNeeded(kind, entity, entity_id, summary, role, due_at, dict(detail or {}))
    item_id, created = open_work_items(session, [wanted])[wanted.dedupe_key]
    # The statements above bypass the identity map; read the row as it now stands.
    return session.get_one(WorkItem, item_id, populate_existing=True), created


def _open(
    session: Session, wanted: Mapping[str, WorkNeeded], now: datetime
) -> dict[str, tuple[int, bool]]:
    existing: dict[str, tuple[int, WorkStatus]] = {}
    for chunk in chunks(sorted(wanted)):
        rows = session.execute(
            select(WorkItem.dedupe_key, WorkItem.id, WorkItem.status).where(
                WorkItem.dedupe_key.in_(chunk)
            )
        )
        existing.update((row.dedupe_key, (row.id, row.status)) for row in rows)
    opened: dict[str, tuple[int, bool]] = {}
    refreshed = []
    for key, (item_id, status) in existing.items():
        item = wanted[key]
        row: dict[str, Any] = {
            "id": item_id,
            "summary": item.summary,
            "due_at": item.due_at,
            "detail": dict(item.detail),
            "updated_at": now,
        }
        if status is WorkStatus.DONE:
            row.update(status=WorkStatus.OPEN, closed_at=None, closed_by=None)
        refreshed.append(row)
        opened[key] = (item_id, False)
    if refreshed:
        session.execute(update(WorkItem), refreshed)
    fresh = [_new_row(key, item, now) for key, item in wanted.items() if key not in existing]
    if fresh:
        with session.begin_nested():
            created = session.execute(
                insert(WorkItem).returning(WorkItem.id, WorkItem.dedupe_key), fresh
            )
            opened.update((row.dedupe_key, (row.id, True)) for row in created)
    return opened


def _new_row(key: str, item: WorkNeeded, now: datetime) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "entity": item.entity,
        "entity_id": item.entity_id,
        "dedupe_key": key,
        "summary": item.summary,
        "role": item.role,
        "due_at": item.due_at,
        "detail": dict(item.detail),
        "status": WorkStatus.OPEN,
        "created_at": now,
        "updated_at": now,
    }


def close_work_item(
    session: Session,
    item_id: int,
    *,
    by: str,
    status: WorkStatus = WorkStatus.DONE,
    now: datetime | None = None,
) -> WorkItem:
    """Mark an item done (or dismissed) by a person."""
    item = session.get(WorkItem, item_id)
    if item is None:
        raise LedgerError(f"work item {item_id} does not exist")
    item.status = status
    item.closed_by = by
    item.closed_at = now or utcnow()
    return item


def open_items_by_kind(session: Session) -> Sequence[tuple[str, int]]:
    """Open items counted by kind, for status pages."""
    rows = session.execute(
        select(WorkItem.kind, func.count())
        .where(WorkItem.status == WorkStatus.OPEN)
        .group_by(WorkItem.kind)
        .order_by(WorkItem.kind)
    )
    return [(kind, count) for kind, count in rows]
