"""A practice with open work items, for the board's tests and its benchmark (`bench/board.py`).

Everything is bulk-inserted, so 10,000 items take seconds; items are opened through the
work ledger (`open_work_items`), as the flows open them. Names are made up and distinctive.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from office.clock import chunks
from office.ledgers.work import WorkNeeded, open_work_items
from office.models import (
    Appointment,
    AppointmentType,
    Location,
    Patient,
    Practice,
    Provider,
    StaffLogin,
)
from office.staff_auth import add_login, set_password
from office.workqueue import kind_of

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 09:00 in Chicago, 08:00 in Denver
PASSWORD = "board test password"
CLINICS = (("Riverside Clinic", "America/Chicago"), ("Mesa Clinic", "America/Denver"))
# Kinds the board shows, by owner: front desk blockers and actions, a billing action.
FRONT_DESK_KINDS = ("authorization_required", "not_active", "fix_patient_data")
BILLING_KIND = "provider_setup"


@dataclass
class Seeded:
    clinic_ids: list[int]
    patient_ids: list[int] = field(default_factory=list)
    appointment_ids: list[int] = field(default_factory=list)
    item_ids: dict[str, int] = field(default_factory=dict)  # dedupe key -> item id


def patient_name(index: int) -> tuple[str, str]:
    return f"Quenby{index:05d}", "Marchbanks"


def seed_practice(session: Session, visits: int, *, now: datetime = NOW) -> Seeded:
    """Two clinics and `visits` patients, each with one booked visit in the coming days."""
    practice = Practice(name="Board Test Practice")
    session.add(practice)
    session.flush()
    locations = [Location(practice_id=practice.id, name=n, timezone=z) for n, z in CLINICS]
    provider = Provider(
        practice_id=practice.id, npi="1234567893", first_name="Ada", last_name="Byron"
    )
    kind = AppointmentType(code="office", name="Office visit")
    session.add_all([*locations, provider, kind])
    session.flush()
    seeded = Seeded(clinic_ids=[loc.id for loc in locations])
    born = date(1970, 1, 1)
    rows = []
    for index in range(visits):
        first, last = patient_name(index)
        rows.append(
            {
                "mrn": f"MRN-B{index:06d}",
                "first_name": first,
                "last_name": last,
                "date_of_birth": born,
                "sex": "U",
                "language": "en",
                "confidential_communications": False,
                "email_undeliverable": False,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
        )
    for chunk in chunks(rows):
        session.execute(insert(Patient), chunk)
    seeded.patient_ids = list(session.scalars(select(Patient.id).order_by(Patient.id)))
    appointments = [
        {
            "patient_id": patient_id,
            "provider_id": provider.id,
            "location_id": seeded.clinic_ids[index % 2],
            "appointment_type_id": kind.id,
            "start_at": now + timedelta(days=1 + index % 5, minutes=15 * (index % 32)),
            "duration_minutes": 30,
            "status": "booked",
            "booked_at": now - timedelta(days=3),
            "updated_at": now,
            "version": 1,
        }
        for index, patient_id in enumerate(seeded.patient_ids)
    ]
    for chunk in chunks(appointments):
        session.execute(insert(Appointment), chunk)
    seeded.appointment_ids = list(session.scalars(select(Appointment.id).order_by(Appointment.id)))
    return seeded


def open_items(
    session: Session,
    seeded: Seeded,
    kinds: list[str],
    *,
    appointments: list[int] | None = None,
    now: datetime = NOW,
) -> dict[str, int]:
    """One item per visit, of the kinds given in turn; returns item ids by dedupe key."""
    targets = appointments if appointments is not None else seeded.appointment_ids
    needs = [
        WorkNeeded(
            kind,
            "appointment",
            appointment_id,
            f"{kind_of(kind).title} (appointment {appointment_id})",
            kind_of(kind).role,
        )
        for appointment_id, kind in zip(targets, itertools.cycle(kinds), strict=False)
    ]
    opened = open_work_items(session, needs, now=now)
    found = {key: item_id for key, (item_id, _created) in opened.items()}
    seeded.item_ids.update(found)
    return found


def add_board_login(
    session: Session, email: str, role: str, *, now: datetime = NOW, password: str = PASSWORD
) -> int:
    """A login with a password, as `office staff login-add --prompt` makes one."""
    local = email.split("@")[0]
    added = add_login(session, email, role, now=now, first_name=local.title(), last_name="Staff")
    set_password(session, session.get_one(StaffLogin, added.login_id), password, now=now)
    return added.login_id
