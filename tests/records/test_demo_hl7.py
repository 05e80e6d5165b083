"""The demo's HL7 messages (A04, A08, S12) stored as the MLLP listener stores them, then
applied by the intake in order: the patient registered, updated, and booked."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.demo import _receive_sample_hl7
from app.demo_import import seed_practice
from office.intake import process_item
from office.models import Appointment, InboxItem, InboxStatus, Patient
from tests.records.conftest import NOW


def test_the_demo_registers_updates_and_books_a_patient_over_hl7(
    factory: sessionmaker[Session], tmp_path: Path
) -> None:
    seed_practice(factory, tmp_path, seed=7, now=NOW, patients=20, appointments=30)
    _receive_sample_hl7(factory, NOW)
    with factory() as session:
        ids = session.scalars(
            select(InboxItem.id).where(InboxItem.source == "hl7:RIVERBEND").order_by(InboxItem.id)
        ).all()
    assert len(ids) == 3
    results = [process_item(factory, item_id, now=NOW) for item_id in ids]
    assert [r.status for r in results] == [InboxStatus.PROCESSED] * 3, [r.reason for r in results]
    with factory() as session:
        patient = session.scalars(select(Patient).where(Patient.mrn == "MRN-HL7-1")).one()
        visit = session.scalars(
            select(Appointment).where(Appointment.external_id == "HL7-APPT-1")
        ).one()
    assert (patient.address_line1, patient.version) == ("48 Birch Lane", 2)
    assert visit.patient_id == patient.id
