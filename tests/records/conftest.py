"""A small practice (imported through the practice file's own path) for the records tests."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.models import RecordReview, ReviewStatus
from office.practice import apply_practice, parse_practice
from office.records import (
    CoverageUpdate,
    PatientUpdate,
    RecordBatch,
    SourceKind,
    Submitter,
    apply_record,
)
from office.records.apply import ApplyOutcome

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)

PRACTICE = b"""
practice: {name: Test Practice, phone: "+13125550100"}
clinics:
  - {name: Main, timezone: America/Chicago, hours: {mon: ["08:00", "17:00"]}}
providers:
  - {npi: "1234567893", first_name: Pat, last_name: Doc, credential: MD}
payers:
  - {code: PRAIRIE, name: Prairie Health Plan, adapter: sandbox}
  - {code: SUMMIT, name: Summit Mutual, adapter: sandbox}
  - {code: MEDB, name: Medicare Part B, adapter: sandbox}
  - {code: "60054", name: Aetna, adapter: sandbox}
appointment_types:
  - {code: follow-up, name: Follow-up visit, minutes: 20}
staff:
  - {email: boss@test.example, first_name: Mo, last_name: Reyes, role: office_manager,
     start_date: 2020-01-01}
"""


@pytest.fixture
def practice(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    with transaction(factory) as session:
        apply_practice(session, parse_practice(PRACTICE), actor="test", source="test", now=NOW)
    return factory


def ann(**fields: object) -> PatientUpdate:
    values: dict[str, object] = {
        "mrn": "M1",
        "first_name": "Ann",
        "last_name": "Lee",
        "date_of_birth": date(1980, 1, 2),
        "sex": "F",
        "phone": "(312) 555-0123",
        "email": "ann.lee@example.com",
        "coverages": (CoverageUpdate(payer_code="PRAIRIE", member_id="PR1", rank=1),),
    }
    values.update(fields)
    return PatientUpdate(**values)  # type: ignore[arg-type]


def apply(
    factory: sessionmaker[Session],
    *updates: PatientUpdate,
    submitter: Submitter = Submitter.SYSTEM,
    kind: SourceKind = SourceKind.HL7,
    now: datetime = NOW,
) -> ApplyOutcome:
    with transaction(factory) as session:
        return apply_record(
            session,
            RecordBatch(tuple(updates), kind, submitter=submitter, label="message 1"),
            actor="test",
            now=now,
        )


def only_review(factory: sessionmaker[Session]) -> RecordReview:
    """The one review waiting for a decision."""
    with factory() as session:
        return session.scalars(
            select(RecordReview).where(RecordReview.status == ReviewStatus.PENDING)
        ).one()
