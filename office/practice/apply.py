"""Applying a validated practice file: create or change each entry by its key, audited.

Staff who join or leave are reported to a `StaffHook` inside the same transaction, once
their rows are written: "added" for a person created by the file, "departing" when the
file sets or moves someone's end date. Onboarding hangs its checklists on that hook, so a
checklist exists exactly when the import that hired the person committed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from office.intake import Outcome
from office.ledgers import apply_changes, record_change
from office.models import (
    AppointmentType,
    Base,
    InboxItem,
    Location,
    Payer,
    Practice,
    Provider,
    Staff,
    StaffStatus,
)
from office.practice.schema import PracticeFile, parse_practice

__all__ = [
    "PracticeResult",
    "StaffChange",
    "StaffChangeKind",
    "StaffHook",
    "apply_practice",
    "apply_practice_file",
]


class StaffChangeKind(StrEnum):
    ADDED = "added"  # created by the file: start their onboarding
    DEPARTING = "departing"  # the file set or moved their end date: start their offboarding


@dataclass(frozen=True, slots=True)
class StaffChange:
    """One person joining or leaving, by id; `on` is their start date or their last day."""

    kind: StaffChangeKind
    staff_id: int
    on: date


# Called inside the import's transaction (the caller commits); raising rolls the import back.
StaffHook = Callable[[Session, StaffChange, datetime], None]


@dataclass(frozen=True, slots=True)
class PracticeResult:
    """What an import did: the practice, counts per section, and who joined or left."""

    practice_id: int
    counts: Counter[str]
    staff_changes: tuple[StaffChange, ...] = field(default=())


def apply_practice_file(
    session: Session, item: InboxItem, *, now: datetime, on_staff: StaffHook | None = None
) -> Outcome:
    """A stored practice file's handler."""
    result = apply_practice(
        session,
        parse_practice(item.body),
        actor=item.source[:80],
        source=f"inbox:{item.id}",
        now=now,
        on_staff=on_staff,
    )
    return Outcome("practices", result.practice_id, counts=tuple(sorted(result.counts.items())))


def apply_practice(
    session: Session,
    document: PracticeFile,
    *,
    actor: str,
    source: str,
    now: datetime,
    on_staff: StaffHook | None = None,
) -> PracticeResult:
    """Create or update every entry, then tell `on_staff` who joined or left.

    Returns the practice id, counts ("clinics_created", "staff_changed", ...) and the
    staff changes, in file order.
    """
    counts: Counter[str] = Counter()
    audit = {"actor": actor, "source": source}

    def upsert(model: type[Base], found: Any, values: dict[str, Any], label: str) -> Any:
        if found is None:
            row = model(**values)
            session.add(row)
            session.flush()
            for name, value in values.items():
                if value is not None:
                    record_change(session, row, name, None, value, actor=actor, source=source)
            counts[f"{label}_created"] += 1
            return row
        if apply_changes(session, found, values, **audit):
            counts[f"{label}_changed"] += 1
        return found

    entry = document.practice
    practice = upsert(
        Practice,
        session.scalar(select(Practice).where(Practice.name == entry.name)),
        {"name": entry.name, "phone": entry.phone, "email_domain": entry.email_domain},
        "practice",
    )
    clinics: dict[str, int] = {}
    for clinic in document.clinics:
        found = session.scalar(
            select(Location).where(
                Location.practice_id == practice.id, Location.name == clinic.name
            )
        )
        row = upsert(
            Location,
            found,
            {
                "practice_id": practice.id,
                "name": clinic.name,
                "timezone": clinic.timezone,
                "phone": clinic.phone,
                "address_line1": clinic.address.line1,
                "address_line2": clinic.address.line2,
                "city": clinic.address.city,
                "state": clinic.address.state,
                "postal_code": clinic.address.postal_code,
                "office_hours": {day: list(hours) for day, hours in clinic.hours.items()},
            },
            "clinics",
        )
        clinics[clinic.name] = row.id
    for provider in document.providers:
        upsert(
            Provider,
            session.scalar(select(Provider).where(Provider.npi == provider.npi)),
            {"practice_id": practice.id, **provider.model_dump()},
            "providers",
        )
    for payer in document.payers:
        upsert(
            Payer,
            session.scalar(select(Payer).where(Payer.payer_code == payer.code)),
            {
                "payer_code": payer.code,
                "name": payer.name,
                "adapter": payer.adapter,
                "adapter_settings": dict(payer.settings),
                "concurrency_limit": payer.concurrency_limit,
                "rate_per_second": payer.rate_per_second,
            },
            "payers",
        )
    for kind in document.appointment_types:
        upsert(
            AppointmentType,
            session.scalar(select(AppointmentType).where(AppointmentType.code == kind.code)),
            {
                "code": kind.code,
                "name": kind.name,
                "duration_minutes": kind.minutes,
                "service_type_code": kind.service_type,
                "sensitive": kind.sensitive,
                "reminder_offsets": kind.reminders,
                "stop_on_confirm": kind.stop_on_confirm,
                "send_confirmation": kind.send_confirmation,
                "send_change_notices": kind.send_change_notices,
            },
            "appointment_types",
        )
    ends = {
        email.lower(): end
        for email, end in session.execute(select(Staff.email, Staff.end_date)).tuples()
    }
    created = _staff(session, document, clinics, upsert)
    # Managers second: one may come later in the file than the people they manage.
    for person in document.staff:
        if person.manager is not None:
            row = session.scalars(select(Staff).where(Staff.email == person.email.lower())).one()
            manager_id = session.scalar(
                select(Staff.id).where(Staff.email == person.manager.lower())
            )
            changed = apply_changes(session, row, {"manager_id": manager_id}, **audit)
            if changed and person.email.lower() not in created:
                counts["staff_changed"] += 1
    changes = _staff_changes(session, document, created, ends)
    for change in changes:
        counts[f"staff_{change.kind.value}"] += 1
        if on_staff is not None:
            on_staff(session, change, now)
    return PracticeResult(practice.id, counts, changes)


def _staff_changes(
    session: Session, document: PracticeFile, created: set[str], ends: dict[str, date | None]
) -> tuple[StaffChange, ...]:
    """Who the file hired (not already gone) and whose last day it set or moved."""
    ids = {
        email.lower(): staff_id
        for staff_id, email in session.execute(select(Staff.id, Staff.email)).tuples()
    }
    changes = []
    for person in document.staff:
        email = person.email.lower()
        if email in created:
            if person.status != StaffStatus.INACTIVE.value:
                changes.append(StaffChange(StaffChangeKind.ADDED, ids[email], person.start_date))
        elif person.end_date is not None and ends.get(email) != person.end_date:
            changes.append(StaffChange(StaffChangeKind.DEPARTING, ids[email], person.end_date))
    return tuple(changes)


def _staff(
    session: Session, document: PracticeFile, clinics: dict[str, int], upsert: Any
) -> set[str]:
    """Every staff member but their manager; returns the emails created."""
    created = set()
    for person in document.staff:
        email = person.email.lower()
        found = session.scalar(select(Staff).where(func.lower(Staff.email) == email))
        if found is None:
            created.add(email)
        upsert(
            Staff,
            found,
            {
                "email": email,
                "first_name": person.first_name,
                "last_name": person.last_name,
                "role": person.role,
                "location_id": clinics.get(person.clinic) if person.clinic else None,
                "start_date": person.start_date,
                "end_date": person.end_date,
                "status": StaffStatus(person.status),
                "role_lead": person.role_lead,
            },
            "staff",
        )
    return created
