"""Deciding held changes: approve applies (audited as staff), reject drops; a possible
duplicate approved is that patient, rejected is a new one remembered as distinct; a merge
retires a record into the survivor without deleting it; the work item closes with it."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import app
from flows import runtime
from office.db import transaction
from office.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    AuditEntry,
    Coverage,
    DistinctPatients,
    Followup,
    Location,
    Patient,
    PatientIdentifier,
    Provider,
    RecordReview,
    ReviewStatus,
    WorkItem,
    WorkStatus,
    utcnow,
)
from office.records import ApplyStatus, CoverageUpdate, PatientUpdate, Submitter
from office.records.review import ReviewError, approve_review, reject_review
from office.settings import Settings
from tests.records.conftest import NOW, TWIN, ann, apply, only_review, request_merge


def by_mrn(factory: sessionmaker[Session], mrn: str) -> Patient:
    with factory() as session:
        return session.scalars(select(Patient).where(Patient.mrn == mrn)).one()


def work_status(factory: sessionmaker[Session], review_id: int) -> WorkStatus:
    with factory() as session:
        return session.scalars(
            select(WorkItem.status).where(
                WorkItem.entity == "record_review", WorkItem.entity_id == review_id
            )
        ).one()


def test_approving_a_patients_held_name_change_applies_it_as_staff(
    practice: sessionmaker[Session],
) -> None:
    apply(practice, ann())
    apply(practice, PatientUpdate(mrn="M1", last_name="Lee-Park"), submitter=Submitter.PATIENT)
    review = only_review(practice)
    with transaction(practice) as session:
        decision = approve_review(session, review.id, by="mo", now=NOW, note="ID seen")
    assert decision.changed == ("last_name",)
    assert by_mrn(practice, "M1").last_name == "Lee-Park"
    with practice() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.field == "last_name").order_by(AuditEntry.id.desc())
        ).first()
    assert entry is not None
    assert (entry.before, entry.after, entry.actor) == ("Lee", "Lee-Park", "staff:mo")
    assert work_status(practice, review.id) is WorkStatus.DONE
    with pytest.raises(ReviewError, match="already approved"), transaction(practice) as session:
        approve_review(session, review.id, by="mo", now=NOW)


def test_rejecting_a_held_insurance_change_changes_nothing(practice: sessionmaker[Session]) -> None:
    apply(practice, ann())
    card = CoverageUpdate(payer_code="SUMMIT", member_id="SU9", rank=1)
    apply(practice, PatientUpdate(mrn="M1", coverages=(card,)), submitter=Submitter.PATIENT)
    review = only_review(practice)
    with transaction(practice) as session:
        reject_review(session, review.id, by="mo", now=NOW, note="old card")
    with practice() as session:
        assert session.scalars(select(Coverage.member_id)).one() == "PR1"
        decided = session.get_one(RecordReview, review.id)
    assert (decided.status, decided.decided_by) == (ReviewStatus.REJECTED, "mo")
    assert work_status(practice, review.id) is WorkStatus.DONE


def test_approving_a_stale_update_applies_what_the_person_saw(
    practice: sessionmaker[Session],
) -> None:
    apply(practice, ann())
    apply(practice, PatientUpdate(mrn="M1", city="Chicago"))
    apply(practice, PatientUpdate(mrn="M1", city="Evanston", expected_version=1))
    with transaction(practice) as session:
        approve_review(session, only_review(practice).id, by="mo", now=NOW)
    assert by_mrn(practice, "M1").city == "Evanston"


def test_a_duplicate_approved_is_that_patient_and_its_own_mrn_then_finds_them(
    practice: sessionmaker[Session],
) -> None:
    apply(practice, ann())
    assert apply(practice, TWIN).status is ApplyStatus.POSSIBLE_DUPLICATE
    review = only_review(practice)
    with transaction(practice) as session:
        decision = approve_review(session, review.id, by="mo", now=NOW)
    on_file = by_mrn(practice, "M1")
    assert (decision.patient_id, on_file.city, on_file.first_name) == (on_file.id, "Skokie", "Anne")
    with practice() as session:
        linked = session.scalars(select(PatientIdentifier)).one()
    assert (linked.system, linked.value, linked.patient_id) == ("mrn", "EXT-9", on_file.id)
    # The sender's MRN now names the patient exactly: no second review.
    assert (
        apply(practice, PatientUpdate(mrn="EXT-9", city="Evanston")).status is ApplyStatus.APPLIED
    )


def test_not_a_duplicate_creates_the_patient_and_is_remembered(
    practice: sessionmaker[Session],
) -> None:
    apply(practice, ann())
    twin = PatientUpdate(
        first_name="Ann",
        last_name="Lee",
        date_of_birth=date(1980, 1, 2),
        sex="F",
        phone="312-555-0123",
    )
    other = PatientUpdate(
        first_name="Ann",
        last_name="Lee",
        date_of_birth=date(1980, 1, 2),
        sex="F",
        email="second.ann@example.com",
    )
    assert apply(practice, other).status is ApplyStatus.POSSIBLE_DUPLICATE
    review = only_review(practice)
    with transaction(practice) as session:
        decision = reject_review(session, review.id, by="mo", now=NOW)
    first = by_mrn(practice, "M1")
    assert decision.patient_id is not None
    assert decision.patient_id != first.id
    with practice() as session:
        pair = session.scalars(select(DistinctPatients)).one()
    assert (pair.patient_id, pair.other_patient_id) == tuple(
        sorted((first.id, decision.patient_id))
    )
    # Both Anns now score as certain for a record with the first one's phone; since a person
    # called them distinct, the better score wins instead of asking again.
    outcome = apply(practice, twin)
    assert outcome.status in (ApplyStatus.APPLIED, ApplyStatus.UNCHANGED)
    assert outcome.results[0].patient_id == first.id


def test_a_merge_approved_retires_the_record_into_the_survivor(
    practice: sessionmaker[Session],
) -> None:
    apply(practice, ann(email=None))
    bob = PatientUpdate(
        mrn="M2",
        first_name="Ann",
        last_name="Leigh",
        date_of_birth=date(1980, 1, 3),
        sex="F",
        email="ann.leigh@example.com",
    )
    apply(practice, bob)
    request_merge(practice)
    review = only_review(practice)
    with transaction(practice) as session:
        approve_review(session, review.id, by="mo", now=NOW)
    survivor, retired = by_mrn(practice, "M1"), by_mrn(practice, "M2")
    assert retired.merged_into_id == survivor.id
    assert (survivor.last_name, survivor.email) == ("Lee", "ann.leigh@example.com")
    # An update naming the retired MRN lands on the survivor.
    apply(practice, PatientUpdate(mrn="M2", city="Oak Park"))
    assert by_mrn(practice, "M1").city == "Oak Park"


@pytest.fixture
def env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    assert settings.database_url is not None
    return {
        "OFFICE_HOME": str(tmp_path / "home"),
        "OFFICE_DATABASE_URL": settings.database_url,
        "COLUMNS": "200",
    }


def test_the_command_line_lists_shows_and_decides(
    practice: sessionmaker[Session], env: dict[str, str]
) -> None:
    apply(practice, ann())
    apply(practice, PatientUpdate(mrn="M1", last_name="Lee-Park"), submitter=Submitter.PATIENT)
    review = only_review(practice)
    runner = CliRunner()
    listed = runner.invoke(app, ["records", "review", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "record_review" in listed.output
    shown = runner.invoke(app, ["records", "review", "show", str(review.id)], env=env)
    assert shown.exit_code == 0, shown.output
    assert "Lee-Park" in shown.output
    refused = runner.invoke(app, ["records", "review", "approve", str(review.id)], env=env)
    assert refused.exit_code != 0
    done = runner.invoke(
        app, ["records", "review", "approve", str(review.id), "--by", "mo"], env=env
    )
    assert done.exit_code == 0, done.output
    assert "approved" in done.output
    assert by_mrn(practice, "M1").last_name == "Lee-Park"
    again = runner.invoke(
        app, ["records", "review", "reject", str(review.id), "--by", "mo"], env=env
    )
    assert again.exit_code == 1
    assert "already approved" in again.output


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")  # the approval starts the re-check
def test_approving_a_held_insurance_change_rechecks_the_upcoming_visit_now(
    practice: sessionmaker[Session], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    apply(practice, ann())
    with transaction(practice) as session:
        visit = Appointment(
            patient_id=by_mrn(practice, "M1").id,
            provider_id=session.scalars(select(Provider.id)).one(),
            location_id=session.scalars(select(Location.id)).one(),
            appointment_type_id=session.scalars(select(AppointmentType.id)).one(),
            start_at=utcnow() + timedelta(days=2),
            status=AppointmentStatus.BOOKED,
        )
        session.add(visit)
        session.flush()
        visit_id = visit.id
    card = CoverageUpdate(payer_code="SUMMIT", member_id="SU9", rank=1)
    apply(practice, PatientUpdate(mrn="M1", coverages=(card,)), submitter=Submitter.PATIENT)
    review = only_review(practice)

    monkeypatch.setattr(runtime, "_override", None)  # the command installs its own
    done = CliRunner().invoke(
        app, ["records", "review", "approve", str(review.id), "--by", "mo"], env=env
    )
    assert done.exit_code == 0, done.output
    assert f"follow-up verify_appointment for appointment {visit_id}" in done.output
    with practice() as session:
        followup = session.scalars(select(Followup).where(Followup.entity_id == visit_id)).one()
    # Started by the approval itself, not left for retry-followups.
    assert followup.attempts == 1
