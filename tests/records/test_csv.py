"""CSV exports in: the example file through the command line, encodings, partial rows,
a rejected row kept with its reasons and replayed after a fix, the same file twice, stale
versions and duplicates held for review, and the import flow's artifact of counts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import app
from office.db import transaction
from office.intake import process_item
from office.ledgers import replay, store_inbound
from office.models import (
    AuditEntry,
    Coverage,
    InboxItem,
    InboxStatus,
    Patient,
    RecordReview,
    WorkItem,
)
from office.settings import Settings
from tests.records.conftest import NOW

EXAMPLE = Path(__file__).parents[2] / "templates" / "examples" / "patients.csv"
PRACTICE = Path(__file__).parents[2] / "templates" / "examples" / "practice.yaml"
HEADER = "mrn,first_name,last_name,date_of_birth,sex,phone,email,payer_code,member_id"


def store_file(factory: sessionmaker[Session], body: bytes, name: str = "p.csv") -> int:
    with transaction(factory) as session:
        item, _new = store_inbound(
            session,
            source=f"file:{name}",
            key=hashlib.sha256(body).hexdigest(),
            body=body,
            content_type="text/csv",
        )
        return item.id


def run(factory: sessionmaker[Session], body: bytes) -> dict[str, int]:
    result = process_item(factory, store_file(factory, body), now=NOW)
    assert result.status is InboxStatus.PROCESSED, result.reason
    assert result.outcome is not None
    return dict(result.outcome.counts)


def names(factory: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    with factory() as session:
        rows = session.execute(
            select(Patient.mrn, Patient.first_name, Patient.last_name).order_by(Patient.mrn)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.fixture
def env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    assert settings.database_url is not None
    return {
        "OFFICE_HOME": str(tmp_path / "home"),
        "OFFICE_DATABASE_URL": settings.database_url,
        "COLUMNS": "200",
    }


def test_the_example_files_import_through_the_command_line(
    factory: sessionmaker[Session], env: dict[str, str]
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["practice", "import", str(PRACTICE)], env=env).exit_code == 0
    first = runner.invoke(app, ["records", "import", str(EXAMPLE)], env=env)
    assert first.exit_code == 0, first.output
    assert "applied" in first.output
    assert names(factory) == [
        ("LK-1001", "Avery", "Testperson"),
        ("LK-1002", "José", "Núñez"),
        ("LK-1003", "Robin", "Marsh"),
    ]
    with factory() as session:
        coverages = session.scalar(select(func.count()).select_from(Coverage))
        jose = session.scalars(select(Patient).where(Patient.mrn == "LK-1002")).one()
    assert coverages == 4
    assert (jose.phone, jose.date_of_birth.isoformat(), jose.language) == (
        "+13125550177",
        "1979-03-14",
        "es",
    )
    again = runner.invoke(app, ["records", "import", str(EXAMPLE)], env=env)
    assert again.exit_code == 0, again.output
    assert "already applied" in again.output


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_utf8_with_or_without_bom_and_cp1252_read_the_same(
    practice: sessionmaker[Session], encoding: str
) -> None:
    text = f"{HEADER}\r\nM1,José,Núñez,1979-03-14,M,312-555-0177,,PRAIRIE,PR1\r\n"
    assert run(practice, text.encode(encoding))["applied"] == 1
    assert names(practice) == [("M1", "José", "Núñez")]


def test_a_blank_cell_keeps_the_value_and_clear_deletes_it(
    practice: sessionmaker[Session],
) -> None:
    run(
        practice,
        f"{HEADER}\nM1,Ann,Lee,1980-01-02,F,312-555-0123,ann@example.com,PRAIRIE,P1\n".encode(),
    )
    counts = run(practice, f"{HEADER}\nM1,,,,,,[clear],,\n".encode())
    assert counts["applied"] == 1
    with practice() as session:
        ann = session.scalars(select(Patient)).one()
        entries = session.execute(
            select(AuditEntry.field, AuditEntry.before, AuditEntry.after)
            .where(
                AuditEntry.entity == "patients",
                AuditEntry.entity_id == ann.id,
                AuditEntry.field == "email",
            )
            .order_by(AuditEntry.id)
        ).all()
    assert (ann.first_name, ann.phone, ann.email) == ("Ann", "+13125550123", None)
    assert [tuple(e) for e in entries] == [
        ("email", None, "ann@example.com"),
        ("email", "ann@example.com", None),
    ]


def test_a_bad_row_is_kept_with_its_reasons_the_rest_apply_and_it_replays_after_a_fix(
    practice: sessionmaker[Session],
) -> None:
    body = (
        f"{HEADER}\n"
        "M1,Ann,Lee,1980-01-02,F,312-555-0123,,PRAIRIE,P1\n"
        "M2,Bob,Ray,2199-01-01,M,call me,bob@,PRAIRIE,P2\n"
        "M3,Cy,Ode,1970-05-05,M,,,NOPE,P3\n"
    ).encode()
    counts = run(practice, body)
    assert (counts["applied"], counts["rejected"]) == (1, 2)
    with practice() as session:
        rejected = session.scalars(
            select(InboxItem).where(InboxItem.status == InboxStatus.REJECTED).order_by(InboxItem.id)
        ).all()
        reasons = [r.reason or "" for r in rejected]
        bob_id = rejected[0].id
    assert "row 2" in reasons[0]
    assert "date_of_birth" in reasons[0]
    assert "phone" in reasons[0]
    assert "2199" not in reasons[0]
    assert "call me" not in reasons[0]
    assert "row 3" in reasons[1]
    assert "payer" in reasons[1]
    assert names(practice) == [("M1", "Ann", "Lee")]
    # Fixed in place (as staff would with the inbox), then replayed.
    with transaction(practice) as session:
        item = session.get_one(InboxItem, bob_id)
        item.body = (
            item.body.replace(b"2199-01-01", b"1990-01-01")
            .replace(b"call me", b"312-555-0199")
            .replace(b"bob@", b"bob@example.com")
        )
        replay(session, bob_id)
    assert process_item(practice, bob_id, now=NOW).status is InboxStatus.PROCESSED
    assert names(practice)[1] == ("M2", "Bob", "Ray")


def test_a_stale_record_version_is_held_for_review(practice: sessionmaker[Session]) -> None:
    run(practice, f"{HEADER}\nM1,Ann,Lee,1980-01-02,F,312-555-0123,,PRAIRIE,P1\n".encode())
    run(practice, f"{HEADER}\nM1,,,,,312-555-0124,,,\n".encode())  # version 1 → 2
    stale = f"{HEADER},record_version\nM1,,,,,312-555-0999,,,,1\n".encode()
    assert run(practice, stale)["for_review"] == 1
    with practice() as session:
        review = session.scalars(select(RecordReview)).one()
        phone = session.scalar(select(Patient.phone))
        item = session.scalars(select(WorkItem).where(WorkItem.kind == "stale_update")).one()
    assert (review.kind, review.fields, phone) == ("stale_update", ["phone"], "+13125550124")
    assert item.entity_id == review.id


def test_a_possible_duplicate_is_held_with_scores(practice: sessionmaker[Session]) -> None:
    run(practice, f"{HEADER}\nM1,Ann,Lee,1980-01-02,F,312-555-0123,,PRAIRIE,P1\n".encode())
    counts = run(practice, f"{HEADER}\n,Anne,Lee,1980-01-02,F,312-555-0123,,,\n".encode())
    assert counts["possible_duplicate"] == 1
    with practice() as session:
        review = session.scalars(select(RecordReview)).one()
    (candidate,) = review.candidates
    assert candidate["parts"] == {
        "date_of_birth": 6,
        "first_name_sounds_like": 3,
        "last_name": 3,
        "phone": 4,
    }
    assert len(names(practice)) == 1


def test_unknown_columns_reject_the_whole_file_by_name(practice: sessionmaker[Session]) -> None:
    item_id = store_file(practice, b"mrn,first_name,ssn\nM1,Ann,123-45-6789\n")
    result = process_item(practice, item_id, now=NOW)
    assert result.status is InboxStatus.REJECTED
    assert result.reason == "unknown columns: ssn"
