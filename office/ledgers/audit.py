"""The audit ledger: one row per field changed, with before, after, actor and source."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from office.models import (
    AuditEntry,
    Base,
    utcnow,
)

__all__ = ["Change", "apply_changes", "record_change", "record_changes"]


def record_change(
    session: Session,
    record: Base,
    field: str,
    before: object,
    after: object,
    *,
    actor: str,
    source: str,
    at: datetime | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        entity=record.__tablename__,
        entity_id=record.id,  # type: ignore[attr-defined]
        field=field,
        before=_text(before),
        after=_text(after),
        actor=actor,
        source=source,
        at=at or utcnow(),
    )
    session.add(entry)
    return entry


@dataclass(frozen=True, slots=True)
class Change:
    """One field of one record that changed, for `record_changes`."""

    entity: str  # table name
    entity_id: int
    field: str
    before: object
    after: object
    actor: str
    source: str


def record_changes(session: Session, changes: Iterable[Change], *, at: datetime) -> int:
    """Many audit entries in one statement (a file import's thousands); returns how many."""
    rows = [
        {
            "entity": c.entity,
            "entity_id": c.entity_id,
            "field": c.field,
            "before": _text(c.before),
            "after": _text(c.after),
            "actor": c.actor[:80],
            "source": c.source[:80],
            "at": at,
        }
        for c in changes
    ]
    if rows:
        session.execute(insert(AuditEntry), rows)
    return len(rows)


def apply_changes(
    session: Session,
    record: Base,
    values: Mapping[str, object],
    *,
    actor: str,
    source: str,
) -> list[str]:
    """Set fields on a record, writing one audit entry per field that really changed."""
    changed = []
    for field, after in values.items():
        before = getattr(record, field)
        if before == after:
            continue
        setattr(record, field, after)
        record_change(session, record, field, before, after, actor=actor, source=source)
        changed.append(field)
    return changed


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)
