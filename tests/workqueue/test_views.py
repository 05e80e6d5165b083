"""The read models: Today grouped for the viewer, a visit, trends, an item's history."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.ledgers.work import WorkNeeded, open_work_items
from office.models import (
    AppointmentStatus,
    AuditEntry,
    CheckStatus,
    Coverage,
    EligibilityCheck,
    LinkUse,
    Payer,
    WorkItem,
    WorkPriority,
    WorkStatus,
)
from office.workqueue import actions, views
from tests.workqueue.conftest import NOW, Clinic, add_patient, add_visit, days


def _raise(session: Session, kind: str, entity: str, entity_id: int, summary: str = "s") -> int:
    [(item_id, _)] = open_work_items(
        session, [WorkNeeded(kind, entity, entity_id, summary, "front_desk")], now=NOW
    ).values()
    return item_id


@pytest.fixture
def queue(factory: sessionmaker[Session], clinic: Clinic) -> dict[str, int]:
    """A blocker at Denver, a front-desk action, a billing action, a note, a mail item."""
    with transaction(factory) as session:
        ana = add_patient(session, 1)
        ben = add_patient(session, 2)
        denver = add_visit(session, clinic, ana, NOW + days(2), denver=True)
        chicago = add_visit(session, clinic, ben, NOW + days(3))
        return {
            "ana": ana,
            "denver": denver,
            "chicago": chicago,
            "not_active": _raise(session, "not_active", "appointment", denver, "no coverage"),
            "copay": _raise(session, "copay_changed", "appointment", chicago, "copay went up"),
            "cob": _raise(session, "coordination_of_benefits", "appointment", chicago),
            "plan_ending": _raise(session, "plan_ending", "appointment", chicago),
            "triage": _raise(session, "mail_triage", "mail_message", 77),
        }


def test_today_groups_by_priority_then_role_with_names_and_local_times(
    factory: sessionmaker[Session], queue: dict[str, int]
) -> None:
    with factory() as session:
        view = views.today(session, viewer_role="office_manager", now=NOW)
    assert [g.priority for g in view.groups] == [WorkPriority.BLOCKER, WorkPriority.ACTION]
    assert [r.role for r in view.groups[1].roles] == ["billing", "front_desk"]
    blocker = view.groups[0].roles[0].items[0]
    assert blocker.id == queue["not_active"]
    assert (blocker.patient_name, blocker.mrn) == ("Pat1 Doe", "MRN00001")
    assert blocker.clinic == "Foothills"
    # 15:00 UTC two days on is 08:00 in Denver, the clinic's own zone.
    assert blocker.visit_at is not None
    assert (blocker.visit_at.hour, str(blocker.visit_at.tzinfo)) == (8, "America/Denver")
    assert blocker.title == "Coverage not active on the visit date"
    assert blocker.summary == "no coverage"
    assert blocker.next_step.startswith("Call the patient")
    assert [v.appointment_id for v in blocker.visits] == [queue["denver"]]
    # The note is not a task; the mail item has no patient.
    shown = {item.id for item in view.items}
    assert queue["plan_ending"] not in shown
    assert queue["triage"] in shown
    assert {c.kind: c.count for c in view.counts} == {
        "not_active": 1,
        "copay_changed": 1,
        "coordination_of_benefits": 1,
        "mail_triage": 1,
    }
    assert view.total == view.shown == 4


def test_a_note_kind_the_practice_makes_a_task_is_shown(
    factory: sessionmaker[Session], queue: dict[str, int]
) -> None:
    with factory() as session:
        view = views.today(session, viewer_role=None, notes_as_tasks={"plan_ending"}, now=NOW)
    info = [g for g in view.groups if g.priority is WorkPriority.INFO]
    assert [i.id for g in info for r in g.roles for i in r.items] == [queue["plan_ending"]]


def test_a_role_sees_its_own_items_and_those_assigned_to_them(
    factory: sessionmaker[Session], clinic: Clinic, queue: dict[str, int]
) -> None:
    with factory() as session:
        billing = views.today(session, viewer_role="billing", now=NOW)
    assert {i.id for i in billing.items} == {queue["cob"]}
    assert {c.kind for c in billing.counts} == {"coordination_of_benefits"}
    with transaction(factory) as session:
        actions.assign(session, queue["copay"], staff_id=clinic.billing, by=clinic.manager)
    with factory() as session:
        mine = views.today(session, viewer_role="billing", viewer_staff_id=clinic.billing, now=NOW)
        front = views.today(session, viewer_role="front_desk", now=NOW)
    assert {i.id for i in mine.items} == {queue["cob"], queue["copay"]}
    copay = next(i for i in mine.items if i.id == queue["copay"])
    assert copay.assignee_name == "Billie Staff"
    assert queue["cob"] not in {i.id for i in front.items}


def test_filters_by_clinic_role_and_kind(
    factory: sessionmaker[Session], clinic: Clinic, queue: dict[str, int]
) -> None:
    with factory() as session:
        denver = views.today(session, viewer_role=None, clinic_id=clinic.denver, now=NOW)
        billing = views.today(session, viewer_role=None, role="billing", now=NOW)
        copay = views.today(session, viewer_role=None, kind="copay_changed", now=NOW)
    assert [i.id for i in denver.items] == [queue["not_active"]]
    assert [i.id for i in billing.items] == [queue["cob"]]
    assert [i.id for i in copay.items] == [queue["copay"]]
    assert copay.total == 1
    assert len(copay.counts) == 4  # counts stay for every kind, to switch filters


def test_overdue_counts_items_past_their_due(
    factory: sessionmaker[Session], queue: dict[str, int]
) -> None:
    with factory() as session:
        later = views.today(session, viewer_role=None, now=NOW + days(2.5))
    # The blocker was due a day before its visit; the others a day before theirs.
    overdue = {i.id for i in later.items if i.overdue}
    assert queue["not_active"] in overdue
    assert later.overdue == len(overdue)


def test_today_reads_in_a_fixed_number_of_statements(
    factory: sessionmaker[Session], engine: Engine, clinic: Clinic
) -> None:
    with transaction(factory) as session:
        for n in range(60):
            patient = add_patient(session, n)
            visit = add_visit(session, clinic, patient, NOW + days(1 + n % 5), denver=n % 2 == 0)
            _raise(session, "not_active" if n % 3 else "copay_changed", "appointment", visit)
    statements: list[str] = []

    def count(*args: object) -> None:
        if str(args[2]).lstrip().upper().startswith("SELECT"):
            statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", count)
    try:
        with factory() as session:
            view = views.today(session, viewer_role="front_desk", now=NOW)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert view.shown == 60
    assert len(statements) == 3  # counts, items with patients and assignees, their visits


def test_visit_shows_coverage_reminders_answers_items_and_notes(
    factory: sessionmaker[Session], clinic: Clinic, queue: dict[str, int]
) -> None:
    chicago = queue["chicago"]
    with transaction(factory) as session:
        payer = Payer(name="Prairie", payer_code="PR1")
        session.add(payer)
        session.flush()
        patient_id = session.get_one(WorkItem, queue["copay"]).patient_id
        assert patient_id is not None
        coverage = Coverage(patient_id=patient_id, payer_id=payer.id, member_id="M1")
        session.add(coverage)
        session.flush()
        session.add(
            EligibilityCheck(
                trace="T1",
                appointment_id=chicago,
                coverage_id=coverage.id,
                patient_id=patient_id,
                payer_id=payer.id,
                date_of_service=(NOW + days(3)).date(),
                service_type="30",
                status=CheckStatus.ACTIVE,
                checked_at=NOW,
                copay=Decimal("25.00"),
                deductible_remaining=Decimal("1200.00"),
                plan_end=date(2026, 12, 31),
                result={
                    "plan_name": "Gold PPO",
                    "plan_begin": "2026-01-01",
                    "pcp": {"name": "DR SMITH", "identifier": "1999999984"},
                    "benefits": [{"messages": ["COPAY WAIVED FOR PREVENTIVE"]}],
                },
            )
        )
        session.add(
            LinkUse(token_hash="h" * 64, purpose="confirm", appointment_id=chicago, used_at=NOW)
        )
        session.add(
            AuditEntry(
                entity="appointments",
                entity_id=chicago,
                field="status",
                before="booked",
                after="confirmed",
                actor="patient-link",
                source="web:link-confirm",
                at=NOW,
            )
        )
    with transaction(factory) as session:
        actions.close(session, queue["cob"], by="Morgan", note="primary is Prairie")
    with factory() as session:
        view = views.visit(session, chicago)
    assert (view.patient_name, view.clinic, view.status) == ("Pat2 Doe", "Downtown", "booked")
    assert view.starts_at.hour == 9  # 15:00 UTC is 09:00 in Chicago
    assert view.coverage is not None
    assert (view.coverage.plan, view.coverage.copay, view.coverage.pcp) == (
        "Gold PPO",
        Decimal("25.00"),
        "DR SMITH",
    )
    assert view.coverage.plan_begin == date(2026, 1, 1)
    assert view.coverage.notes == ("COPAY WAIVED FOR PREVENTIVE",)
    assert [a.what for a in view.answers] == ["confirm link used", "status booked → confirmed"]
    assert [i.id for i in view.items] == [queue["copay"]]
    assert [i.id for i in view.notes] == [queue["plan_ending"]]
    assert [(i.id, i.close_note) for i in view.closed] == [(queue["cob"], "primary is Prairie")]
    with factory() as session, pytest.raises(views.NotFound):
        views.visit(session, 999_999)


def test_trends_count_opened_and_closed_per_local_day_and_the_median(
    factory: sessionmaker[Session], clinic: Clinic, queue: dict[str, int]
) -> None:
    with transaction(factory) as session:
        actions.close(session, queue["copay"], by="Morgan")
        item = session.get_one(WorkItem, queue["copay"])
        item.closed_at = NOW + days(1)  # closed a day after it was opened
    with factory() as session:
        trend = views.trends(session, today=(NOW + days(1)).date(), days=3)
    assert trend.zone == "America/Chicago"
    # Notes are not counted: four items opened on Dec 1 (Chicago), one closed on Dec 2.
    assert [(d.day, d.opened, d.closed, d.open_at_end) for d in trend.days] == [
        (date(2026, 11, 30), 0, 0, 0),
        (date(2026, 12, 1), 4, 0, 4),
        (date(2026, 12, 2), 0, 1, 3),
    ]
    assert trend.median_hours_to_close == 24.0


def test_history_lists_who_did_what(
    factory: sessionmaker[Session], clinic: Clinic, queue: dict[str, int]
) -> None:
    with transaction(factory) as session:
        actions.take(session, queue["copay"], staff_id=clinic.front_desk)
        actions.dismiss(session, queue["copay"], by=clinic.front_desk, reason="already told")
    with factory() as session:
        entries = views.history(session, queue["copay"])
        item = session.get_one(WorkItem, queue["copay"])
    assert item.status is WorkStatus.DISMISSED
    people = [(e.what, e.after, e.by) for e in entries if e.by.startswith("staff:")]
    staff = f"staff:{clinic.front_desk}"
    assert people == [
        ("assignee_id", str(clinic.front_desk), staff),
        ("status", "dismissed", staff),
        ("closed_by", staff, staff),
        ("closed_at", people[3][1], staff),
        ("close_reason", "dismissed", staff),
        ("close_note", "already told", staff),
    ]
    with factory() as session, pytest.raises(views.NotFound):
        views.history(session, 999_999)


def test_cancelled_visits_are_listed_with_their_status(
    factory: sessionmaker[Session], clinic: Clinic
) -> None:
    with transaction(factory) as session:
        patient = add_patient(session, 1)
        visit = add_visit(
            session, clinic, patient, NOW + days(1), status=AppointmentStatus.CONFIRMED
        )
        _raise(session, "unverified", "appointment", visit)
    with factory() as session:
        [item] = views.today(session, viewer_role=None, now=NOW).items
    assert item.visits[0].status == "confirmed"
