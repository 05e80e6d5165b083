"""Items close themselves when the visit is cancelled (booking or patient link) or rebooked."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from office.bookings import apply_booking
from office.db import transaction
from office.eligibility import AlertKind
from office.ledgers import store_inbound
from office.ledgers.work import WorkNeeded, open_work_items
from office.models import Appointment, WorkItem, WorkStatus
from office.reminders.links import answer_link, make_token
from tests.workqueue.conftest import NOW, Clinic, add_patient, add_visit, days

SECRET = "test-link-secret-32-bytes-or-longer"


def _booking(session: Session, clinic: Clinic, event: str, start: datetime, n: int) -> None:
    body = {
        "event": event,
        "external_id": "PM-1",
        "patient_mrn": "MRN00001",
        "provider_npi": "1234567893",
        "location_id": clinic.chicago,
        "appointment_type": "follow-up",
        "start": start.isoformat(),
        "occurred_at": (NOW - days(1) + days(n / 100)).isoformat(),
    }
    item, _ = store_inbound(
        session, source="webhook:bookings", key=f"k{n}", body=json.dumps(body).encode()
    )
    session.flush()
    apply_booking(session, item, now=NOW)


def _status(factory: sessionmaker[Session]) -> dict[str, tuple[WorkStatus, str | None]]:
    with factory() as session:
        return {i.kind: (i.status, i.close_reason) for i in session.scalars(select(WorkItem))}


def test_a_cancelled_booking_closes_the_visits_items(
    factory: sessionmaker[Session], clinic: Clinic
) -> None:
    start = NOW + days(2)
    with transaction(factory) as session:
        patient = add_patient(session, 1)
        _booking(session, clinic, "booked", start, 1)
        visit = session.scalars(select(Appointment.id)).one()
        open_work_items(
            session,
            [
                WorkNeeded("authorization_required", "appointment", visit, "s", "front_desk"),
                WorkNeeded("email_bounced", "patient", patient, "s", "front_desk"),
            ],
            now=NOW,
        )
    with transaction(factory) as session:
        _booking(session, clinic, "cancelled", start, 2)
    assert _status(factory) == {
        "authorization_required": (WorkStatus.DONE, "visit_cancelled"),
        "email_bounced": (WorkStatus.OPEN, None),  # about the patient, not the visit
    }


def test_a_moved_booking_closes_the_patients_reschedule_request(
    factory: sessionmaker[Session], clinic: Clinic
) -> None:
    start = NOW + days(2)
    with transaction(factory) as session:
        add_patient(session, 1)
        _booking(session, clinic, "booked", start, 1)
        visit = session.get_one(Appointment, session.scalars(select(Appointment.id)).one())
        token = make_token(SECRET, purpose="reschedule", appointment_id=visit.id, start=start)
        answer_link(session, SECRET, token, now=NOW)
    assert _status(factory) == {"reschedule_request": (WorkStatus.OPEN, None)}
    with transaction(factory) as session:
        _booking(session, clinic, "rescheduled", start + days(1), 2)
    assert _status(factory) == {"reschedule_request": (WorkStatus.DONE, "booking_confirmed")}


def test_a_patient_who_cancels_by_link_closes_the_visits_items(
    factory: sessionmaker[Session], clinic: Clinic
) -> None:
    start = NOW + days(3)
    with transaction(factory) as session:
        patient = add_patient(session, 1)
        visit = add_visit(session, clinic, patient, start)
        later = add_visit(session, clinic, patient, start + days(7))
        open_work_items(
            session,
            [
                WorkNeeded("not_active", "appointment", visit, "s", "front_desk"),
                WorkNeeded("not_active", "appointment", later, "s", "front_desk"),
                WorkNeeded("copay_changed", "appointment", visit, "s", "front_desk"),
            ],
            now=NOW,
        )
        token = make_token(SECRET, purpose="cancel", appointment_id=visit, start=start)
        answer_link(session, SECRET, token, now=NOW)
    # The patient-level item still lists the later visit; the visit's own items closed,
    # the call about the cancellation notice (no email on file) too: the patient cancelled.
    assert _status(factory) == {
        "not_active": (WorkStatus.OPEN, None),
        "copay_changed": (WorkStatus.DONE, "visit_cancelled"),
        "reminder_no_channel": (WorkStatus.DONE, "visit_cancelled"),
    }
    with factory() as session:
        closer = session.scalars(
            select(WorkItem.closed_by).where(WorkItem.kind == "copay_changed")
        ).one()
    assert closer == "patient-link"


def test_a_cancelled_booking_closes_every_eligibility_item_of_the_visit(
    factory: sessionmaker[Session], clinic: Clinic
) -> None:
    start = NOW + days(2)
    with transaction(factory) as session:
        add_patient(session, 1)
        _booking(session, clinic, "booked", start, 1)
        visit = session.scalars(select(Appointment.id)).one()
        open_work_items(
            session,
            [WorkNeeded(kind.value, "appointment", visit, "s", "front_desk") for kind in AlertKind],
            now=NOW,
        )
    with transaction(factory) as session:
        _booking(session, clinic, "cancelled", start, 2)
    assert _status(factory) == {
        kind.value: (WorkStatus.DONE, "visit_cancelled") for kind in AlertKind
    }
