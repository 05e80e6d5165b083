"""The board's Reviews: a held record change compared side by side and decided there, as
the person (audited, its work item closed), by the kind's role only, with CSRF, and an
access record for every patient shown."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.models import (
    AuditEntry,
    DistinctPatients,
    Patient,
    PatientAccess,
    RecordReview,
    ReviewStatus,
    StaffLogin,
    WorkItem,
    WorkStatus,
)
from office.practice import apply_practice, parse_practice
from office.records import ApplyStatus, PatientUpdate, Submitter
from tests.board.conftest import csrf_of, sign_in
from tests.board.practice import add_board_login
from tests.records.conftest import NOW, PRACTICE, TWIN, ann, apply, only_review, request_merge

pytestmark = pytest.mark.anyio


@pytest.fixture
def practice(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    with transaction(factory) as session:
        apply_practice(session, parse_practice(PRACTICE), actor="test", source="test", now=NOW)
        add_board_login(session, "desk@clinic.test", "front_desk")
        add_board_login(session, "chief@clinic.test", "office_manager")
    apply(factory, ann())
    return factory


def staff_id_of(factory: sessionmaker[Session], email: str) -> int:
    with factory() as session:
        found = session.scalar(select(StaffLogin.staff_id).where(StaffLogin.email == email))
    assert found is not None
    return found


async def test_a_possible_duplicate_shows_both_records_and_not_a_duplicate_is_remembered(
    client: httpx.AsyncClient, practice: sessionmaker[Session]
) -> None:
    assert apply(practice, TWIN).status is ApplyStatus.POSSIBLE_DUPLICATE
    review = only_review(practice)
    await sign_in(client, "desk@clinic.test")

    listed = await client.get("/staff/reviews")
    assert listed.status_code == 200
    assert f'href="/staff/reviews/{review.id}"' in listed.text
    assert "Incoming record may be a patient already on file" in listed.text

    shown = await client.get(f"/staff/reviews/{review.id}")
    assert shown.status_code == 200
    # The incoming record and the candidate on file, with the score and its parts.
    assert "Skokie" in shown.text
    assert "EXT-9" in shown.text
    assert "Ann Lee" in shown.text
    assert "M1" in shown.text
    candidate = review.candidates[0]
    assert str(candidate["total"]) in shown.text
    assert "date_of_birth" in shown.text

    reply = await client.post(
        f"/staff/reviews/{review.id}/reject",
        data={"csrf": csrf_of(shown.text), "note": "different person"},
    )
    assert (reply.status_code, reply.headers["location"]) == (303, f"/staff/reviews/{review.id}")
    with practice() as session:
        decided = session.get_one(RecordReview, review.id)
        assert decided.status is ReviewStatus.REJECTED
        assert decided.decision_note == "different person"
        new = session.scalars(select(Patient).where(Patient.mrn == "EXT-9")).one()
        assert new.city == "Skokie"
        pairs = session.scalars(select(DistinctPatients)).all()
        assert {(p.patient_id, p.other_patient_id) for p in pairs} == {
            tuple(sorted((new.id, int(candidate["patient_id"]))))
        }
        item = session.scalars(
            select(WorkItem).where(
                WorkItem.entity == "record_review", WorkItem.entity_id == review.id
            )
        ).one()
        assert item.status is WorkStatus.DONE
        seen = session.scalars(
            select(PatientAccess.patient_id).where(PatientAccess.page == "review")
        )
        assert int(candidate["patient_id"]) in set(seen)
    after = await client.get(f"/staff/reviews/{review.id}")
    assert 'id="decided"' in after.text
    assert 'action="/staff/reviews/' not in after.text


async def test_approving_a_patients_own_edit_applies_it_as_the_person_on_the_board(
    client: httpx.AsyncClient, practice: sessionmaker[Session]
) -> None:
    apply(practice, PatientUpdate(mrn="M1", last_name="Lee-Park"), submitter=Submitter.PATIENT)
    review = only_review(practice)
    await sign_in(client, "desk@clinic.test")
    today = await client.get("/staff/today")
    assert f'href="/staff/reviews/{review.id}"' in today.text

    shown = await client.get(f"/staff/reviews/{review.id}")
    assert "<td>last_name</td><td>Lee</td><td>Lee-Park</td>" in shown.text
    reply = await client.post(
        f"/staff/reviews/{review.id}/approve", data={"csrf": csrf_of(shown.text)}
    )
    assert reply.status_code == 303
    desk = staff_id_of(practice, "desk@clinic.test")
    with practice() as session:
        patient = session.scalars(select(Patient).where(Patient.mrn == "M1")).one()
        assert patient.last_name == "Lee-Park"
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.field == "last_name").order_by(AuditEntry.id.desc())
        ).first()
    assert entry is not None
    assert entry.actor == f"staff:{desk}"


async def test_a_decision_without_the_forms_token_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, practice: sessionmaker[Session]
) -> None:
    apply(practice, PatientUpdate(mrn="M1", last_name="Lee-Park"), submitter=Submitter.PATIENT)
    review = only_review(practice)
    await sign_in(client, "desk@clinic.test")
    reply = await client.post(f"/staff/reviews/{review.id}/approve", data={"csrf": "forged"})
    assert reply.status_code == 403
    assert only_review(practice).id == review.id


async def test_a_merge_is_the_managers_to_decide(
    client: httpx.AsyncClient, practice: sessionmaker[Session]
) -> None:
    leigh = PatientUpdate(
        mrn="M2", first_name="Ann", last_name="Leigh", date_of_birth=date(1980, 1, 3), sex="F"
    )
    assert apply(practice, leigh).status is ApplyStatus.APPLIED
    request_merge(practice)
    review = only_review(practice)
    await sign_in(client, "desk@clinic.test")
    shown = await client.get(f"/staff/reviews/{review.id}")
    assert "Ann Leigh" in shown.text
    assert "retired" in shown.text
    assert 'id="approve"' not in shown.text
    refused = await client.post(
        f"/staff/reviews/{review.id}/approve", data={"csrf": csrf_of(shown.text)}
    )
    assert refused.status_code == 403
    assert only_review(practice).id == review.id

    await sign_in(client, "chief@clinic.test")
    shown = await client.get(f"/staff/reviews/{review.id}")
    merged = await client.post(
        f"/staff/reviews/{review.id}/approve", data={"csrf": csrf_of(shown.text)}
    )
    assert merged.status_code == 303
    with practice() as session:
        retired = session.scalars(select(Patient).where(Patient.mrn == "M2")).one()
        survivor = session.scalars(select(Patient).where(Patient.mrn == "M1")).one()
    assert retired.merged_into_id == survivor.id
