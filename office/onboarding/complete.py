"""Completing a checklist item (board, signed link or CLI) with its evidence, audited once.

Evidence is data: the completion date, a certificate file (stored under OFFICE_HOME as a
0600 file, its SHA-256 kept on the item and in the audit entry), a course version, a
signature (the name the person typed). Whatever way it is completed, an item gets exactly
one audit entry, field `completed`, naming the way (board, link, cli) and the file's hash.

An item waiting on another cannot be completed before it; one already closed refuses a
second completion; an item required by law can be completed but never skipped. A
recurring item done sets its expiry (completion + its months): the follow-up renews it
ahead of that day. When every item a checklist started with is closed, so is it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from office.home import write_private
from office.ledgers import record_change
from office.models import Checklist, ChecklistItem, ChecklistStatus, ItemStatus

__all__ = [
    "MAX_EVIDENCE_BYTES",
    "CompletionError",
    "Evidence",
    "add_months",
    "blocked_by",
    "complete_item",
    "evidence_dir",
    "skip_item",
]

MAX_EVIDENCE_BYTES: Final = 10 * 1024 * 1024
_SUFFIXES: Final = frozenset({".pdf", ".png", ".jpg", ".jpeg", ".txt"})
_CLOSED: Final = (ItemStatus.DONE, ItemStatus.SKIPPED)


class CompletionError(ValueError):
    """The item cannot be completed (or skipped) as asked; the message is safe to show."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the person gives when completing an item."""

    completed_on: date
    file_bytes: bytes | None = None
    file_name: str | None = None
    course_version: str | None = None
    signature: str | None = None


def blocked_by(session: Session, item: ChecklistItem) -> list[str]:
    """The titles of the items `item` waits on (its dependencies not yet done or skipped)."""
    if not item.depends_on:
        return []
    rows = session.execute(
        select(ChecklistItem.key, ChecklistItem.title, ChecklistItem.status).where(
            ChecklistItem.checklist_id == item.checklist_id,
            ChecklistItem.key.in_(list(item.depends_on)),
            ChecklistItem.occurrence == 1,
        )
    ).tuples()
    return [title for _, title, status in rows if status not in _CLOSED]


def complete_item(
    session: Session,
    item_id: int,
    evidence: Evidence,
    *,
    by: str,
    via: str,
    now: datetime,
    evidence_dir: Path,
) -> ChecklistItem:
    """Mark the item done with its evidence (the caller commits).

    Args:
        by: Who ("staff:4", "login:2", "link", "cli").
        via: board, link or cli.
        evidence_dir: Where certificate files go (OFFICE_HOME/onboarding/evidence).

    Raises:
        CompletionError: no such item, already closed, waiting on another, evidence missing.
    """
    item = session.get(ChecklistItem, item_id, with_for_update=True)
    if item is None:
        raise CompletionError(f"there is no checklist item {item_id}")
    if item.status is not ItemStatus.OPEN:
        raise CompletionError(f"item {item_id} is already {item.status.value}")
    waiting = blocked_by(session, item)
    if waiting:
        raise CompletionError(f"item {item_id} waits on: {'; '.join(waiting)}")
    recorded: dict[str, Any] = {"completed_on": evidence.completed_on.isoformat()}
    needed = set(item.evidence_required)
    if "course_version" in needed:
        if not (evidence.course_version or "").strip():
            raise CompletionError(f"item {item_id} needs the course version")
        recorded["course_version"] = evidence.course_version.strip()[:100]  # type: ignore[union-attr]
    if "signature" in needed:
        if not (evidence.signature or "").strip():
            raise CompletionError(f"item {item_id} needs a signature (the signer's typed name)")
        recorded["signature"] = evidence.signature.strip()[:120]  # type: ignore[union-attr]
    if "certificate" in needed and evidence.file_bytes is None:
        raise CompletionError(f"item {item_id} needs its certificate file")
    if evidence.file_bytes is not None:
        recorded.update(_store(item, evidence, evidence_dir))
    values: dict[str, Any] = {
        "status": ItemStatus.DONE,
        "completed_on": evidence.completed_on,
        "completed_at": now,
        "completed_by": by[:80],
        "completed_via": via,
        "evidence": recorded,
        "updated_at": now,
    }
    if item.recur_months:
        values["expires_on"] = add_months(evidence.completed_on, item.recur_months)
    for name, value in values.items():
        setattr(item, name, value)
    record_change(
        session,
        item,
        "completed",
        None,
        {"via": via, **{k: v for k, v in recorded.items() if k != "path"}},
        actor=by[:80],
        source=via,
        at=now,
    )
    _close_checklist_if_done(session, item.checklist_id, now=now, actor=by)
    session.flush()
    return item


def evidence_dir(home: Path) -> Path:
    """Where evidence files are kept: OFFICE_HOME/onboarding/evidence (0700, files 0600)."""
    return home / "onboarding" / "evidence"


def skip_item(
    session: Session, item_id: int, *, reason: str, by: str, via: str, now: datetime
) -> ChecklistItem:
    """Say an item does not apply (never one required by law), with why; audited once."""
    item = session.get(ChecklistItem, item_id, with_for_update=True)
    if item is None:
        raise CompletionError(f"there is no checklist item {item_id}")
    if item.status is not ItemStatus.OPEN:
        raise CompletionError(f"item {item_id} is already {item.status.value}")
    if item.required_by_law:
        raise CompletionError(f"item {item_id} is required by law: it cannot be skipped")
    if not reason.strip():
        raise CompletionError("say why the item does not apply")
    item.status = ItemStatus.SKIPPED
    item.closed_reason = reason.strip()[:2000]
    item.updated_at = now
    record_change(session, item, "status", "open", "skipped", actor=by[:80], source=via, at=now)
    _close_checklist_if_done(session, item.checklist_id, now=now, actor=by)
    session.flush()
    return item


def add_months(day: date, months: int) -> date:
    """The same day `months` later (the month's last day when it is shorter)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise ValueError(day)  # pragma: no cover - February has 28 days


def _store(item: ChecklistItem, evidence: Evidence, evidence_dir: Path) -> dict[str, Any]:
    data = evidence.file_bytes or b""
    if not data:
        raise CompletionError("the evidence file is empty")
    if len(data) > MAX_EVIDENCE_BYTES:
        raise CompletionError("the evidence file is larger than 10 MB")
    suffix = Path(evidence.file_name or "").suffix.lower()
    if suffix not in _SUFFIXES:
        suffix = ".bin"
    digest = hashlib.sha256(data).hexdigest()
    # Named by ids and hash only: the file name a person chose may carry a name.
    path = evidence_dir / str(item.checklist_id) / f"item-{item.id}-{digest[:16]}{suffix}"
    write_private(path, data)
    return {"sha256": digest, "bytes": len(data), "path": str(path)}


def _close_checklist_if_done(
    session: Session, checklist_id: int, *, now: datetime, actor: str
) -> None:
    session.flush()
    still_open = session.scalar(
        select(func.count()).where(
            ChecklistItem.checklist_id == checklist_id,
            ChecklistItem.occurrence == 1,
            ChecklistItem.status == ItemStatus.OPEN,
        )
    )
    checklist = session.get_one(Checklist, checklist_id)
    if still_open == 0 and checklist.status is ChecklistStatus.OPEN:
        checklist.status = ChecklistStatus.DONE
        checklist.closed_at = now
        record_change(
            session,
            checklist,
            "status",
            "open",
            "done",
            actor=actor[:80],
            source="onboarding",
            at=now,
        )
