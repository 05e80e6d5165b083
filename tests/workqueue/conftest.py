"""Work-queue fixtures: a small practice (two clinics in two zones) and a way to raise items."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Location,
    Patient,
    Practice,
    Provider,
    Staff,
)

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 09:00 in Chicago, 08:00 in Denver


@dataclass(frozen=True)
class Clinic:
    practice_id: int
    chicago: int  # location ids
    denver: int
    provider: int
    visit_type: int
    manager: int  # staff ids
    front_desk: int
    billing: int


@pytest.fixture
def clinic(factory: sessionmaker[Session]) -> Clinic:
    with transaction(factory) as session:
        practice = Practice(name="Test Practice")
        session.add(practice)
        session.flush()
        chicago = Location(practice_id=practice.id, name="Downtown", timezone="America/Chicago")
        denver = Location(practice_id=practice.id, name="Foothills", timezone="America/Denver")
        provider = Provider(
            practice_id=practice.id, npi="1234567893", first_name="A", last_name="B"
        )
        kind = AppointmentType(code="follow-up", name="Follow-up visit")
        session.add_all([chicago, denver, provider, kind])
        session.flush()
        staff = [
            Staff(
                first_name=first,
                last_name="Staff",
                email=f"{first.lower()}@practice.test",
                role=role,
                start_date=date(2020, 1, 1),
                role_lead=True,
            )
            for first, role in (
                ("Morgan", "office_manager"),
                ("Frankie", "front_desk"),
                ("Billie", "billing"),
            )
        ]
        session.add_all(staff)
        session.flush()
        return Clinic(
            practice.id,
            chicago.id,
            denver.id,
            provider.id,
            kind.id,
            staff[0].id,
            staff[1].id,
            staff[2].id,
        )


def add_patient(session: Session, n: int) -> int:
    patient = Patient(
        mrn=f"MRN{n:05d}",
        first_name=f"Pat{n}",
        last_name="Doe",
        date_of_birth=date(1980, 1, 1),
        sex="F",
    )
    session.add(patient)
    session.flush()
    return patient.id


def add_visit(
    session: Session,
    clinic: Clinic,
    patient_id: int,
    start: datetime,
    *,
    denver: bool = False,
    status: AppointmentStatus = AppointmentStatus.BOOKED,
) -> int:
    appointment = Appointment(
        patient_id=patient_id,
        provider_id=clinic.provider,
        location_id=clinic.denver if denver else clinic.chicago,
        appointment_type_id=clinic.visit_type,
        start_at=start,
        status=status,
    )
    session.add(appointment)
    session.flush()
    return appointment.id


def days(n: float) -> timedelta:
    return timedelta(days=n)
