"""Building a new hire's checklist from their role's template, and telling the people in it.

`start_onboarding` copies the template's items onto a checklist for one staff member (the
template's version kept on it: a later edit changes future hires only), dates each item
in business days from the start date, names its owner, and queues the welcome mail to
the new hire and one assignment mail per owner. Run twice for the same person and start
date, it builds nothing the second time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from office.ledgers import record_change
from office.models import (
    Checklist,
    ChecklistItem,
    ChecklistKind,
    ChecklistStatus,
    ItemStatus,
    Staff,
)
from office.onboarding.calendar import BusinessCalendar, load_calendar
from office.onboarding.directory import Directory, load_directory
from office.onboarding.mailing import ASSIGNED, WELCOME, Notice, queue_notices
from office.onboarding.templates import Template, load_templates, template_for

__all__ = ["Built", "OnboardingError", "start_onboarding"]


class OnboardingError(ValueError):
    """The checklist cannot be built or changed as asked; the message names ids, never names."""


@dataclass(frozen=True, slots=True)
class Built:
    """What building a checklist did: ids and counts only."""

    checklist_id: int
    items: int
    created: bool
    messages: int = 0


def start_onboarding(
    session: Session,
    staff_id: int,
    *,
    now: datetime,
    zone: str,
    actor: str,
    templates: Mapping[str, Template] | None = None,
    calendar: BusinessCalendar | None = None,
    directory: Directory | None = None,
) -> Built:
    """Build `staff_id`'s onboarding checklist and queue its mail (the caller commits).

    Args:
        zone: The practice's zone: its today is the day the mail is dated.
        actor: Who asked ("cli", "flow:start-onboarding", "import:17"), for the audit.
        templates: The role templates; loaded (and validated) from templates/checklists
            when not given.
        calendar, directory: Read from the database when not given (a caller building
            many checklists at once reads them once).

    Raises:
        OnboardingError: no such staff member.
        TemplateError: no template for their role, or the templates are broken.
    """
    staff = session.get(Staff, staff_id)
    if staff is None:
        raise OnboardingError(f"no staff member {staff_id}")
    existing = session.scalar(
        select(Checklist).where(
            Checklist.staff_id == staff_id,
            Checklist.kind == ChecklistKind.ONBOARDING,
            Checklist.anchor_on == staff.start_date,
        )
    )
    if existing is not None:
        count = len(
            session.scalars(
                select(ChecklistItem.id).where(ChecklistItem.checklist_id == existing.id)
            ).all()
        )
        return Built(existing.id, count, created=False)
    template = template_for(templates if templates is not None else load_templates(), staff.role)
    days = calendar or load_calendar(session)
    directory = directory or load_directory(session)
    hire = directory.people[staff_id]
    checklist = Checklist(
        staff_id=staff_id,
        kind=ChecklistKind.ONBOARDING,
        template=template.name,
        template_version=template.version,
        anchor_on=staff.start_date,
        status=ChecklistStatus.OPEN,
        basis="template",
        created_at=now,
        created_by=actor,
    )
    session.add(checklist)
    session.flush()
    items = []
    for entry in template.items:
        owner = directory.owner(entry.owner, hire)
        items.append(
            ChecklistItem(
                checklist_id=checklist.id,
                staff_id=staff_id,
                key=entry.key,
                occurrence=1,
                title=entry.title,
                description=entry.description,
                category=entry.category,
                owner=entry.owner,
                owner_role=owner.role,
                owner_staff_id=owner.staff_id,
                due_on=days.add(staff.start_date, entry.due),
                depends_on=list(entry.depends_on),
                evidence_required=list(entry.evidence),
                required_by_law=entry.required_by_law,
                access=entry.access,
                recur_months=entry.recurrence_months,
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
        session, checklist, "status", None, "open", actor=actor, source="onboarding", at=now
    )
    messages = _announce(session, checklist, items, directory, now=now, zone=zone)
    return Built(checklist.id, len(items), created=True, messages=messages)


def _announce(
    session: Session,
    checklist: Checklist,
    items: list[ChecklistItem],
    directory: Directory,
    *,
    now: datetime,
    zone: str,
) -> int:
    """The welcome mail to the person, one assignment mail per other owner."""
    by_owner: dict[int, list[int]] = defaultdict(list)
    for item in items:
        recipient = directory.recipient(item.owner_staff_id, item.owner_role)
        if recipient is not None:
            by_owner[recipient].append(item.id)
    notices = [
        Notice(
            WELCOME, checklist.staff_id, tuple(by_owner.pop(checklist.staff_id, ())), checklist.id
        )
    ]
    notices += [
        Notice(ASSIGNED, owner, tuple(ids), checklist.id) for owner, ids in sorted(by_owner.items())
    ]
    emails = {person.id: person.email for person in directory.people.values()}
    today = now.astimezone(ZoneInfo(zone)).date()
    return queue_notices(session, notices, emails, day=today, now=now)
