"""HL7 v2 messages stored in the inbox and processed by the intake: ADT updates patients
and coverages, A40 becomes a review, SIU books through the bookings handler, and what
cannot be read is rejected with where, nothing applied."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from integrations.hl7.samples import SampleCoverage, SamplePatient, adt_message, siu_message
from office.db import transaction
from office.intake import process_item
from office.ledgers import store_inbound
from office.models import (
    Appointment,
    Coverage,
    InboxStatus,
    Patient,
    PatientIdentifier,
    RecordReview,
)
from tests.records.conftest import NOW


def deliver(factory: sessionmaker[Session], body: bytes, key: str) -> tuple[int, InboxStatus, str]:
    with transaction(factory) as session:
        item, _new = store_inbound(session, source="hl7:RIVERBEND", key=key, body=body)
        item_id = item.id
    result = process_item(factory, item_id, now=NOW)
    return item_id, result.status, result.reason or ""


def stored(factory: sessionmaker[Session], mrn: str = "MRN10001") -> Patient:
    with factory() as session:
        return session.scalars(select(Patient).where(Patient.mrn == mrn)).one()


def test_an_a04_registers_the_patient_with_coverage_and_sender_ids(
    practice: sessionmaker[Session],
) -> None:
    body = adt_message("A04", "C-1", SamplePatient(), coverages=(SampleCoverage(),), sent_at=NOW)
    _id, status, reason = deliver(practice, body, "C-1")
    assert status is InboxStatus.PROCESSED, reason
    patient = stored(practice)
    assert (patient.first_name, patient.last_name, patient.phone) == (
        "Avery",
        "Testperson",
        "+12175550142",
    )
    with practice() as session:
        coverage = session.scalars(select(Coverage).where(Coverage.patient_id == patient.id)).one()
        systems = set(
            session.scalars(
                select(PatientIdentifier.system).where(PatientIdentifier.patient_id == patient.id)
            )
        )
    assert coverage.member_id == "W123456789"
    assert systems == {"RIVERBEND", "HIE"}


def test_an_a08_changes_only_what_it_carries(practice: sessionmaker[Session]) -> None:
    first = adt_message("A04", "C-1", SamplePatient(), coverages=(SampleCoverage(),), sent_at=NOW)
    deliver(practice, first, "C-1")
    moved = SamplePatient(street="48 Birch Lane")
    later = adt_message("A08", "C-2", moved, sent_at=NOW + timedelta(minutes=5))
    _id, status, reason = deliver(practice, later, "C-2")
    assert status is InboxStatus.PROCESSED, reason
    patient = stored(practice)
    assert patient.address_line1 == "48 Birch Lane"
    assert patient.version == 2
    with practice() as session:
        assert session.scalars(select(Coverage.member_id)).all() == ["W123456789"]


def test_an_a40_is_a_merge_review_never_a_merge(practice: sessionmaker[Session]) -> None:
    deliver(practice, adt_message("A04", "C-1", SamplePatient(), sent_at=NOW), "C-1")
    other = SamplePatient(
        mrn="MRN20002",
        family="Otherperson",
        given="Blake",
        local_number="5550199",
        email="blake@example.com",
        enterprise_id="E-88002",
    )
    deliver(practice, adt_message("A04", "C-2", other, sent_at=NOW), "C-2")
    merge = adt_message("A40", "C-3", SamplePatient(), sent_at=NOW, retired_mrn="MRN20002")
    _id, status, reason = deliver(practice, merge, "C-3")
    assert status is InboxStatus.PROCESSED, reason
    with practice() as session:
        review = session.scalars(select(RecordReview)).one()
        merged = session.scalars(select(Patient.merged_into_id)).all()
    assert review.kind == "merge_request"
    assert review.candidates == [{"patient_id": stored(practice, "MRN20002").id, "role": "retired"}]
    assert merged == [None, None]


def test_an_s12_books_through_the_bookings_handler(practice: sessionmaker[Session]) -> None:
    deliver(practice, adt_message("A04", "C-1", SamplePatient(), sent_at=NOW), "C-1")
    booking = siu_message(
        "S12",
        "S-1",
        appointment_id="PM-APPT-1",
        mrn="MRN10001",
        start=NOW + timedelta(days=3),
        location="Main",
        appointment_type="follow-up",
        sent_at=NOW,
    )
    _id, status, reason = deliver(practice, booking, "S-1")
    assert status is InboxStatus.PROCESSED, reason
    with practice() as session:
        visit = session.scalars(select(Appointment)).one()
    assert (visit.external_id, visit.patient_id) == ("PM-APPT-1", stored(practice).id)


def test_an_unreadable_message_is_rejected_with_where_and_changes_nothing(
    practice: sessionmaker[Session],
) -> None:
    body = adt_message("A08", "C-9", SamplePatient(), sent_at=NOW, overrides={"PID-7": "19841399"})
    _id, status, reason = deliver(practice, body, "C-9")
    assert status is InboxStatus.REJECTED
    assert "date_of_birth" in reason or "PID-7" in reason
    assert "1984" not in reason
    with practice() as session:
        assert session.scalars(select(Patient)).all() == []
