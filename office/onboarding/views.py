"""Read models for `office onboarding status`, the board's pages and the digest.

- `progress`: per person with an open checklist (or a certification expiring soon): %
  done, overdue, blocked, the next item due, certifications expiring in the next 60 days.
- `owner_items`: the open items grouped under their owner, as the board lists them.
- `item_detail`: one item with what it waits on, its evidence and its history.
- `overdue_by_owner`: overdue items per owner role, for the morning digest.

Blocked and overdue are computed here from the items, the same rule as the follow-up:
an open item is blocked while a dependency is neither done nor skipped; overdue when its
due day has passed and it is not blocked.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from office.models import (
    AuditEntry,
    Checklist,
    ChecklistItem,
    ChecklistKind,
    ChecklistStatus,
    ItemStatus,
    Staff,
)
from office.onboarding.templates import CATEGORIES

__all__ = [
    "EXPIRING_DAYS",
    "ItemDetail",
    "ItemRow",
    "OwnerGroup",
    "Progress",
    "item_detail",
    "overdue_by_owner",
    "owner_items",
    "progress",
]

EXPIRING_DAYS: Final = 60
_CLOSED: Final = (ItemStatus.DONE, ItemStatus.SKIPPED)
OWNER_LABELS: Final = {
    "it": "IT",
    "compliance": "Compliance officer",
    "office_manager": "Office manager",
    "front_desk": "Front desk",
    "medical_assistant": "Medical assistants",
    "nurse": "Nurses",
    "billing": "Billing",
    "provider": "Providers",
}


@dataclass(frozen=True, slots=True)
class Progress:
    staff_id: int
    name: str
    role: str
    kind: str  # onboarding, offboarding, or "-" for someone with only expiring certifications
    anchor_on: date | None  # start date or last day
    total: int
    done: int
    overdue: int
    blocked: int
    next_due: date | None
    next_title: str | None
    expiring: int  # certifications expiring within EXPIRING_DAYS, not yet renewed
    expired: int

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 100


@dataclass(frozen=True, slots=True)
class ItemRow:
    id: int
    title: str
    person: str
    staff_id: int
    kind: str
    category: str
    due_on: date
    overdue: bool
    blocked_on: tuple[str, ...]
    escalation_level: int
    required_by_law: bool
    needs_file: bool
    owner_staff_id: int | None
    owner_role: str | None


@dataclass(frozen=True, slots=True)
class OwnerGroup:
    label: str
    staff_id: int | None
    role: str | None
    items: tuple[ItemRow, ...]

    @property
    def overdue(self) -> int:
        return sum(item.overdue for item in self.items)


@dataclass(frozen=True, slots=True)
class ItemDetail:
    row: ItemRow
    description: str
    status: str
    evidence_required: tuple[str, ...]
    evidence: dict[str, object]
    completed_on: date | None
    completed_via: str | None
    expires_on: date | None
    access: str | None
    owner_label: str
    history: tuple[tuple[datetime, str, str, str | None], ...]  # at, actor, field, after


def _name(first: str, last: str) -> str:
    return f"{first} {last}"


def _closed_keys(session: Session, checklist_ids: Iterable[int]) -> dict[int, dict[str, str]]:
    ids = list(set(checklist_ids))
    found: dict[int, dict[str, str]] = defaultdict(dict)
    if not ids:
        return found
    rows = session.execute(
        select(ChecklistItem.checklist_id, ChecklistItem.key, ChecklistItem.title).where(
            ChecklistItem.checklist_id.in_(ids),
            ChecklistItem.occurrence == 1,
            ChecklistItem.status.in_(_CLOSED),
        )
    ).tuples()
    for checklist_id, key, title in rows:
        found[checklist_id][key] = title
    return found


def _titles(session: Session, checklist_ids: Iterable[int]) -> dict[tuple[int, str], str]:
    ids = list(set(checklist_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(ChecklistItem.checklist_id, ChecklistItem.key, ChecklistItem.title).where(
            ChecklistItem.checklist_id.in_(ids), ChecklistItem.occurrence == 1
        )
    ).tuples()
    return {(c, k): t for c, k, t in rows}


def progress(session: Session, today: date) -> list[Progress]:
    """Everyone with an open checklist or a certification expiring soon, by name."""
    horizon = today + timedelta(days=EXPIRING_DAYS)
    rows = session.execute(
        select(
            ChecklistItem.checklist_id,
            ChecklistItem.key,
            ChecklistItem.title,
            ChecklistItem.status,
            ChecklistItem.due_on,
            ChecklistItem.depends_on,
            ChecklistItem.occurrence,
        )
        .join(Checklist, Checklist.id == ChecklistItem.checklist_id)
        .where(Checklist.status == ChecklistStatus.OPEN)
    ).tuples()
    items: dict[int, list[tuple[str, str, ItemStatus, date, list[str], int]]] = defaultdict(list)
    for checklist_id, *rest in rows:
        items[checklist_id].append(tuple(rest))
    expiring, expired = _certifications(session, today, horizon)
    checklists = session.execute(
        select(Checklist, Staff.first_name, Staff.last_name, Staff.role)
        .join(Staff, Staff.id == Checklist.staff_id)
        .where(
            or_(
                Checklist.status == ChecklistStatus.OPEN,
                Checklist.staff_id.in_(list(set(expiring) | set(expired)) or [-1]),
            )
        )
        .order_by(Checklist.staff_id, Checklist.id)
    ).tuples()
    found: dict[int, Progress] = {}
    for checklist, first, last, role in checklists:
        if checklist.status is not ChecklistStatus.OPEN:
            if checklist.staff_id not in found:
                found[checklist.staff_id] = Progress(
                    checklist.staff_id,
                    _name(first, last),
                    role,
                    "-",
                    None,
                    0,
                    0,
                    0,
                    0,
                    None,
                    None,
                    expiring[checklist.staff_id],
                    expired[checklist.staff_id],
                )
            continue
        own = items[checklist.id]
        closed = {key for key, _, status, _, _, occ in own if status in _CLOSED and occ == 1}
        total = done = overdue = blocked = 0
        upcoming: list[tuple[date, str]] = []
        for _key, title, status, due_on, depends_on, _occ in own:
            if status is ItemStatus.WITHDRAWN:
                continue
            total += 1
            if status in _CLOSED:
                done += 1
                continue
            if any(d not in closed for d in depends_on or ()):
                blocked += 1
                continue
            if due_on < today:
                overdue += 1
            upcoming.append((due_on, title))
        nxt = min(upcoming) if upcoming else None
        found[checklist.staff_id] = Progress(
            staff_id=checklist.staff_id,
            name=_name(first, last),
            role=role,
            kind=checklist.kind.value,
            anchor_on=checklist.anchor_on,
            total=total,
            done=done,
            overdue=overdue,
            blocked=blocked,
            next_due=nxt[0] if nxt else None,
            next_title=nxt[1] if nxt else None,
            expiring=expiring[checklist.staff_id],
            expired=expired[checklist.staff_id],
        )
    return sorted(found.values(), key=lambda p: (p.kind == "-", p.name, p.staff_id))


def _certifications(
    session: Session, today: date, horizon: date
) -> tuple[Counter[int], Counter[int]]:
    """Per staff id: done recurring items expiring by `horizon`, and already expired, that no
    done renewal replaced."""
    renewal = aliased(ChecklistItem)
    rows = session.execute(
        select(ChecklistItem.staff_id, ChecklistItem.expires_on)
        .join(Staff, Staff.id == ChecklistItem.staff_id)
        .outerjoin(
            renewal,
            (renewal.renewal_of_id == ChecklistItem.id) & (renewal.status == ItemStatus.DONE),
        )
        .where(
            ChecklistItem.status == ItemStatus.DONE,
            ChecklistItem.expires_on.is_not(None),
            ChecklistItem.expires_on <= horizon,
            renewal.id.is_(None),
            Staff.end_date.is_(None) | (Staff.end_date >= today),
        )
    ).tuples()
    expiring: Counter[int] = Counter()
    expired: Counter[int] = Counter()
    for staff_id, expires_on in rows:
        if expires_on is not None and expires_on < today:
            expired[staff_id] += 1
        else:
            expiring[staff_id] += 1
    return expiring, expired


def _rows(session: Session, today: date, *conditions: object) -> list[ItemRow]:
    rows = session.execute(
        select(ChecklistItem, Checklist.kind, Staff.first_name, Staff.last_name)
        .join(Checklist, Checklist.id == ChecklistItem.checklist_id)
        .join(Staff, Staff.id == ChecklistItem.staff_id)
        .where(*conditions)  # type: ignore[arg-type]
        .order_by(ChecklistItem.due_on, ChecklistItem.id)
    ).tuples()
    found = list(rows)
    checklist_ids = [item.checklist_id for item, *_ in found if item.depends_on]
    closed = _closed_keys(session, checklist_ids)
    titles = _titles(session, checklist_ids)
    out = []
    for item, kind, first, last in found:
        waiting = tuple(
            titles.get((item.checklist_id, key), key)
            for key in item.depends_on or ()
            if key not in closed.get(item.checklist_id, {})
        )
        out.append(
            ItemRow(
                id=item.id,
                title=item.title,
                person=_name(first, last),
                staff_id=item.staff_id,
                kind=ChecklistKind(kind).value,
                category=CATEGORIES.get(item.category, item.category),
                due_on=item.due_on,
                overdue=item.status is ItemStatus.OPEN and not waiting and item.due_on < today,
                blocked_on=waiting if item.status is ItemStatus.OPEN else (),
                escalation_level=item.escalation_level,
                required_by_law=item.required_by_law,
                needs_file="certificate" in (item.evidence_required or ()),
                owner_staff_id=item.owner_staff_id,
                owner_role=item.owner_role,
            )
        )
    return out


def owner_items(
    session: Session,
    today: date,
    *,
    staff_id: int | None = None,
    role: str | None = None,
    everyone: bool = False,
) -> list[OwnerGroup]:
    """Open items under their owner: the viewer's own and their role's, or everyone's."""
    conditions: list[object] = [ChecklistItem.status == ItemStatus.OPEN]
    if not everyone:
        mine = [ChecklistItem.owner_staff_id == (staff_id if staff_id is not None else -1)]
        if role is not None:
            mine.append(ChecklistItem.owner_role == role)
        conditions.append(or_(*mine))
    rows = _rows(session, today, *conditions)
    people = {
        staff_id: _name(first, last)
        for staff_id, first, last in session.execute(
            select(Staff.id, Staff.first_name, Staff.last_name).where(
                Staff.id.in_({r.owner_staff_id for r in rows if r.owner_staff_id} or {-1})
            )
        ).tuples()
    }
    groups: dict[tuple[int | None, str | None], list[ItemRow]] = defaultdict(list)
    for row in rows:
        groups[(row.owner_staff_id, row.owner_role)].append(row)
    result = []
    for (owner_id, owner_role), items in groups.items():
        label = _owner_label(people.get(owner_id) if owner_id else None, owner_role)
        result.append(OwnerGroup(label, owner_id, owner_role, tuple(items)))
    result.sort(key=lambda g: (g.staff_id != staff_id, g.label))
    return result


def _owner_label(person: str | None, role: str | None) -> str:
    role_label = OWNER_LABELS.get(role or "", role or "")
    if person and role_label:
        return f"{person} ({role_label})"
    return person or role_label or "Nobody yet"


def item_detail(session: Session, item_id: int, today: date) -> ItemDetail | None:
    rows = _rows(session, today, ChecklistItem.id == item_id)
    if not rows:
        return None
    item = session.get_one(ChecklistItem, item_id)
    owner = session.get(Staff, item.owner_staff_id) if item.owner_staff_id else None
    history = session.execute(
        select(AuditEntry.at, AuditEntry.actor, AuditEntry.field, AuditEntry.after)
        .where(AuditEntry.entity == ChecklistItem.__tablename__, AuditEntry.entity_id == item_id)
        .order_by(AuditEntry.id)
    ).tuples()
    evidence = {k: v for k, v in (item.evidence or {}).items() if k != "path"}
    return ItemDetail(
        row=rows[0],
        description=item.description,
        status=item.status.value,
        evidence_required=tuple(item.evidence_required or ()),
        evidence=evidence,
        completed_on=item.completed_on,
        completed_via=item.completed_via,
        expires_on=item.expires_on,
        access=item.access,
        owner_label=_owner_label(
            _name(owner.first_name, owner.last_name) if owner else None, item.owner_role
        ),
        history=tuple(history),
    )


def overdue_by_owner(session: Session, today: date) -> dict[str, int]:
    """Overdue open items per owning role (the owner's role when a person owns it): counts."""
    rows = _rows(
        session, today, ChecklistItem.status == ItemStatus.OPEN, ChecklistItem.due_on < today
    )
    roles = {
        staff_id: role
        for staff_id, role in session.execute(
            select(Staff.id, Staff.role).where(
                Staff.id.in_({r.owner_staff_id for r in rows if r.owner_staff_id} or {-1})
            )
        ).tuples()
    }
    found: Counter[str] = Counter()
    for row in rows:
        if row.overdue:
            role = row.owner_role or roles.get(row.owner_staff_id or -1) or "office_manager"
            found[role] += 1
    return dict(found)
