"""FHIR R4 in: a Bundle of Patient, Coverage and Appointment through the intake, a resource
that fails the FHIR model rejected by entry and element with nothing applied, a Coverage
alone finding its patient by the logical id, and `office records import --fhir`."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import app
from office.db import transaction
from office.intake import process_item
from office.ledgers import store_inbound
from office.models import Appointment, Coverage, Followup, InboxStatus, Patient
from office.settings import Settings
from tests.records.conftest import NOW

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "pt-7",
    "meta": {"lastUpdated": "2026-12-01T14:00:00Z"},
    "identifier": [
        {
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                ]
            },
            "system": "urn:oid:1.2.3.4",
            "value": "F-100",
        },
        {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "123-45-6789"},
    ],
    "name": [{"use": "official", "family": "Quill", "given": ["Rowan", "Ash"]}],
    "gender": "female",
    "birthDate": "1988-04-09",
    "telecom": [
        {"system": "email", "value": "rowan.quill@example.com"},
        {"system": "phone", "use": "mobile", "value": "(312) 555-0111"},
    ],
    "address": [
        {
            "use": "home",
            "line": ["5 Reed Court"],
            "city": "Chicago",
            "state": "IL",
            "postalCode": "60605",
        }
    ],
}
COVERAGE: dict[str, Any] = {
    "resourceType": "Coverage",
    "status": "active",
    "subscriberId": "PR-555",
    "beneficiary": {"reference": "Patient/pt-7"},
    "payor": [{"identifier": {"value": "PRAIRIE"}, "display": "Prairie Health Plan"}],
    "relationship": {"coding": [{"code": "self"}]},
    "period": {"start": "2026-01-01"},
    "order": 1,
}


def appointment(start: str) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "id": "ap-1",
        "meta": {"lastUpdated": "2026-12-01T14:05:00Z"},
        "status": "booked",
        "appointmentType": {"coding": [{"code": "follow-up"}]},
        "start": start,
        "minutesDuration": 20,
        "participant": [
            {"actor": {"reference": "Patient/pt-7"}, "status": "accepted"},
            {
                "actor": {
                    "type": "Practitioner",
                    "identifier": {
                        "system": "http://hl7.org/fhir/sid/us-npi",
                        "value": "1234567893",
                    },
                },
                "status": "accepted",
            },
            {"actor": {"type": "Location", "display": "Main"}, "status": "accepted"},
        ],
    }


def bundle(*resources: dict[str, Any]) -> bytes:
    entries = [
        {"fullUrl": f"urn:uuid:0000000{i}-0000-4000-8000-000000000000", "resource": r}
        for i, r in enumerate(resources)
    ]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}).encode()


def deliver(factory: sessionmaker[Session], body: bytes) -> tuple[InboxStatus, str]:
    with transaction(factory) as session:
        item, _ = store_inbound(
            session, source="webhook:fhir", key=hashlib.sha256(body).hexdigest(), body=body
        )
        item_id = item.id
    result = process_item(factory, item_id, now=NOW)
    return result.status, result.reason or ""


def test_a_bundle_creates_the_patient_with_coverage_and_books_the_visit(
    practice: sessionmaker[Session],
) -> None:
    start = (NOW + timedelta(days=2)).isoformat()
    status, reason = deliver(practice, bundle(PATIENT, COVERAGE, appointment(start)))
    assert status is InboxStatus.PROCESSED, reason
    with practice() as session:
        patient = session.scalars(select(Patient)).one()
        coverage = session.scalars(select(Coverage)).one()
        visit = session.scalars(select(Appointment)).one()
    assert (patient.mrn, patient.first_name, patient.middle_name, patient.last_name) == (
        "F-100",
        "Rowan",
        "Ash",
        "Quill",
    )
    assert (patient.phone, patient.sex, patient.postal_code) == ("+13125550111", "F", "60605")
    assert (coverage.member_id, coverage.relationship_code) == ("PR-555", "18")
    assert (visit.external_id, visit.patient_id, visit.duration_minutes) == ("ap-1", patient.id, 20)


def test_an_invalid_resource_rejects_all_of_it_by_entry_and_element(
    practice: sessionmaker[Session],
) -> None:
    broken = {**PATIENT, "birthDate": "1988-13-40"}
    status, reason = deliver(practice, bundle(broken, COVERAGE))
    assert status is InboxStatus.REJECTED
    assert reason.startswith("entry 0 Patient: invalid birthDate")
    assert "1988" not in reason
    with practice() as session:
        assert session.scalars(select(Patient)).all() == []


def test_a_coverage_alone_finds_its_patient_and_rechecks_upcoming_visits(
    practice: sessionmaker[Session],
) -> None:
    start = (NOW + timedelta(days=2)).isoformat()
    deliver(practice, bundle(PATIENT, COVERAGE, appointment(start)))
    changed = {
        **COVERAGE,
        "subscriberId": "PR-556",
        "meta": {"lastUpdated": "2026-12-01T15:00:00Z"},
    }
    status, reason = deliver(practice, json.dumps(changed).encode())
    assert status is InboxStatus.PROCESSED, reason
    with practice() as session:
        assert session.scalars(select(Coverage.member_id)).one() == "PR-556"
        visit = session.scalars(select(Appointment.id)).one()
        rechecks = session.scalars(
            select(Followup.entity_id).where(Followup.name == "verify_appointment")
        ).all()
    assert visit in rechecks


def test_records_import_fhir_from_the_command_line(
    practice: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    assert settings.database_url is not None
    env = {
        "OFFICE_HOME": str(tmp_path / "home"),
        "OFFICE_DATABASE_URL": settings.database_url,
        "COLUMNS": "200",
    }
    path = tmp_path / "bundle.json"
    path.write_bytes(bundle(PATIENT, COVERAGE))
    result = CliRunner().invoke(app, ["records", "import", "--fhir", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert "patients" in result.output
    with practice() as session:
        assert session.scalars(select(Patient.mrn)).all() == ["F-100"]
