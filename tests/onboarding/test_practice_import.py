"""`office practice import` hands its staff changes to onboarding: a new hire in the file gets
a checklist in the import's transaction, someone hired years ago does not, a departure
gets an offboarding checklist (from the role template: there is no onboarding record to
mirror) and a moved last day moves it (SQLite and PostgreSQL)."""

from __future__ import annotations

import importlib
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import app
from office.db import transaction
from office.models import Checklist, ChecklistItem, ChecklistKind, Staff
from office.onboarding.hook import RECENT, on_staff_change
from office.onboarding.templates import Template, load_templates
from office.practice import StaffChange, StaffChangeKind, apply_practice, parse_practice
from office.settings import Settings
from tests.onboarding.practice import NOW

EXAMPLE = Path(__file__).parents[2] / "templates" / "examples" / "practice.yaml"


def checklists(session: Session) -> dict[tuple[str, str], Checklist]:
    rows = session.execute(select(Checklist, Staff.last_name).join(Staff)).tuples()
    return {(last, c.kind.value): c for c, last in rows}


def import_practice(factory: sessionmaker[Session], text: bytes) -> None:
    """The practice file imported as `office practice import` does, onboarding hook included."""
    with transaction(factory) as session:
        apply_practice(
            session, parse_practice(text), actor="t", source="t", now=NOW, on_staff=on_staff_change
        )


def test_the_import_starts_onboarding_for_new_hires_only(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    assert settings.database_url is not None
    env = {"OFFICE_HOME": str(settings.home), "OFFICE_DATABASE_URL": settings.database_url}
    result = CliRunner().invoke(app, ["practice", "import", str(EXAMPLE)], env=env)
    assert result.exit_code == 0, result.output
    # The CLI imports at the real time: whoever starts within RECENT of today or later.
    today = datetime.now(UTC).date()
    with factory() as session:
        found = checklists(session)
        recent = {
            (last, "onboarding")
            for last, start in session.execute(select(Staff.last_name, Staff.start_date))
            if start >= today - RECENT
        }
    assert set(found) == recent
    with transaction(factory) as session:  # the hook on the test's clock
        for staff_id in session.scalars(select(Staff.id).order_by(Staff.id)):
            staff = session.get_one(Staff, staff_id)
            on_staff_change(
                session, StaffChange(StaffChangeKind.ADDED, staff_id, staff.start_date), NOW
            )
    with factory() as session:
        found = checklists(session)
    assert set(found) == {("Park", "onboarding")}  # starts 2027-01-04; the others long ago
    assert found[("Park", "onboarding")].template == "front_desk"


def test_a_departure_in_the_file_starts_offboarding_and_a_moved_day_moves_it(
    factory: sessionmaker[Session],
) -> None:
    text = EXAMPLE.read_bytes()
    import_practice(factory, text)
    leaving = text.replace(
        b"start_date: 2021-06-01}", b"start_date: 2021-06-01, end_date: 2027-02-26}"
    )
    import_practice(factory, leaving)
    with factory() as session:
        offboarding = checklists(session)[("Chan", "offboarding")]
        items = session.scalars(
            select(ChecklistItem).where(ChecklistItem.checklist_id == offboarding.id)
        ).all()
    assert offboarding.basis == "template"
    assert offboarding.kind is ChecklistKind.OFFBOARDING
    assert sorted(i.access for i in items) == sorted(
        ["workstation", "email", "ehr", "building", "clearinghouse", "payer_portals"]
    )
    assert {i.due_on for i in items} == {date(2027, 2, 26)}
    moved = leaving.replace(b"end_date: 2027-02-26", b"end_date: 2027-03-05")
    import_practice(factory, moved)
    with factory() as session:
        found = checklists(session)
        again = session.scalars(
            select(ChecklistItem.due_on).where(ChecklistItem.checklist_id == offboarding.id)
        ).all()
    assert found[("Chan", "offboarding")].id == offboarding.id
    assert found[("Chan", "offboarding")].anchor_on == date(2027, 3, 5)
    assert set(again) == {date(2027, 3, 5)}


def test_an_import_reads_the_role_templates_once_for_all_its_hires(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[int] = []

    def counted() -> dict[str, Template]:
        reads.append(1)
        return load_templates()

    for module in ("hook", "start", "offboard"):  # wherever a checklist's template is read
        monkeypatch.setattr(
            importlib.import_module(f"office.onboarding.{module}"),
            "load_templates",
            counted,
            raising=False,
        )
    two_hires = EXAMPLE.read_bytes().replace(b"start_date: 2021-06-01}", b"start_date: 2027-01-11}")
    import_practice(factory, two_hires)
    with factory() as session:
        found = checklists(session)
    assert {("Park", "onboarding"), ("Chan", "onboarding")} <= set(found)
    assert len(reads) == 1
    import_practice(factory, two_hires)  # again: every checklist exists, nothing is read
    assert len(reads) == 1
