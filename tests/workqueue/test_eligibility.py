"""Eligibility through the queue: patient-level problems are one item; clean checks close them."""

from __future__ import annotations

import asyncio
import random
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from integrations.x12 import Scenario
from office.db import transaction
from office.eligibility import BatchConfig, RetryPolicy, record_pending, run_batch
from office.eligibility.select_due import select_appointment
from office.eligibility.types import EligibilityRequest
from office.models import WorkItem, WorkItemVisit, WorkStatus
from office.settings import Settings
from tests.eligibility.builders import NOW, TODAY, FakePayer, appointment, clinic, days, patient

NO_WAIT = RetryPolicy(attempts=1, base_delay=0.0, jitter=0.0, max_retry_after=0.0)


def _check(
    factory: sessionmaker[Session], settings: Settings, visits: list[int], answer: str
) -> list[int]:
    """Check these visits; the payer answers `answer` ("ok", "inactive", ...) for each."""
    with transaction(factory) as session:
        due = [d for visit in visits for d in select_appointment(session, visit)]
        [(payer_id, ids)] = record_pending(session, due, run_key=f"run-{answer}", now=NOW).items()

    def decide(request: EligibilityRequest, attempt: int) -> str:
        return answer

    batch = BatchConfig.from_settings(
        settings,
        payers=FakePayer(decide=decide),
        final=True,
        now=NOW,
        policy=NO_WAIT,
        rng=random.Random(1),
    )
    asyncio.run(run_batch(factory, payer_id, ids, batch))
    return ids


def _listed(factory: sessionmaker[Session], item_id: int) -> list[int]:
    with factory() as session:
        return sorted(
            session.scalars(
                select(WorkItemVisit.appointment_id).where(
                    WorkItemVisit.work_item_id == item_id, WorkItemVisit.cleared_at.is_(None)
                )
            )
        )


def test_inactive_coverage_is_one_item_for_the_patient_until_clean_checks_clear_it(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    with transaction(factory) as session:
        place = clinic(session)
        person, _coverage = patient(session, place, 1)
        first = appointment(session, place, person, day=TODAY + days(1))
        second = appointment(session, place, person, day=TODAY + days(8))
    _check(factory, settings, [first, second], "inactive")
    with factory() as session:
        [item] = session.scalars(select(WorkItem)).all()
    assert (item.kind, item.entity, item.entity_id) == ("not_active", "patient", person)
    assert item.summary == "Coverage not active on the date of service"
    assert _listed(factory, item.id) == [first, second]

    _check(factory, settings, [first], "ok")
    assert _listed(factory, item.id) == [second]
    [clean] = _check(factory, settings, [second], "ok")
    with factory() as session:
        closed = session.get_one(WorkItem, item.id)
    assert (closed.status, closed.close_reason, closed.close_note) == (
        WorkStatus.DONE,
        "check_clean",
        f"check {clean}",
    )


def test_an_unanswered_check_clears_nothing(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    with transaction(factory) as session:
        place = clinic(session)
        person, _coverage = patient(session, place, 1)
        visit = appointment(session, place, person, day=TODAY + days(1))
    _check(factory, settings, [visit], "inactive")
    _check(factory, settings, [visit], "malformed")
    with factory() as session:
        items = {i.kind: i.status for i in session.scalars(select(WorkItem))}
    assert items == {"not_active": WorkStatus.OPEN, "unverified": WorkStatus.OPEN}


def test_notes_are_stored_like_items_and_cleared_the_same_way(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    """A plan ending soon is a note on the visit; a later answer without it clears it."""
    with transaction(factory) as session:
        place = clinic(session)
        person, _coverage = patient(session, place, 1)
        visit = appointment(session, place, person, day=TODAY + days(1))
    fake = FakePayer(scenario=Scenario(insurance_type="PR", plan_end=date(2026, 12, 20)))
    with transaction(factory) as session:
        due = select_appointment(session, visit)
        [(payer_id, ids)] = record_pending(session, due, run_key="run-1", now=NOW).items()
    batch = BatchConfig.from_settings(
        settings, payers=fake, final=True, now=NOW, policy=NO_WAIT, rng=random.Random(1)
    )
    asyncio.run(run_batch(factory, payer_id, ids, batch))
    with factory() as session:
        kinds = {i.kind: i.status for i in session.scalars(select(WorkItem))}
    assert kinds.get("plan_ending") is WorkStatus.OPEN
    _check(factory, settings, [visit], "ok")
    with factory() as session:
        kinds = {i.kind: i.status for i in session.scalars(select(WorkItem))}
    assert kinds["plan_ending"] is WorkStatus.DONE
