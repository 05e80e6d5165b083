"""A small practice (imported through the practice file's own path) for the records tests."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from flows import runtime
from office.db import transaction
from office.ledgers import store_inbound
from office.models import Followup, Payer, RecordReview, ReviewStatus, utcnow
from office.practice import apply_practice, parse_practice
from office.records import (
    CoverageUpdate,
    MergeRequest,
    PatientUpdate,
    RecordBatch,
    SourceKind,
    Submitter,
    apply_record,
)
from office.records.apply import ApplyOutcome
from office.settings import Settings

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


# Ann Lee (`ann`) as another system sends her: its own MRN, her name spelled "Anne".
TWIN = PatientUpdate(
    mrn="EXT-9",
    first_name="Anne",
    last_name="Lee",
    date_of_birth=date(1980, 1, 2),
    sex="F",
    city="Skokie",
)


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


@pytest.fixture
def office_app(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> runtime.Office:
    monkeypatch.setattr(runtime, "_override", None)
    return runtime.use_office(settings, engine)


def booked(practice: sessionmaker[Session]) -> int:
    """A booking webhook for a known patient whose payer's check fails (default x12
    adapter, no clearinghouse configured); returns its inbox id."""
    apply(practice, ann())
    with transaction(practice) as session:
        session.execute(update(Payer).where(Payer.payer_code == "PRAIRIE").values(adapter="x12"))
    body = json.dumps(
        {
            "event": "booked",
            "external_id": "PM-1",
            "patient_mrn": "M1",
            "provider_npi": "1234567893",
            "location_id": 1,
            "appointment_type": "follow-up",
            "start": (utcnow() + timedelta(days=2)).isoformat(),
            "occurred_at": (utcnow() - timedelta(minutes=1)).isoformat(),
        }
    ).encode()
    with transaction(practice) as session:
        item, _ = store_inbound(
            session, source="webhook:bookings", key=hashlib.sha256(body).hexdigest(), body=body
        )
        return item.id


def request_merge(factory: sessionmaker[Session]) -> None:
    """An HL7 A40 from the practice-management system: M2 merged into M1."""
    with transaction(factory) as session:
        apply_record(
            session,
            RecordBatch((MergeRequest(PatientUpdate(mrn="M1"), retired_mrn="M2"),), SourceKind.HL7),
            actor="hl7:PM",
            now=NOW,
        )


def ledger(practice: sessionmaker[Session]) -> dict[str, Followup]:
    """The follow-up rows as they stand, by name (a booking records one of each)."""
    with practice() as session:
        return {row.name: row for row in session.scalars(select(Followup))}
