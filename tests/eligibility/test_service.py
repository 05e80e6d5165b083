"""Choosing what to check, recording it before it is sent, and building the inquiry."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.eligibility import (
    Due,
    Inquiries,
    Inquiry,
    PayerRef,
    local_today,
    new_trace,
    record_pending,
    select_appointment,
    select_due,
    select_refresh,
)
from office.models import AppointmentStatus, CheckStatus, EligibilityCheck
from tests.eligibility.builders import (
    DOB,
    NOW,
    RENDERING_NPI,
    TODAY,
    ZONE,
    Clinic,
    appointment,
    clinic,
    coverage,
    days,
    first_name,
    member_id,
    patient,
)


def due(session: Session, *, days_ahead: int = 3, refresh_after_days: int = 7) -> list[Due]:
    return select_due(
        session,
        now=NOW,
        today=TODAY,
        days_ahead=days_ahead,
        refresh_after_days=refresh_after_days,
    )


def answered(
    session: Session, item: Due, status: CheckStatus, checked_at: datetime, run_key: str = "old"
) -> int:
    check = EligibilityCheck(
        trace=new_trace(),
        appointment_id=item.appointment_id,
        coverage_id=item.coverage_id,
        patient_id=item.patient_id,
        payer_id=item.payer_id,
        date_of_service=item.date_of_service,
        service_type=item.service_type,
        status=status,
        run_key=run_key,
        checked_at=checked_at,
    )
    session.add(check)
    session.flush()
    return check.id


def test_window_is_today_through_days_ahead_in_the_location_zone(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        place = clinic(session)
        ids = {}
        for offset in (-1, 0, 3, 4):
            person, _ = patient(session, place, offset + 10)
            ids[offset] = appointment(session, place, person, day=TODAY + days(offset))
        # 21:30 in Chicago on day 3 is already day 4 in UTC; the clinic's date decides.
        person, _ = patient(session, place, 20)
        late = appointment(session, place, person, day=TODAY + days(3), at=time(21, 30))
        found = {d.appointment_id: d for d in due(session)}
    assert set(found) == {ids[0], ids[3], late}
    assert found[late].date_of_service == TODAY + days(3)
    assert found[ids[0]].service_type == "98"


def test_only_booked_or_confirmed_visits(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        place = clinic(session)
        ids = {}
        for n, status in enumerate(AppointmentStatus):
            person, _ = patient(session, place, n)
            ids[status] = appointment(session, place, person, day=TODAY + days(1), status=status)
        found = {d.appointment_id for d in due(session)}
    assert found == {ids[AppointmentStatus.BOOKED], ids[AppointmentStatus.CONFIRMED]}


def test_primary_active_coverage_only(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        place = clinic(session, payers=2)
        both, primary = patient(session, place, 1)
        coverage(session, place, both, 1, payer=1, rank=2)
        secondary_only, _ = patient(session, place, 2, rank=2)
        lapsed, _ = patient(session, place, 3, active=False)
        visits = {p: appointment(session, place, p, day=TODAY + days(1)) for p in place.patients}
        found = {d.appointment_id: d for d in due(session)}
    assert set(found) == {visits[both]}
    assert found[visits[both]].coverage_id == primary
    assert found[visits[both]].payer_id == place.payer_ids[0]
    assert secondary_only not in {d.patient_id for d in found.values()}
    assert lapsed not in {d.patient_id for d in found.values()}


@pytest.mark.parametrize(
    ("status", "age_days", "asked_again"),
    [
        (CheckStatus.ACTIVE, 3, False),
        (CheckStatus.INACTIVE, 3, False),
        (CheckStatus.ACTIVE, 8, True),
        (CheckStatus.UNVERIFIED, 1, True),
        (CheckStatus.ERROR, 1, True),
        (CheckStatus.PENDING, 1, True),
    ],
)
def test_refresh_age_and_unverified_is_not_verified(
    factory: sessionmaker[Session], status: CheckStatus, age_days: int, asked_again: bool
) -> None:
    with transaction(factory) as session:
        place = clinic(session)
        person, _ = patient(session, place, 1)
        appointment(session, place, person, day=TODAY + days(2))
        [item] = due(session)
        answered(session, item, status, NOW - days(age_days))
        assert bool(due(session)) is asked_again


def test_verified_for_another_date_does_not_count(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        place = clinic(session)
        person, _ = patient(session, place, 1)
        appointment(session, place, person, day=TODAY + days(2))
        [item] = due(session)
        other_day = Due(**{**_fields(item), "date_of_service": TODAY + days(1)})
        answered(session, other_day, CheckStatus.ACTIVE, NOW)
        assert due(session) == [item]


def _fields(item: Due) -> dict[str, object]:
    return {name: getattr(item, name) for name in Due.__dataclass_fields__}


def test_select_appointment_skips_cancelled_and_uncovered(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        place = clinic(session)
        person, cover = patient(session, place, 1)
        booked = appointment(session, place, person, day=TODAY + days(20))
        cancelled = appointment(
            session, place, person, day=TODAY + days(2), status=AppointmentStatus.CANCELLED
        )
        uncovered, _ = patient(session, place, 2, rank=2)
        bare = appointment(session, place, uncovered, day=TODAY + days(2))
        [item] = select_appointment(session, booked)
        assert item.coverage_id == cover
        assert item.date_of_service == TODAY + days(20)
        assert select_appointment(session, cancelled) == []
        assert select_appointment(session, bare) == []
        assert select_appointment(session, 999_999) == []


def test_refresh_selects_patients_seen_in_the_last_year(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        place = clinic(session)
        recent, cover = patient(session, place, 1)
        appointment(
            session, place, recent, day=TODAY - days(200), status=AppointmentStatus.COMPLETED
        )
        appointment(
            session, place, recent, day=TODAY - days(30), status=AppointmentStatus.COMPLETED
        )
        upcoming, _ = patient(session, place, 2)
        appointment(session, place, upcoming, day=TODAY + days(5))
        long_ago, _ = patient(session, place, 3)
        appointment(
            session, place, long_ago, day=TODAY - days(400), status=AppointmentStatus.COMPLETED
        )
        cancelled, _ = patient(session, place, 4)
        appointment(
            session, place, cancelled, day=TODAY - days(9), status=AppointmentStatus.CANCELLED
        )
        found = select_refresh(session, now=NOW, today=TODAY)
        assert {d.patient_id for d in found} == {recent, upcoming}
        item = next(d for d in found if d.patient_id == recent)
        assert (item.coverage_id, item.service_type, item.date_of_service) == (cover, "30", TODAY)
        assert item.appointment_id is None
        assert item.provider_id == place.provider_id
        answered(session, item, CheckStatus.ACTIVE, NOW)
        assert {d.patient_id for d in select_refresh(session, now=NOW, today=TODAY)} == {upcoming}


# --- recording -------------------------------------------------------------------------------


def setup_due(factory: sessionmaker[Session], count: int = 3) -> tuple[Clinic, list[Due]]:
    with transaction(factory) as session:
        place = clinic(session)
        for n in range(count):
            person, _ = patient(session, place, n)
            appointment(session, place, person, day=TODAY + days(1))
        return place, due(session)


def test_record_pending_writes_before_anything_is_sent(factory: sessionmaker[Session]) -> None:
    place, items = setup_due(factory)
    with transaction(factory) as session:
        batches = record_pending(session, items, run_key="run-1", now=NOW)
    [(payer, ids)] = batches.items()
    assert payer == place.payer_id
    assert len(ids) == 3
    with factory() as session:
        checks = session.scalars(select(EligibilityCheck).order_by(EligibilityCheck.id)).all()
    assert [c.status for c in checks] == [CheckStatus.PENDING] * 3
    assert len({c.trace for c in checks}) == 3
    assert all(15 <= len(c.trace) <= 30 and c.trace.isalnum() for c in checks)
    summary = checks[0].request_summary
    assert summary["service_type"] == "98"
    assert summary["dependent"] is False
    assert summary["provider_id"] == place.provider_id
    assert set(summary) == {
        "appointment_id",
        "coverage_id",
        "payer_id",
        "provider_id",
        "date_of_service",
        "service_type",
        "relationship_code",
        "dependent",
    }


def test_same_run_again_reuses_pending_and_skips_answered(factory: sessionmaker[Session]) -> None:
    _place, items = setup_due(factory)
    with transaction(factory) as session:
        [first] = record_pending(session, items, run_key="run-1", now=NOW).values()
    with transaction(factory) as session:
        session.execute(
            update(EligibilityCheck)
            .where(EligibilityCheck.id == first[0])
            .values(status=CheckStatus.UNVERIFIED, checked_at=NOW)
        )
    with transaction(factory) as session:
        [again] = record_pending(session, items, run_key="run-1", now=NOW).values()
        assert again == first[1:]
    with factory() as session:  # never committed
        # A run alongside leaves run-1's pending rows alone and makes its own.
        [alongside] = record_pending(session, items, run_key="run-2", now=NOW).values()
        assert not set(alongside) & set(first)
        assert len(alongside) == 3
    with transaction(factory) as session:
        # A run hours later asks about the unverified one again and takes over the orphans.
        [later] = record_pending(session, items, run_key="run-3", now=NOW + days(1)).values()
        fresh = set(later) - set(first)
        assert len(fresh) == 1
        assert set(later) - fresh == set(first[1:])
        owners = set(
            session.scalars(select(EligibilityCheck.run_key).where(EligibilityCheck.id.in_(later)))
        )
        assert owners == {"run-3"}
        orphan = session.get(EligibilityCheck, first[0])
        assert orphan is not None
        assert orphan.run_key == "run-1"


# --- the inquiry ------------------------------------------------------------------------------


def inquiries(factory: sessionmaker[Session], *indexes: int, **kinds: str) -> list[Inquiry]:
    """Record a check for a visit of each patient `index` (relationship by `kinds`), then read
    the batch's inquiries back the way `run_batch` does."""
    with transaction(factory) as session:
        place = clinic(session)
        for index in indexes:
            relationship = kinds.get(f"p{index}", "18")
            subscriber_name = kinds.get(f"p{index}_subscriber") != "none"
            person, _ = patient(
                session, place, index, relationship=relationship, subscriber_name=subscriber_name
            )
            appointment(session, place, person, day=TODAY + days(1))
        [(payer_id, ids)] = record_pending(session, due(session), run_key="r", now=NOW).items()
    payer = PayerRef(payer_id, "PAYER0", "Payer 0")
    found = Inquiries(factory, payer, ids, today=TODAY, deductible_threshold=Decimal(1000))
    return list(found)


def test_request_for_the_subscriber(factory: sessionmaker[Session]) -> None:
    [inquiry] = inquiries(factory, 7)
    request = inquiry.request
    assert request is not None
    assert request.dependent is None
    assert request.subscriber.member_id == member_id(7)
    assert request.subscriber.first_name == first_name(7)
    assert request.subscriber.date_of_birth == DOB
    assert request.subscriber.group_number == "GRP77"
    assert (request.payer_code, request.payer_name) == ("PAYER0", "Payer 0")
    assert (request.provider_npi, request.provider_name) == (RENDERING_NPI, "Lovelace")
    assert request.provider_first_name == "Ada"
    assert (request.date_of_service, request.service_type) == (TODAY + days(1), "98")
    assert inquiry.entity[0] == "appointment"
    assert inquiry.due_at is not None
    assert inquiry.context.copay_on_file == Decimal("25")
    assert inquiry.context.deductible_threshold == Decimal(1000)


def test_request_for_a_dependent_puts_the_patient_under_the_subscriber(
    factory: sessionmaker[Session],
) -> None:
    dependent, orphan = inquiries(factory, 8, 9, p8="19", p9="19", p9_subscriber="none")
    request = dependent.request
    assert request is not None
    assert request.subscriber.first_name == "Subscriberia008"
    assert request.subscriber.member_id == member_id(8)
    assert request.subscriber.date_of_birth == date(1950, 3, 4)
    assert request.dependent is not None
    assert request.dependent.first_name == first_name(8)
    assert request.dependent.member_id is None
    # No subscriber's name, no inquiry: the reason names the coverage, not the patient.
    assert orphan.request is None
    assert orphan.problem is not None
    assert "subscriber" in orphan.problem
    assert first_name(9) not in orphan.problem


def test_answered_checks_are_not_read_again(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        place = clinic(session)
        for index in (1, 2):
            person, _ = patient(session, place, index)
            appointment(session, place, person, day=TODAY + days(1))
        [(payer_id, ids)] = record_pending(session, due(session), run_key="r", now=NOW).items()
        session.execute(
            update(EligibilityCheck)
            .where(EligibilityCheck.id == ids[0])
            .values(status=CheckStatus.ACTIVE, checked_at=NOW)
        )
    payer = PayerRef(payer_id, "PAYER0", "Payer 0")
    found = Inquiries(factory, payer, ids, today=TODAY, deductible_threshold=Decimal(1000))
    assert len(found) == 2
    assert [inquiry.check_id for inquiry in found] == ids[1:]


def test_trace_is_unique_and_sized_for_trn02() -> None:
    traces = {new_trace() for _ in range(2000)}
    assert len(traces) == 2000
    assert all(len(t) == 20 and t.isalnum() and t.isupper() for t in traces)


def test_local_today_uses_the_practice_zone() -> None:
    late_evening = datetime(2026, 12, 2, 3, 0, tzinfo=NOW.tzinfo)  # 21:00 on the 1st in Chicago
    assert local_today(late_evening, ZONE) == TODAY
