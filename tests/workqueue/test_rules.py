"""The ledger's rules: one open item per problem and subject; items close when causes clear."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.ledgers.work import (
    Cleared,
    WorkNeeded,
    clear_work,
    open_work_items,
    sweep_work,
)
from office.models import (
    AppointmentStatus,
    AuditEntry,
    WorkItem,
    WorkItemVisit,
    WorkPriority,
    WorkStatus,
)
from office.workqueue.kinds import CloseReason
from tests.workqueue.conftest import NOW, Clinic, add_patient, add_visit, days


def _need(kind: str, appointment_id: int, summary: str = "s") -> WorkNeeded:
    return WorkNeeded(kind, "appointment", appointment_id, summary, "front_desk")


def _items(session: Session) -> list[WorkItem]:
    return list(session.scalars(select(WorkItem).order_by(WorkItem.id)))


def _visits(session: Session, item_id: int, *, active: bool = True) -> list[int]:
    query = select(WorkItemVisit.appointment_id).where(WorkItemVisit.work_item_id == item_id)
    if active:
        query = query.where(WorkItemVisit.cleared_at.is_(None))
    return sorted(session.scalars(query))


def test_a_patient_level_problem_is_one_item_listing_every_affected_visit(
    factory: sessionmaker[Session], clinic: Clinic
) -> None:
    with transaction(factory) as session:
        patient = add_patient(session, 1)
        first = add_visit(session, clinic, patient, NOW + days(2))
        second = add_visit(session, clinic, patient, NOW + days(9), denver=True)
        found = open_work_items(
            session, [_need("not_active", first), _need("not_active", second)], now=NOW
        )
    assert found[f"not_active:appointment:{first}"] == found[f"not_active:appointment:{second}"]
    with factory() as session:
        [item] = _items(session)
        assert (item.entity, item.entity_id, item.patient_id) == ("patient", patient, patient)
        assert item.dedupe_key == f"not_active:patient:{patient}"
        assert item.priority is WorkPriority.BLOCKER
        assert _visits(session, item.id) == [first, second]
        # Due a day (the catalog's due_before) before the first affected visit.
        assert item.due_at == NOW + days(1)


def test_a_visit_level_problem_is_one_item_per_visit(
    factory: sessionmaker[Session], clinic: Clinic
) -> None:
    with transaction(factory) as session:
        patient = add_patient(session, 1)
        first = add_visit(session, clinic, patient, NOW + days(5))
        second = add_visit(session, clinic, patient, NOW + days(6))
        open_work_items(
            session,
            [_need("authorization_required", first), _need("authorization_required", second)],
            now=NOW,
        )
    with factory() as session:
        items = _items(session)
        assert [(i.entity, i.entity_id) for i in items] == [
            ("appointment", first),
            ("appointment", second),
        ]
        assert [_visits(session, i.id) for i in items] == [[first], [second]]
        assert items[0].due_at == NOW + days(2)  # three days ahead: authorizations take time


def test_a_clean_check_of_one_visit_clears_it_and_of_the_last_closes_the_item(
    factory: sessionmaker[Session], clinic: Clinic
) -> None:
    with transaction(factory) as session:
        patient = add_patient(session, 1)
        first = add_visit(session, clinic, patient, NOW + days(2))
        second = add_visit(session, clinic, patient, NOW + days(9))
        open_work_items(session, [_need("not_active", first), _need("not_active", second)], now=NOW)
    with transaction(factory) as session:
        closed = clear_work(
            session,
            [Cleared(CloseReason.CHECK_CLEAN, appointment_id=first, note="check 7")],
            now=NOW,
        )
        assert closed == []
    with factory() as session:
        [item] = _items(session)
        assert item.status is WorkStatus.OPEN
        assert _visits(session, item.id) == [second]
        assert item.due_at == NOW + days(8)  # now before the visit still affected
    with transaction(factory) as session:
        closed = clear_work(
            session,
            [Cleared(CloseReason.CHECK_CLEAN, appointment_id=second, note="check 8")],
            now=NOW,
        )
    with factory() as session:
        [item] = _items(session)
        assert closed == [item.id]
        assert (item.status, item.close_reason, item.close_note, item.closed_by) == (
            WorkStatus.DONE,
            "check_clean",
            "check 8",
            "officeflows",
        )
        assert _visits(session, item.id, active=False) == [first, second]


def test_a_cause_closes_only_the_kinds_that_close_on_it(
    factory: sessionmaker[Session], clinic: Clinic
) -> None:
    """A copay change is news to pass on: a later clean check does not close it."""
    with transaction(factory) as session:
        patient = add_patient(session, 1)
        visit = add_visit(session, clinic, patient, NOW + days(2))
        open_work_items(
            session, [_need("copay_changed", visit), _need("unverified", visit)], now=NOW
        )
        clear_work(session, [Cleared(CloseReason.CHECK_CLEAN, appointment_id=visit)], now=NOW)
    with factory() as session:
        assert {(i.kind, i.status) for i in _items(session)} == {
            ("copay_changed", WorkStatus.OPEN),
            ("unverified", WorkStatus.DONE),
        }


def test_only_the_named_kinds_are_cleared(factory: sessionmaker[Session], clinic: Clinic) -> None:
    with transaction(factory) as session:
        patient = add_patient(session, 1)
        visit = add_visit(session, clinic, patient, NOW + days(2))
        open_work_items(session, [_need("not_active", visit), _need("unverified", visit)])
        clear_work(
            session,
            [
                Cleared(
                    CloseReason.CHECK_CLEAN, appointment_id=visit, kinds=frozenset({"unverified"})
                )
            ],
        )
    with factory() as session:
        assert {(i.kind, i.status) for i in _items(session)} == {
            ("not_active", WorkStatus.OPEN),
            ("unverified", WorkStatus.DONE),
        }


def test_the_sweep_clears_past_and_cancelled_visits(
    factory: sessionmaker[Session], clinic: Clinic
) -> None:
    with transaction(factory) as session:
        patient = add_patient(session, 1)
        past = add_visit(session, clinic, patient, NOW - days(1))
        cancelled = add_visit(
            session,
            clinic,
            add_patient(session, 2),
            NOW + days(3),
            status=AppointmentStatus.CANCELLED,
        )
        upcoming = add_visit(session, clinic, add_patient(session, 3), NOW + days(3))
        open_work_items(
            session,
            [
                _need("copay_changed", past),
                _need("copay_changed", cancelled),
                _need("copay_changed", upcoming),
                _need("coordination_of_benefits", past),
            ],
            now=NOW - days(3),
        )
    with transaction(factory) as session:
        closed = sweep_work(session, now=NOW)
    with factory() as session:
        found = {(i.kind, i.entity_id): i for i in _items(session)}
        assert {i.id for i in found.values() if i.status is WorkStatus.DONE} == set(closed)
        assert found[("copay_changed", past)].close_reason == "visit_past"
        assert found[("copay_changed", cancelled)].close_reason == "visit_cancelled"
        assert found[("copay_changed", upcoming)].status is WorkStatus.OPEN
        # Billing still has to sort out the order of benefits after the visit.
        assert found[("coordination_of_benefits", patient)].status is WorkStatus.OPEN


def test_a_new_booking_closes_a_reschedule_request(
    factory: sessionmaker[Session], clinic: Clinic
) -> None:
    with transaction(factory) as session:
        patient = add_patient(session, 1)
        visit = add_visit(session, clinic, patient, NOW + days(2))
        open_work_items(
            session,
            [_need("reschedule_request", visit), _need("copay_changed", visit)],
            now=NOW,
        )
        closed = clear_work(
            session, [Cleared(CloseReason.BOOKING_CONFIRMED, patient_id=patient)], now=NOW
        )
    with factory() as session:
        items = {i.kind: i for i in _items(session)}
        assert closed == [items["reschedule_request"].id]
        assert items["reschedule_request"].close_reason == "booking_confirmed"
        assert items["copay_changed"].status is WorkStatus.OPEN


def test_a_clean_refresh_closes_a_patient_item_with_no_visit(
    factory: sessionmaker[Session], clinic: Clinic
) -> None:
    with transaction(factory) as session:
        patient = add_patient(session, 1)
        visit = add_visit(session, clinic, patient, NOW + days(2))
        open_work_items(
            session,
            [
                WorkNeeded("fix_patient_data", "patient", patient, "s", "front_desk"),
                WorkNeeded("not_active", "patient", add_patient(session, 2), "s", "front_desk"),
                _need("unverified", visit),
            ],
            now=NOW,
        )
        subject = ("patient", patient)
        closed = clear_work(session, [Cleared(CloseReason.CHECK_CLEAN, subject=subject)], now=NOW)
    with factory() as session:
        items = {i.kind: i for i in _items(session)}
        # The unverified item lists a visit: the visit's own check decides it.
        assert closed == [items["fix_patient_data"].id]


def test_a_visit_raised_again_after_it_was_cleared_is_listed_again(
    factory: sessionmaker[Session], clinic: Clinic
) -> None:
    with transaction(factory) as session:
        patient = add_patient(session, 1)
        first = add_visit(session, clinic, patient, NOW + days(2))
        second = add_visit(session, clinic, patient, NOW + days(4))
        open_work_items(session, [_need("not_active", first), _need("not_active", second)])
        clear_work(session, [Cleared(CloseReason.CHECK_CLEAN, appointment_id=first)])
        open_work_items(session, [_need("not_active", first)])
    with factory() as session:
        [item] = _items(session)
        assert _visits(session, item.id) == [first, second]


def test_every_change_is_in_the_item_history(
    factory: sessionmaker[Session], clinic: Clinic
) -> None:
    with transaction(factory) as session:
        patient = add_patient(session, 1)
        visit = add_visit(session, clinic, patient, NOW + days(2))
        later = add_visit(session, clinic, patient, NOW + days(5))
        [(item_id, _created)] = open_work_items(session, [_need("unverified", visit)]).values()
        open_work_items(session, [_need("unverified", later)])
        clear_work(session, [Cleared(CloseReason.VISIT_CANCELLED, appointment_id=visit)])
        clear_work(session, [Cleared(CloseReason.VISIT_PAST, appointment_id=later)])
    with factory() as session:
        fields = session.execute(
            select(AuditEntry.field, AuditEntry.before, AuditEntry.after, AuditEntry.actor)
            .where(AuditEntry.entity == "work_items", AuditEntry.entity_id == item_id)
            .order_by(AuditEntry.id)
        ).all()
    # Opening lists its first visit with it; a visit added later is a change of its own.
    assert [tuple(row) for row in fields] == [
        ("status", None, "open", "officeflows"),
        ("visit_added", None, str(later), "officeflows"),
        ("visit_cleared", str(visit), "visit_cancelled", "officeflows"),
        ("visit_cleared", str(later), "visit_past", "officeflows"),
        ("status", "open", "done", "officeflows"),
        ("close_reason", None, "visit_past", "officeflows"),
    ]


def test_a_cleared_cause_names_one_target_and_never_a_persons_decision() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Cleared(CloseReason.CHECK_CLEAN, appointment_id=1, patient_id=2)
    with pytest.raises(ValueError, match="person's decision"):
        Cleared(CloseReason.DISMISSED, appointment_id=1)


def test_clearing_a_visit_reads_no_more_for_a_longer_queue(
    factory: sessionmaker[Session], clinic: Clinic
) -> None:
    """What a clean check reads is found from its visit, not by walking the open queue: on
    SQLite a join let the planner walk every open item per write (100,000 answers, 14 min)."""
    if factory.kw["bind"].dialect.name != "sqlite":
        pytest.skip("counts SQLite's virtual machine steps: deterministic, unlike a timing")

    def steps_to_clear(session: Session, visits: list[int]) -> int:
        steps = [0]

        def step() -> int:
            steps[0] += 1
            return 0

        raw = session.connection().connection.driver_connection
        assert raw is not None
        raw.set_progress_handler(step, 1)
        try:
            clear_work(
                session,
                [Cleared(CloseReason.CHECK_CLEAN, appointment_id=v) for v in visits],
                now=NOW,
            )
        finally:
            raw.set_progress_handler(None, 1)
        return steps[0]

    def open_items(session: Session, first: int, count: int) -> list[int]:
        visits = []
        for n in range(first, first + count):
            visit = add_visit(session, clinic, add_patient(session, n), NOW + days(2))
            visits.append(visit)
        open_work_items(session, [_need("unverified", v) for v in visits], now=NOW)
        return visits

    with transaction(factory) as session:
        # A flush of answers clears some fifty visits at once, among 60 open items, then 660.
        short = steps_to_clear(session, open_items(session, 1, 60)[:50])
        long = steps_to_clear(session, open_items(session, 61, 600)[:50])
    assert long < 1.5 * short, (short, long)
