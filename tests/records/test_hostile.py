"""Hostile input, by property: any CSV, FHIR or intake-form payload ends applied or
rejected with reasons (field and row or element, never a crash), and a rejected one
changes nothing at all: no patient, coverage, identifier, review or audit entry."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from office.intake import IntakeRejected
from office.models import AuditEntry, Coverage, Patient, PatientIdentifier, RecordReview
from office.records import ApplyStatus, RecordBatch, SourceKind, Submitter, apply_records
from office.records.csv_import import CSV_COLUMNS, read_rows, row_update
from office.records.fhir import FhirError, read_fhir
from office.records.forms import form_update, parse_form
from office.records.updates import BookingUpdate
from tests.records.conftest import NOW
from tests.records.test_fhir import COVERAGE, PATIENT

T = TypeVar("T")
E = TypeVar("E", bound=Exception)
ON_A_SHARED_DATABASE = settings(
    max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
TABLES = (Patient, Coverage, PatientIdentifier, RecordReview, AuditEntry)

# Cells that look like what exports carry, and what they should not.
CELLS = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        [
            "",
            "[clear]",
            "1980-01-02",
            "02/30/1999",
            "2199-01-01",
            "312-555-0123",
            "+44 20 7946 0958",
            "a@b",
            "ann@example.com",
            "IL",
            "ZZ",
            "60601",
            "6060",
            "PRAIRIE",
            "MEDB",
            "1EG4TE5MK73",
            "M",
            "F",
            "X",
            "yes",
            "maybe",
            "18",
            "M1",
            "0",
        ]
    ),
)


def attempt(call: Callable[[], T], kind: type[E]) -> tuple[T | None, E | None]:
    """The call's result, or the error of the one kind a rejection may raise."""
    try:
        return call(), None
    except kind as exc:
        return None, exc


def counts(session: Session) -> tuple[int, ...]:
    return tuple(
        int(session.scalar(select(func.count()).select_from(table)) or 0) for table in TABLES
    )


def apply_or_nothing(factory: sessionmaker[Session], batch: RecordBatch) -> None:
    """Apply in a transaction that is rolled back; a rejection must have written nothing."""
    with factory() as session:
        before = counts(session)
        (outcome,) = apply_records(session, [batch], actor="test", now=NOW)
        if outcome.status is ApplyStatus.REJECTED:
            assert outcome.problems
            assert all(p.field and p.message for p in outcome.problems)
            assert counts(session) == before
        session.rollback()


@ON_A_SHARED_DATABASE
@given(st.binary(max_size=300))
def test_any_bytes_are_rows_or_a_reason(practice: sessionmaker[Session], body: bytes) -> None:
    rows, error = attempt(lambda: read_rows(body), IntakeRejected)
    if error is not None:
        assert str(error)
        return
    assert rows is not None
    for number, row in enumerate(rows, start=1):
        update, problems = row_update(row, f"row {number}")
        assert (update is None) == bool(problems)


@ON_A_SHARED_DATABASE
@given(st.dictionaries(st.sampled_from(CSV_COLUMNS), CELLS, max_size=12))
def test_any_row_applies_or_is_rejected_whole(
    practice: sessionmaker[Session], row: dict[str, str]
) -> None:
    update, problems = row_update({k: v.strip() for k, v in row.items() if v.strip()}, "row 1")
    if update is None:
        assert all(p.where == "row 1" and p.field for p in problems)
        return
    apply_or_nothing(practice, RecordBatch((update,), SourceKind.CSV, label="row 1"))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@ON_A_SHARED_DATABASE
@given(
    st.sampled_from([PATIENT, COVERAGE]),
    st.sampled_from(
        [
            "name",
            "birthDate",
            "gender",
            "telecom",
            "address",
            "identifier",
            "subscriberId",
            "payor",
            "period",
            "beneficiary",
            "meta",
            "resourceType",
        ]
    ),
    JSON,
)
def test_any_fhir_resource_applies_or_names_what_is_wrong(
    practice: sessionmaker[Session], resource: dict[str, Any], element: str, value: Any
) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {**PATIENT}}, {"resource": {**resource, element: value}}],
    }
    parsed, error = attempt(lambda: read_fhir(json.dumps(bundle).encode()), FhirError)
    if error is not None:
        assert error.problems
        assert all(p.startswith("entry ") for p in error.problems)
        return
    assert parsed is not None
    for part in parsed:
        if not isinstance(part, BookingUpdate):
            apply_or_nothing(practice, part)


FORM_KEYS = st.sampled_from(
    [
        "submitted_at",
        "mrn",
        "first_name",
        "last_name",
        "date_of_birth",
        "sex",
        "phone",
        "email",
        "address",
        "insurance",
        "consent_sms",
        "patient_version",
        "language",
        "unknown",
    ]
)


@ON_A_SHARED_DATABASE
@given(st.dictionaries(FORM_KEYS, JSON | st.sampled_from(["1980-01-02", "2026-12-01T10:00:00Z"])))
def test_any_form_applies_or_names_its_fields(
    practice: sessionmaker[Session], form: dict[str, Any]
) -> None:
    body = json.dumps({"submitted_at": "2026-12-01T10:00:00-06:00", **form}).encode()
    parsed, error = attempt(lambda: parse_form(body), IntakeRejected)
    if error is not None:
        assert str(error).startswith("invalid intake form: ")
        return
    assert parsed is not None
    batch = RecordBatch(
        (form_update(parsed),), SourceKind.FORM, submitter=Submitter.PATIENT, label="form 1"
    )
    apply_or_nothing(practice, batch)
