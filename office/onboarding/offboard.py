"""A departure: a checklist that takes back every access the person's onboarding granted.

`offboard` records the last day on the staff member, withdraws what is still open on
their onboarding (they will not finish it), and builds one revoke item per access their
onboarding actually granted (an `access` item done), owned by whoever granted it and
due on the last day. An access counts as revoked only when its owner confirms the item.

Someone who joined before officeflows kept checklists has no record of what was granted:
their offboarding takes every access item of their role's template instead, and says so
(`basis = "template"`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from office.ledgers import apply_changes, record_change
from office.models import (
    Checklist,
    ChecklistItem,
    ChecklistKind,
    ChecklistStatus,
    ItemStatus,
    Staff,
)
from office.onboarding.directory import load_directory
from office.onboarding.mailing import ASSIGNED, Notice, queue_notices
from office.onboarding.start import Built, OnboardingError
from office.onboarding.templates import Template, load_templates, template_for

__all__ = ["Granted", "access_held", "granted_access", "offboard"]

LEFT = "the person is leaving"


@dataclass(frozen=True, slots=True)
class Granted:
    """One access a person holds: the item that granted it and who granted it."""

    item_id: int | None
    access: str
    title: str
    owner: str
    owner_role: str | None
    owner_staff_id: int | None


def granted_access(session: Session, staff_id: int) -> list[Granted]:
    """What the person's onboarding granted: its `access` items that are done, in order."""
    rows = session.scalars(
        select(ChecklistItem)
        .join(Checklist, Checklist.id == ChecklistItem.checklist_id)
        .where(
            Checklist.staff_id == staff_id,
            Checklist.kind == ChecklistKind.ONBOARDING,
            ChecklistItem.access.is_not(None),
            ChecklistItem.status == ItemStatus.DONE,
        )
        .order_by(ChecklistItem.id)
    )
    return [
        Granted(i.id, str(i.access), i.title, i.owner, i.owner_role, i.owner_staff_id) for i in rows
    ]


def access_held(session: Session, staff_id: int) -> list[str]:
    """The accesses granted and not yet confirmed revoked, sorted: what the person still holds."""
    granted = granted_access(session, staff_id)
    revoked = set(
        session.scalars(
            select(ChecklistItem.revokes_item_id).where(
                ChecklistItem.staff_id == staff_id,
                ChecklistItem.revokes_item_id.is_not(None),
                ChecklistItem.status == ItemStatus.DONE,
            )
        )
    )
    return sorted(grant.access for grant in granted if grant.item_id not in revoked)


def offboard(
    session: Session,
    staff_id: int,
    last_day: date,
    *,
    now: datetime,
    zone: str,
    actor: str,
    templates: Mapping[str, Template] | None = None,
) -> Built:
    """Build `staff_id`'s offboarding checklist due on `last_day` (the caller commits).

    Raises:
        OnboardingError: no such staff member, or a last day before their start.
    """
    staff = session.get(Staff, staff_id)
    if staff is None:
        raise OnboardingError(f"no staff member {staff_id}")
    if last_day < staff.start_date:
        raise OnboardingError(f"staff member {staff_id}: the last day is before the start date")
    existing = session.scalar(
        select(Checklist).where(
            Checklist.staff_id == staff_id,
            Checklist.kind == ChecklistKind.OFFBOARDING,
            Checklist.anchor_on == last_day,
        )
    )
    if existing is not None:
        count = len(
            session.scalars(
                select(ChecklistItem.id).where(ChecklistItem.checklist_id == existing.id)
            ).all()
        )
        return Built(existing.id, count, created=False)
    moved = session.scalar(
        select(Checklist).where(
            Checklist.staff_id == staff_id,
            Checklist.kind == ChecklistKind.OFFBOARDING,
            Checklist.status == ChecklistStatus.OPEN,
        )
    )
    if moved is not None:
        return _move(session, staff, moved, last_day, actor=actor)
    apply_changes(session, staff, {"end_date": last_day}, actor=actor, source="offboarding")
    _withdraw_onboarding(session, staff_id, now=now, actor=actor)
    has_record = session.scalar(
        select(Checklist.id).where(
            Checklist.staff_id == staff_id, Checklist.kind == ChecklistKind.ONBOARDING
        )
    )
    directory = load_directory(session)
    if has_record is not None:
        granted = granted_access(session, staff_id)
        basis = "record"
        template_name, version = "offboarding", "record"
    else:
        template = template_for(
            templates if templates is not None else load_templates(), staff.role
        )
        hire = directory.people[staff_id]
        granted = []
        for entry in template.items:
            if entry.access is None:
                continue
            owner = directory.owner(entry.owner, hire)
            granted.append(
                Granted(None, entry.access, entry.title, entry.owner, owner.role, owner.staff_id)
            )
        basis = "template"
        template_name, version = template.name, template.version
    checklist = Checklist(
        staff_id=staff_id,
        kind=ChecklistKind.OFFBOARDING,
        template=template_name,
        template_version=version,
        anchor_on=last_day,
        status=ChecklistStatus.OPEN,
        basis=basis,
        created_at=now,
        created_by=actor,
    )
    session.add(checklist)
    session.flush()
    items = []
    for number, grant in enumerate(granted, start=1):
        # The person who granted it revokes it, unless they have left: then their role's.
        owner_staff = directory.recipient(grant.owner_staff_id, grant.owner_role)
        items.append(
            ChecklistItem(
                checklist_id=checklist.id,
                staff_id=staff_id,
                key=f"revoke_{number}_{grant.access}"[:60],
                occurrence=1,
                title=f"Revoke access: {grant.title}",
                description=(
                    "Take this access away on the last day, then confirm here; it counts as "
                    "revoked only once confirmed."
                ),
                category="accounts_access",
                owner=grant.owner if grant.owner != "new_hire" else "manager",
                owner_role=grant.owner_role,
                owner_staff_id=owner_staff if owner_staff != staff_id else None,
                due_on=last_day,
                depends_on=[],
                evidence_required=["completion_date"],
                required_by_law=True,  # 45 CFR 164.308(a)(3)(ii)(C): termination procedures
                access=grant.access,
                revokes_item_id=grant.item_id,
                status=ItemStatus.OPEN,
                escalation_level=0,
                evidence={},
                created_at=now,
                updated_at=now,
            )
        )
    session.add_all(items)
    session.flush()
    record_change(
        session, checklist, "status", None, "open", actor=actor, source="offboarding", at=now
    )
    by_owner: dict[int, list[int]] = defaultdict(list)
    for item in items:
        recipient = directory.recipient(item.owner_staff_id, item.owner_role)
        if recipient is not None and recipient != staff_id:
            by_owner[recipient].append(item.id)
    notices = [Notice(ASSIGNED, o, tuple(ids), checklist.id) for o, ids in sorted(by_owner.items())]
    emails = {person.id: person.email for person in directory.people.values()}
    today = now.astimezone(ZoneInfo(zone)).date()
    messages = queue_notices(session, notices, emails, day=today, now=now)
    return Built(checklist.id, len(items), created=True, messages=messages)


def _move(
    session: Session, staff: Staff, checklist: Checklist, last_day: date, *, actor: str
) -> Built:
    """The last day moved: the open departure's items are due on the new one."""
    apply_changes(session, staff, {"end_date": last_day}, actor=actor, source="offboarding")
    apply_changes(session, checklist, {"anchor_on": last_day}, actor=actor, source="offboarding")
    items = session.scalars(
        select(ChecklistItem).where(ChecklistItem.checklist_id == checklist.id)
    ).all()
    for item in items:
        if item.status is ItemStatus.OPEN:
            apply_changes(
                session,
                item,
                {"due_on": last_day, "escalation_level": 0, "reminded_on": None},
                actor=actor,
                source="offboarding",
            )
    return Built(checklist.id, len(items), created=False)


def _withdraw_onboarding(session: Session, staff_id: int, *, now: datetime, actor: str) -> None:
    """Open onboarding items (renewals too) will not be done: withdrawn, with why."""
    open_items = session.scalars(
        select(ChecklistItem)
        .join(Checklist, Checklist.id == ChecklistItem.checklist_id)
        .where(
            Checklist.staff_id == staff_id,
            Checklist.kind == ChecklistKind.ONBOARDING,
            ChecklistItem.status == ItemStatus.OPEN,
        )
    )
    for item in open_items:
        apply_changes(
            session,
            item,
            {"status": ItemStatus.WITHDRAWN, "closed_reason": LEFT},
            actor=actor,
            source="offboarding",
        )
    for checklist in session.scalars(
        select(Checklist).where(
            Checklist.staff_id == staff_id,
            Checklist.kind == ChecklistKind.ONBOARDING,
            Checklist.status == ChecklistStatus.OPEN,
        )
    ):
        apply_changes(
            session,
            checklist,
            {"status": ChecklistStatus.WITHDRAWN, "closed_at": now},
            actor=actor,
            source="offboarding",
        )
