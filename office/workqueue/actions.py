"""What a person does to a work item: take it, assign it, close it with a note, dismiss it.

Each action locks the item, refuses one that is not open (`LedgerError`, with a message
fit to show), writes one audit entry per field it changes (the item's history), and
returns the item's new state as a plain `ItemState`. The caller's transaction commits.

`by` names who acted: a staff id (recorded as "staff:<id>") or, from the CLI, a name.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from office.ledgers.audit import apply_changes
from office.ledgers.errors import LedgerError
from office.ledgers.work import close_work_item, open_item
from office.models import Staff, StaffStatus, WorkItem, WorkStatus

__all__ = ["ItemState", "actor_of", "assign", "close", "dismiss", "take"]

_WORKING = (StaffStatus.ACTIVE, StaffStatus.PENDING)


@dataclass(frozen=True, slots=True)
class ItemState:
    """An item's state after an action."""

    id: int
    status: WorkStatus
    assignee_id: int | None
    closed_by: str | None
    close_reason: str | None
    close_note: str | None


def actor_of(by: int | str) -> str:
    """How the audit ledger names who acted: "staff:<id>" for a staff id, else the name."""
    if isinstance(by, int):
        return f"staff:{by}"
    name = by.strip()
    if not name:
        raise LedgerError("say who is acting")
    return name[:80]


def take(session: Session, item_id: int, *, staff_id: int, source: str = "board") -> ItemState:
    """The staff member takes the item: it is assigned to them."""
    return assign(session, item_id, staff_id=staff_id, by=staff_id, source=source)


def assign(
    session: Session,
    item_id: int,
    *,
    staff_id: int | None,
    by: int | str,
    source: str = "board",
) -> ItemState:
    """Assign the item to a staff member (None: back to the role)."""
    actor = actor_of(by)
    if staff_id is not None:
        _working_staff(session, staff_id)
    item = open_item(session, item_id)
    apply_changes(session, item, {"assignee_id": staff_id}, actor=actor, source=source)
    return _state(item)


def close(
    session: Session, item_id: int, *, by: int | str, note: str | None = None, source: str = "board"
) -> ItemState:
    """Mark the item done, with an optional note on what was done."""
    item = close_work_item(
        session, item_id, by=actor_of(by), status=WorkStatus.DONE, note=note, source=source
    )
    return _state(item)


def dismiss(
    session: Session, item_id: int, *, by: int | str, reason: str, source: str = "board"
) -> ItemState:
    """Dismiss the item: not a problem, or nothing to do; the reason is required."""
    item = close_work_item(
        session, item_id, by=actor_of(by), status=WorkStatus.DISMISSED, note=reason, source=source
    )
    return _state(item)


def _working_staff(session: Session, staff_id: int) -> Staff:
    staff = session.get(Staff, staff_id)
    if staff is None:
        raise LedgerError(f"staff member {staff_id} does not exist")
    if staff.status not in _WORKING:
        raise LedgerError(f"staff member {staff_id} is not working here now")
    return staff


def _state(item: WorkItem) -> ItemState:
    return ItemState(
        id=item.id,
        status=item.status,
        assignee_id=item.assignee_id,
        closed_by=item.closed_by,
        close_reason=item.close_reason,
        close_note=item.close_note,
    )
