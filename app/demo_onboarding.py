"""The demo's checklists: two new hires at different stages and one departure.

Both hires start next Monday (the demo data's two pending staff). The first one's
checklist was built a week ago and what was due before day one is mostly done, with its
evidence; one item is left overdue so the escalation ladder has something to climb. The
second one's checklist is built today. The departing member, a billing clerk who joined
before officeflows kept checklists, leaves in four business days: their offboarding takes
the role template's accesses. The follow-up flow then runs over all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from office.models import Checklist, ChecklistItem, ItemStatus, Staff, StaffStatus
from office.onboarding import (
    BusinessCalendar,
    CompletionError,
    Evidence,
    complete_item,
    load_calendar,
    load_templates,
    offboard,
    start_onboarding,
)
from office.onboarding.complete import evidence_dir
from office.onboarding.views import progress

__all__ = ["DemoChecklists", "print_checklists", "seed_onboarding"]

LEFT_OVERDUE = "confidentiality_agreement_sent"  # the one item the first hire's manager forgot


@dataclass(frozen=True, slots=True)
class DemoChecklists:
    hires: tuple[int, ...]  # checklist ids
    departure: int | None
    completed: int


def seed_onboarding(session: Session, *, now: datetime, zone: str, home: Path) -> DemoChecklists:
    """Build the three checklists and complete the first hire's early items."""
    hires = session.scalars(
        select(Staff).where(Staff.status == StaffStatus.PENDING).order_by(Staff.id)
    ).all()
    templates = load_templates()
    calendar = load_calendar(session)
    built = []
    completed = 0
    for number, hire in enumerate(hires):
        when = now - timedelta(days=7) if number == 0 else now
        checklist = start_onboarding(
            session,
            hire.id,
            now=when,
            zone=zone,
            actor="demo",
            templates=templates,
            calendar=calendar,
        )
        built.append(checklist.checklist_id)
        if number == 0:
            completed = _complete_early_items(session, checklist.checklist_id, now, zone, home)
    leaving = session.scalars(
        select(Staff)
        .where(Staff.role == "billing", Staff.status == StaffStatus.ACTIVE, ~Staff.role_lead)
        .order_by(Staff.id)
    ).first()
    departure = None
    if leaving is not None:
        today = now.astimezone(ZoneInfo(zone)).date()
        last_day = calendar.add(today, 4)
        departure = offboard(
            session, leaving.id, last_day, now=now, zone=zone, actor="demo", templates=templates
        ).checklist_id
    return DemoChecklists(tuple(built), departure, completed)


def _complete_early_items(
    session: Session, checklist_id: int, now: datetime, zone: str, home: Path
) -> int:
    """What is due up to day one + 2, done with its evidence, but the one left overdue (and
    what waits on it)."""
    today = now.astimezone(ZoneInfo(zone)).date()
    calendar = BusinessCalendar()
    checklist = session.get_one(Checklist, checklist_id)
    horizon = calendar.add(checklist.anchor_on, 2)  # up to the second day after day one
    items = session.scalars(
        select(ChecklistItem)
        .where(ChecklistItem.checklist_id == checklist_id, ChecklistItem.due_on <= horizon)
        .order_by(ChecklistItem.due_on, ChecklistItem.id)
    ).all()
    done = 0
    for item in items:
        if item.key == LEFT_OVERDUE or item.status is not ItemStatus.OPEN:
            continue
        on = calendar.roll_back(min(item.due_on, today))
        evidence = Evidence(
            completed_on=on,
            file_bytes=b"%PDF-1.4\n% demo certificate\n"
            if "certificate" in item.evidence_required
            else None,
            file_name="certificate.pdf",
            course_version="2026.2",
            signature="Demo Signer",
        )
        try:
            with session.begin_nested():
                complete_item(
                    session,
                    item.id,
                    evidence,
                    by="demo",
                    via="board",
                    now=now,
                    evidence_dir=evidence_dir(home),
                )
            done += 1
        except CompletionError:
            continue  # waits on the item left overdue
    return done


def print_checklists(console: Console, session: Session, *, today: datetime, zone: str) -> None:
    """Each checklist's progress: staff id and role, never a name."""
    day = today.astimezone(ZoneInfo(zone)).date()
    found = [p for p in progress(session, day) if p.kind != "-"]
    if not found:
        console.print("no open checklists")
        return
    table = Table(
        "staff id",
        "role",
        "checklist",
        "from",
        "done",
        "overdue",
        "blocked",
        "next due",
        title="Onboarding and offboarding checklists",
    )
    for person in found:
        table.add_row(
            str(person.staff_id),
            person.role,
            person.kind,
            f"{person.anchor_on:%a %d %b}" if person.anchor_on else "",
            f"{person.percent}% ({person.done}/{person.total})",
            str(person.overdue),
            str(person.blocked),
            f"{person.next_due:%a %d %b}" if person.next_due else "",
        )
    console.print(table)
