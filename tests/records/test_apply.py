"""Applying normalized updates: match, partial apply, blank vs CLEAR, stale → review, the
review policy, the field-level audit, and nothing applied from an invalid record."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    AuditEntry,
    Coverage,
    Location,
    Patient,
    PatientIdentifier,
    Provider,
    RecordReview,
    WorkItem,
)
from office.records import (
    CLEAR,
    ApplyStatus,
    CoverageUpdate,
    Identifier,
    PatientUpdate,
    Submitter,
)
from office.records.match import CERTAIN, WEIGHTS
from office.records.updates import ConsentUpdate, RecordBatch, SourceKind
from office.records.validate import check_batch
from tests.records.conftest import NOW, ann, apply


def patient(factory: sessionmaker[Session], mrn: str = "M1") -> Patient:
    with factory() as session:
        return session.scalars(select(Patient).where(Patient.mrn == mrn)).one()


def audit(factory: sessionmaker[Session], entity: str = "patients") -> list[tuple[str, ...]]:
    with factory() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.entity == entity).order_by(AuditEntry.id)
        ).all()
        return [(a.field, a.before or "", a.after or "", a.actor, a.source) for a in rows]


def test_normalizing_keeps_every_field_it_does_not_change() -> None:
    # The validator builds the normalized records field by field: none may be dropped.
    coverage = CoverageUpdate(
        payer_code="60054",
        payer_name="Aetna",
        member_id="W1",
        group_number="G1",
        plan_name="Gold",
        rank=1,
        effective_from=date(2025, 1, 1),
        effective_to=date(2026, 1, 1),
        relationship_code="18",
        subscriber_first_name="Ann",
        subscriber_last_name="Lee",
        subscriber_date_of_birth=date(1980, 5, 1),
        subscriber_sex="F",
        copay_on_file=Decimal("20.00"),
        expected_version=3,
    )
    update = PatientUpdate(
        mrn="M1",
        identifiers=(Identifier("ehr", "7"),),
        first_name="Ann",
        middle_name="B",
        last_name="Lee",
        suffix="Jr",
        date_of_birth=date(1980, 5, 1),
        sex="F",
        phone="+13125550123",
        email="ann@example.com",
        address_line1="1 Lake Street",
        address_line2="Apt 2",
        city="Chicago",
        state="IL",
        postal_code="60601",
        language="en",
        coverages=(coverage,),
        consents=(ConsentUpdate("email", True),),
        expected_version=2,
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    batch = RecordBatch((update,), SourceKind.HL7, Submitter.PATIENT, 4, "C1", label="row 1", row=1)
    checked, problems = check_batch(batch, today=NOW.date())
    assert problems == []
    assert checked == batch
    for record in (update, coverage):
        assert all(getattr(record, f.name) not in (None, ()) for f in dataclasses.fields(record))


def test_a_new_patient_is_created_normalized_with_one_audit_entry_per_field(
    practice: sessionmaker[Session],
) -> None:
    outcome = apply(practice, ann(first_name="  Ann  Marie ", email="Ann.Lee@EXAMPLE.com"))
    assert outcome.status is ApplyStatus.APPLIED
    (result,) = outcome.results
    assert result.created
    stored = patient(practice)
    assert (stored.first_name, stored.phone, stored.email) == (
        "Ann Marie",
        "+13125550123",
        "Ann.Lee@example.com",
    )
    fields = {row[0]: row for row in audit(practice)}
    assert fields["phone"] == ("phone", "", "+13125550123", "test", "hl7")
    assert set(fields) >= {"mrn", "first_name", "last_name", "date_of_birth", "sex", "email"}
    assert {row[0] for row in audit(practice, "coverages")} >= {"payer_id", "member_id", "rank"}


def test_a_blank_never_erases_and_clear_deletes(practice: sessionmaker[Session]) -> None:
    apply(practice, ann(city="Chicago"))
    apply(practice, PatientUpdate(mrn="M1", last_name="Lee-Park"))  # everything else absent
    stored = patient(practice)
    assert (stored.last_name, stored.email, stored.city) == (
        "Lee-Park",
        "ann.lee@example.com",
        "Chicago",
    )
    outcome = apply(practice, PatientUpdate(mrn="M1", email=CLEAR, city=CLEAR))
    assert outcome.results[0].changed == ("email", "city")
    stored = patient(practice)
    assert (stored.email, stored.city, stored.phone) == (None, None, "+13125550123")
    tail = audit(practice)[-2:]
    assert tail == [
        ("email", "ann.lee@example.com", "", "test", "hl7"),
        ("city", "Chicago", "", "test", "hl7"),
    ]


def test_a_required_field_cannot_be_cleared(practice: sessionmaker[Session]) -> None:
    apply(practice, ann())
    outcome = apply(practice, PatientUpdate(mrn="M1", last_name=CLEAR, city="Evanston"))
    assert outcome.status is ApplyStatus.REJECTED
    assert outcome.reason == "message 1: last_name: cannot be cleared"
    assert patient(practice).city is None  # nothing from the record applied


def test_an_update_that_changes_nothing_writes_nothing(practice: sessionmaker[Session]) -> None:
    apply(practice, ann())
    before = len(audit(practice))
    outcome = apply(practice, ann())
    assert outcome.status is ApplyStatus.UNCHANGED
    assert len(audit(practice)) == before
    assert patient(practice).version == 1


def test_invalid_records_are_rejected_with_every_reason_and_no_values(
    practice: sessionmaker[Session],
) -> None:
    outcome = apply(
        practice,
        ann(
            phone="12",
            email="not-an-email",
            date_of_birth=NOW.date() + timedelta(days=1),
            state="ZZ",
            postal_code="6060",
        ),
    )
    assert outcome.status is ApplyStatus.REJECTED
    fields = sorted(p.field for p in outcome.problems)
    assert fields == ["date_of_birth", "email", "phone", "postal_code", "state"]
    assert all(p.where == "message 1" for p in outcome.problems)
    assert "not-an-email" not in outcome.reason
    with practice() as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 0
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == audit_count_base(
            session
        )


def audit_count_base(session: Session) -> int:
    """The practice import's own audit entries (none of them about patients)."""
    return (
        session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.entity != "patients")
        )
        or 0
    )


def test_medicare_member_ids_must_be_mbis(practice: sessionmaker[Session]) -> None:
    bad = CoverageUpdate(payer_code="MEDB", member_id="MED123456789", rank=1)
    outcome = apply(practice, ann(coverages=(bad,)))
    assert [str(p) for p in outcome.problems] == [
        "message 1: coverage 1.member_id: not a Medicare Beneficiary Identifier (MBI)"
    ]
    good = CoverageUpdate(payer_code="MEDB", member_id="1eg4-te5-mk73", rank=1)
    assert apply(practice, ann(coverages=(good,))).status is ApplyStatus.APPLIED
    with practice() as session:
        assert session.scalars(select(Coverage.member_id)).one() == "1EG4TE5MK73"


def test_an_unknown_payer_rejects_the_whole_record(practice: sessionmaker[Session]) -> None:
    outcome = apply(practice, ann(coverages=(CoverageUpdate(payer_code="NOPE", member_id="1"),)))
    assert outcome.reason == "message 1: coverage 1.payer: no payer with this code or name"
    with practice() as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 0


def test_a_sender_id_is_linked_and_then_matches_exactly(practice: sessionmaker[Session]) -> None:
    apply(practice, ann(identifiers=(Identifier("PMS", "77"),)))
    outcome = apply(practice, PatientUpdate(identifiers=(Identifier("PMS", "77"),), city="Skokie"))
    assert outcome.status is ApplyStatus.APPLIED
    assert patient(practice).city == "Skokie"
    with practice() as session:
        assert session.scalars(select(PatientIdentifier.value)).all() == ["77"]


def test_mrn_and_sender_id_naming_different_patients_is_refused(
    practice: sessionmaker[Session],
) -> None:
    apply(practice, ann(identifiers=(Identifier("PMS", "77"),)))
    apply(practice, ann(mrn="M2", first_name="Bo", date_of_birth=date(1990, 5, 5)))
    outcome = apply(practice, PatientUpdate(mrn="M2", identifiers=(Identifier("PMS", "77"),)))
    assert outcome.reason == "message 1: identity: the MRN and sender ids name different patients"


def test_a_certain_match_without_ids_applies_and_shows_its_scores(
    practice: sessionmaker[Session],
) -> None:
    apply(practice, ann())
    update = PatientUpdate(
        first_name="ann",
        last_name="LEE",
        date_of_birth=date(1980, 1, 2),
        phone="312-555-0123",
        city="Oak Park",
    )
    outcome = apply(practice, update)
    (result,) = outcome.results
    assert outcome.status is ApplyStatus.APPLIED
    assert result.patient_id == patient(practice).id
    (scored,) = result.scores
    assert scored.parts == {
        "date_of_birth": WEIGHTS["date_of_birth"],
        "first_name": WEIGHTS["first_name"],
        "last_name": WEIGHTS["last_name"],
        "phone": WEIGHTS["phone"],
    }
    assert scored.total >= CERTAIN
    assert patient(practice).city == "Oak Park"


def test_a_possible_match_is_a_duplicate_review_with_scores_side_by_side(
    practice: sessionmaker[Session],
) -> None:
    apply(practice, ann())
    update = PatientUpdate(
        first_name="Anne", last_name="Lee", date_of_birth=date(1980, 1, 2), sex="F"
    )
    outcome = apply(practice, update)
    assert outcome.status is ApplyStatus.POSSIBLE_DUPLICATE
    on_file = patient(practice).id
    with practice() as session:
        review = session.scalars(select(RecordReview)).one()
        assert review.kind == "possible_duplicate"
        (candidate,) = review.candidates
        assert (candidate["patient_id"], candidate["total"]) == (on_file, 12)
        assert candidate["parts"] == {
            "date_of_birth": 6,
            "first_name_sounds_like": 3,
            "last_name": 3,
        }
        item = session.scalars(select(WorkItem).where(WorkItem.kind == "possible_duplicate")).one()
        assert (item.entity, item.entity_id) == ("record_review", review.id)
        assert "Anne" not in item.summary
        assert session.scalar(select(func.count()).select_from(Patient)) == 1


def test_no_candidate_creates_a_new_patient(practice: sessionmaker[Session]) -> None:
    apply(practice, ann())
    other = PatientUpdate(
        first_name="Bo", last_name="Chen", date_of_birth=date(1980, 1, 2), sex="M"
    )
    outcome = apply(practice, other)
    assert outcome.results[0].created
    with practice() as session:
        assert session.scalar(select(func.count()).select_from(Patient)) == 2


def test_a_stale_version_becomes_a_review_and_overwrites_nothing(
    practice: sessionmaker[Session],
) -> None:
    apply(practice, ann())
    apply(practice, PatientUpdate(mrn="M1", city="Chicago"))  # now version 2
    outcome = apply(practice, PatientUpdate(mrn="M1", city="Evanston", expected_version=1))
    assert outcome.status is ApplyStatus.FOR_REVIEW
    assert outcome.results[0].review_kinds == ("stale_update",)
    assert patient(practice).city == "Chicago"
    with practice() as session:
        review = session.scalars(select(RecordReview)).one()
        assert review.current == {"city": "Chicago"}
        assert review.fields == ["city"]
        assert review.proposed["city"] == "Evanston"


def test_an_event_older_than_the_last_applied_is_stale(practice: sessionmaker[Session]) -> None:
    apply(practice, ann(occurred_at=NOW - timedelta(hours=1)))
    outcome = apply(
        practice, PatientUpdate(mrn="M1", city="Evanston", occurred_at=NOW - timedelta(hours=2))
    )
    assert outcome.status is ApplyStatus.FOR_REVIEW
    assert patient(practice).city is None
    later = PatientUpdate(mrn="M1", city="Skokie", occurred_at=NOW)
    assert apply(practice, later).status is ApplyStatus.APPLIED


def test_a_patients_own_change_of_a_reviewed_field_waits_the_rest_applies(
    practice: sessionmaker[Session],
) -> None:
    apply(practice, ann())
    update = PatientUpdate(mrn="M1", last_name="Lee-Park", phone="312 555 0199")
    outcome = apply(practice, update, submitter=Submitter.PATIENT)
    (result,) = outcome.results
    assert result.changed == ("phone",)
    assert result.review_kinds == ("record_review",)
    stored = patient(practice)
    assert (stored.last_name, stored.phone) == ("Lee", "+13125550199")
    with practice() as session:
        review = session.scalars(select(RecordReview)).one()
        assert (review.current, review.fields) == ({"last_name": "Lee"}, ["last_name"])
        assert review.proposed["last_name"] == "Lee-Park"
        assert "phone" not in review.proposed


def test_a_patients_insurance_change_waits_for_review(practice: sessionmaker[Session]) -> None:
    apply(practice, ann())
    card = CoverageUpdate(payer_code="SUMMIT", member_id="SU9", rank=1)
    outcome = apply(
        practice, PatientUpdate(mrn="M1", coverages=(card,)), submitter=Submitter.PATIENT
    )
    assert outcome.status is ApplyStatus.FOR_REVIEW
    with practice() as session:
        assert session.scalars(select(Coverage.member_id)).one() == "PR1"
        review = session.scalars(select(RecordReview)).one()
        assert set(review.fields) == {"coverage 1.payer_id", "coverage 1.member_id"}


def test_a_coverage_change_lists_the_upcoming_visits_to_check_again(
    practice: sessionmaker[Session],
) -> None:
    apply(practice, ann())
    with transaction(practice) as session:
        stored = session.scalars(select(Patient)).one()
        provider = session.scalars(select(Provider)).one()
        location = session.scalars(select(Location)).one()
        kind = session.scalars(select(AppointmentType)).one()
        visits = []
        plan = [
            (2, AppointmentStatus.BOOKED),
            (-2, AppointmentStatus.BOOKED),
            (3, AppointmentStatus.CANCELLED),
            (4, AppointmentStatus.CONFIRMED),
        ]
        for days, status in plan:
            visit = Appointment(
                patient_id=stored.id,
                provider_id=provider.id,
                location_id=location.id,
                appointment_type_id=kind.id,
                start_at=NOW + timedelta(days=days),
                status=status,
            )
            session.add(visit)
            visits.append(visit)
        session.flush()
        upcoming = [visits[0].id, visits[3].id]
    card = CoverageUpdate(payer_code="PRAIRIE", member_id="PR2", rank=1)
    outcome = apply(practice, PatientUpdate(mrn="M1", coverages=(card,)))
    assert outcome.reverify == tuple(upcoming)
    assert apply(practice, PatientUpdate(mrn="M1", city="X")).reverify == ()
