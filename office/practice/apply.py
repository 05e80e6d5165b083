"""Applying a validated practice file: create or change each entry by its key, audited."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
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

__all__ = ["apply_practice", "apply_practice_file"]


def apply_practice_file(session: Session, item: InboxItem, *, now: datetime) -> Outcome:
    """A stored practice file's handler."""
    practice_id, counts = apply_practice(
        session, parse_practice(item.body), actor=item.source[:80], source=f"inbox:{item.id}"
    )
    return Outcome("practices", practice_id, counts=tuple(sorted(counts.items())))


def apply_practice(
    session: Session, document: PracticeFile, *, actor: str, source: str
) -> tuple[int, Counter[str]]:
    """Create or update every entry; returns the practice id and counts (created, changed)."""
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
    return practice.id, counts


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
