"""The demo practice brought in as a practice brings its own: files, stored, then handled.

The practice file and the patients' CSV are written to OFFICE_HOME/demo/ (0600, for anyone
curious) and imported exactly as `office practice import` and `office records import` do:
stored in the inbox whole, then processed by the file's handler. The practice file is
imported twice: as it stood a week ago, when the first new hire was added (their onboarding
starts then), and as it stands today, adding the second. The visits are booked as rows, and
the few patients' confidential-communication requests (no CSV column) are set on their
records afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.demo_data import DemoData, build_demo, patients_csv, practice_yaml
from office.db import transaction
from office.home import write_private
from office.intake import process_item, store_file
from office.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Channel,
    Coverage,
    Location,
    Patient,
    Payer,
    Provider,
    Staff,
)
from office.records.apply import ApplyStatus
from office.settings import SettingsError

__all__ = ["SeedCounts", "import_demo", "seed_practice"]


@dataclass(frozen=True)
class SeedCounts:
    patients: int
    coverages: int
    appointments: int
    staff: int
    locations: int
    payers: int


class DemoImportError(SettingsError):
    """A demo file was not imported whole: a bug in the demo's data; counts only."""


def seed_practice(
    factory: sessionmaker[Session],
    home: Path,
    *,
    seed: int = 42,
    now: datetime,
    patients: int = 220,
    appointments: int = 440,
) -> SeedCounts:
    """The demo practice, imported into `factory`'s database; the same seed, the same data."""
    data = build_demo(seed=seed, now=now, patients=patients, appointments=appointments)
    return import_demo(factory, home, data, now=now)


def import_demo(
    factory: sessionmaker[Session], home: Path, data: DemoData, *, now: datetime
) -> SeedCounts:
    """Write the demo's files, import them, book the visits; returns what is there."""
    folder = home / "demo"
    files = (
        ("practice-a-week-ago.yaml", practice_yaml(data.without_hire(1)), now - timedelta(days=7)),
        ("practice.yaml", practice_yaml(data.practice), now),
        ("patients.csv", patients_csv(data.patients), now),
    )
    for name, body, when in files:
        write_private(folder / name, body)
        kind = "text/csv" if name.endswith(".csv") else "application/yaml"
        _import(factory, name, body, kind, when)
    with transaction(factory) as session:
        _ask_confidential(session, data)
        booked = _book(session, data, now)
        return SeedCounts(
            patients=len(session.scalars(select(Patient.id)).all()),
            coverages=len(session.scalars(select(Coverage.id)).all()),
            appointments=booked,
            staff=len(session.scalars(select(Staff.id)).all()),
            locations=len(session.scalars(select(Location.id)).all()),
            payers=len(session.scalars(select(Payer.id)).all()),
        )


def _import(
    factory: sessionmaker[Session], name: str, body: bytes, content_type: str, now: datetime
) -> None:
    """As `office ... import` does: store, then process; every row must apply."""
    with transaction(factory) as session:
        item_id = store_file(session, name, body, content_type)[0].id
    result = process_item(factory, item_id, now=now)
    if result.reason or result.outcome is None:
        raise DemoImportError(f"demo file {name} (inbox item {item_id}) rejected: {result.reason}")
    counts = dict(result.outcome.counts)
    held = {k: v for k, v in counts.items() if k not in ("rows", ApplyStatus.APPLIED.value)}
    if "rows" in counts and held:
        raise DemoImportError(f"demo file {name} (inbox item {item_id}) not applied whole: {held}")


def _ask_confidential(session: Session, data: DemoData) -> None:
    by_mrn = {data.patients[index]["mrn"]: address for index, address in data.confidential.items()}
    for patient in session.scalars(select(Patient).where(Patient.mrn.in_(by_mrn))):
        patient.confidential_communications = True
        patient.confidential_channel = Channel.EMAIL
        patient.confidential_address = by_mrn[patient.mrn]


def _book(session: Session, data: DemoData, now: datetime) -> int:
    """The visits, as rows: patients by MRN, the rest in the file's order."""
    ids = dict(session.execute(select(Patient.mrn, Patient.id)).tuples().all())
    patients = [ids[row["mrn"]] for row in data.patients]
    providers = session.scalars(select(Provider.id).order_by(Provider.id)).all()
    locations = session.scalars(select(Location.id).order_by(Location.id)).all()
    kinds = session.scalars(select(AppointmentType).order_by(AppointmentType.id)).all()
    for visit in data.visits:
        kind = kinds[visit.kind]
        confirmed = visit.confirmed
        session.add(
            Appointment(
                external_id=visit.external_id,
                patient_id=patients[visit.patient],
                provider_id=providers[visit.provider],
                location_id=locations[visit.location],
                appointment_type_id=kind.id,
                start_at=visit.start_at,
                duration_minutes=kind.duration_minutes,
                status=AppointmentStatus.CONFIRMED if confirmed else AppointmentStatus.BOOKED,
                booked_at=visit.booked_at,
                confirmed_at=now if confirmed else None,
            )
        )
    session.flush()
    return len(data.visits)
