"""`office practice import`: the example file through the real command line, the same file
again changing nothing, each change audited, a broken file applying nothing, and the
staff hook told who joined and who is leaving, inside the import's transaction."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import app
from office.db import transaction
from office.intake import IntakeRejected
from office.models import (
    AppointmentType,
    AuditEntry,
    Location,
    Payer,
    Provider,
    Staff,
)
from office.practice import (
    StaffChange,
    StaffChangeKind,
    apply_practice,
    npi_is_valid,
    parse_practice,
)
from office.settings import Settings
from tests.records.conftest import NOW

EXAMPLE = Path(__file__).parents[2] / "templates" / "examples" / "practice.yaml"


@pytest.fixture
def env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    assert settings.database_url is not None
    return {
        "OFFICE_HOME": str(tmp_path / "home"),
        "OFFICE_DATABASE_URL": settings.database_url,
        "COLUMNS": "200",
    }


def count(factory: sessionmaker[Session], model: type) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_the_example_file_imports_once_and_again_changes_nothing(
    factory: sessionmaker[Session], env: dict[str, str]
) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["practice", "import", str(EXAMPLE)], env=env)
    assert first.exit_code == 0, first.output
    assert "clinics created" in first.output
    with factory() as session:
        main = session.scalars(select(Location).where(Location.name == "Lakeside Main")).one()
        kind = session.scalars(
            select(AppointmentType).where(AppointmentType.code == "new-patient")
        ).one()
        payer = session.scalars(select(Payer).where(Payer.payer_code == "60054")).one()
    assert main.timezone == "America/Chicago"
    assert main.office_hours["thu"] == ["08:00", "19:00"]
    assert kind.reminder_offsets == [
        {"days_before": 2, "at": "09:00", "channels": ["email"]},
        {"hours": 3, "channels": ["sms"]},
    ]
    assert (payer.adapter, payer.adapter_settings, payer.concurrency_limit) == (
        "x12",
        {"receiver_id": "60054"},
        5,
    )
    assert (count(factory, Provider), count(factory, Staff)) == (2, 3)
    audited = count(factory, AuditEntry)

    again = runner.invoke(app, ["practice", "import", str(EXAMPLE)], env=env)
    assert again.exit_code == 0, again.output
    assert "already applied" in again.output
    assert count(factory, AuditEntry) == audited


def test_a_changed_file_changes_only_what_differs_with_an_audit_entry(
    factory: sessionmaker[Session],
) -> None:
    text = EXAMPLE.read_bytes()
    with transaction(factory) as session:
        apply_practice(session, parse_practice(text), actor="t", source="t", now=NOW)
    moved = text.replace(b'thu: ["08:00", "19:00"]', b'thu: ["08:00", "18:00"]')
    with transaction(factory) as session:
        result = apply_practice(
            session, parse_practice(moved), actor="t", source="inbox:9", now=NOW
        )
    assert dict(result.counts) == {"clinics_changed": 1}
    with factory() as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.source == "inbox:9")).one()
    assert (entry.entity, entry.field) == ("locations", "office_hours")


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (b"America/Chicago", b"America/Chicagoo"),
        (b'npi: "1245319599"', b'npi: "1245319598"'),
        (b"hours: 3, channels", b"hours: -3, channels"),
        (b"manager: morgan.reyes@", b"manager: nobody@"),
    ],
)
def test_a_mistake_anywhere_applies_nothing_and_names_its_path(
    factory: sessionmaker[Session], change: bytes, where: bytes
) -> None:
    broken = EXAMPLE.read_bytes().replace(change, where, 1)
    with pytest.raises(IntakeRejected, match="invalid practice file"):
        parse_practice(broken)
    assert count(factory, Location) == 0


def test_npi_check_digit() -> None:
    assert npi_is_valid("1234567893")
    assert not npi_is_valid("1234567890")
    assert not npi_is_valid("123456789")


def test_the_staff_hook_hears_who_joins_and_who_leaves_in_the_same_transaction(
    factory: sessionmaker[Session],
) -> None:
    heard: list[tuple[StaffChange, bool]] = []

    def hook(session: Session, change: StaffChange, now: datetime) -> None:
        # The row is already written when the hook runs.
        heard.append((change, session.get(Staff, change.staff_id) is not None))

    text = EXAMPLE.read_bytes()
    with transaction(factory) as session:
        apply_practice(session, parse_practice(text), actor="t", source="t", now=NOW, on_staff=hook)
    assert [(c.kind, c.on, seen) for c, seen in heard] == [
        (StaffChangeKind.ADDED, date(2019, 4, 1), True),
        (StaffChangeKind.ADDED, date(2027, 1, 4), True),
        (StaffChangeKind.ADDED, date(2021, 6, 1), True),
    ]
    heard.clear()
    leaving = text.replace(
        b"start_date: 2021-06-01}", b"start_date: 2021-06-01, end_date: 2027-02-26}"
    )
    with transaction(factory) as session:
        result = apply_practice(
            session, parse_practice(leaving), actor="t", source="t", now=NOW, on_staff=hook
        )
    with factory() as session:
        lee = session.scalars(select(Staff).where(Staff.last_name == "Chan")).one()
    assert [c for c, _seen in heard] == [
        StaffChange(StaffChangeKind.DEPARTING, lee.id, date(2027, 2, 26))
    ]
    assert result.counts["staff_departing"] == 1
    # The same file again: nobody new, nobody leaving again.
    heard.clear()
    with transaction(factory) as session:
        apply_practice(
            session, parse_practice(leaving), actor="t", source="t", now=NOW, on_staff=hook
        )
    assert heard == []


def test_a_failing_hook_rolls_the_import_back(factory: sessionmaker[Session]) -> None:
    def hook(session: Session, change: StaffChange, now: datetime) -> None:
        raise RuntimeError("onboarding refused")

    with pytest.raises(RuntimeError), transaction(factory) as session:
        apply_practice(
            session,
            parse_practice(EXAMPLE.read_bytes()),
            actor="t",
            source="t",
            now=NOW,
            on_staff=hook,
        )
    assert count(factory, Staff) == 0
