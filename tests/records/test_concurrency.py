"""Two updates for one patient at once on PostgreSQL: the second waits for the first's row
lock, then applies on top of it (or, made against the version the first replaced, becomes
a stale-update review); both are audited and neither is lost."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.models import AuditEntry, Patient, RecordReview
from office.records import PatientUpdate, RecordBatch, SourceKind, apply_record
from tests.conftest import PG_URL
from tests.records.conftest import NOW, ann, apply

# SQLite takes its write lock at BEGIN: no second writer can step in there.
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="OFFICE_TEST_DATABASE_URL is not set"),
]


def one(session: Session, update: PatientUpdate, actor: str) -> None:
    apply_record(session, RecordBatch((update,), SourceKind.HL7), actor=actor, now=NOW)


def blocked_backends(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(
            session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            or 0
        )


def race(factory: sessionmaker[Session], first: PatientUpdate, second: PatientUpdate) -> None:
    """`first` holds the patient's lock until `second` is seen waiting for it."""
    errors: list[BaseException] = []

    def later() -> None:
        try:
            with transaction(factory) as session:
                one(session, second, "sender:b")
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    with factory() as session:
        one(session, first, "sender:a")
        waiting = threading.Thread(target=later)
        waiting.start()
        deadline = time.monotonic() + 60
        while blocked_backends(factory) == 0:
            assert time.monotonic() < deadline, "the second update never waited for the lock"
            time.sleep(0.05)
        session.commit()
    waiting.join(60)
    assert not waiting.is_alive()
    assert errors == []


def audited(factory: sessionmaker[Session]) -> list[tuple[str, str | None, str]]:
    with factory() as session:
        rows = session.execute(
            select(AuditEntry.field, AuditEntry.after, AuditEntry.actor)
            .where(AuditEntry.actor.like("sender:%"))
            .order_by(AuditEntry.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_updates_at_once_both_apply_and_both_are_audited(
    practice: sessionmaker[Session],
) -> None:
    apply(practice, ann())
    race(
        practice,
        PatientUpdate(mrn="M1", city="Evanston"),
        PatientUpdate(mrn="M1", phone="312-555-0999"),
    )
    with practice() as session:
        patient = session.scalars(select(Patient)).one()
    assert (patient.city, patient.phone, patient.version) == ("Evanston", "+13125550999", 3)
    assert audited(practice) == [
        ("city", "Evanston", "sender:a"),
        ("phone", "+13125550999", "sender:b"),
    ]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_updates_from_the_same_version_one_applies_the_other_waits_for_review(
    practice: sessionmaker[Session],
) -> None:
    apply(practice, ann())
    race(
        practice,
        PatientUpdate(mrn="M1", city="Evanston", expected_version=1),
        PatientUpdate(mrn="M1", city="Skokie", expected_version=1),
    )
    with practice() as session:
        patient = session.scalars(select(Patient)).one()
        review = session.scalars(select(RecordReview)).one()
    assert (patient.city, patient.version) == ("Evanston", 2)
    assert (review.kind, review.proposed["city"], review.actor) == (
        "stale_update",
        "Skokie",
        "sender:b",
    )
    assert audited(practice) == [("city", "Evanston", "sender:a")]
