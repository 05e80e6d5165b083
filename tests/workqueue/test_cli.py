"""`office queue`: the board's Today in a terminal; take, close and dismiss from it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli_queue import queue_app
from office.db import transaction
from office.ledgers.work import WorkNeeded, open_work_items
from office.models import AuditEntry, WorkItem, WorkStatus
from tests.workqueue.conftest import NOW, Clinic, add_patient, add_visit, days

runner = CliRunner()


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "OFFICE_DATABASE_URL": db_url,
        "OFFICE_HOME": str(tmp_path / "home"),
        "OFFICE_PRACTICE_TIMEZONE": "America/Chicago",
        "COLUMNS": "200",
    }


@pytest.fixture
def items(factory: sessionmaker[Session], clinic: Clinic) -> dict[str, int]:
    with transaction(factory) as session:
        patient = add_patient(session, 1)
        first = add_visit(session, clinic, patient, NOW + days(30), denver=True)
        second = add_visit(session, clinic, patient, NOW + days(31))
        other = add_visit(session, clinic, add_patient(session, 2), NOW + days(32))
        found = open_work_items(
            session,
            [
                WorkNeeded("not_active", "appointment", first, "Coverage ended", "front_desk"),
                WorkNeeded("not_active", "appointment", second, "Coverage ended", "front_desk"),
                WorkNeeded("copay_changed", "appointment", other, "Copay now $40", "front_desk"),
                WorkNeeded("coordination_of_benefits", "appointment", other, "s", "billing"),
                WorkNeeded("plan_ending", "appointment", other, "Plan ends", "front_desk"),
            ],
            now=NOW,
        )
    return {key.split(":")[0]: item_id for key, (item_id, _new) in found.items()}


def test_the_queue_shows_patients_local_times_clinics_and_next_steps(
    env: dict[str, str], items: dict[str, int]
) -> None:
    result = runner.invoke(queue_app, [], env=env)
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.index("Blocks the visit · Front desk") < out.index("Needs action before the visit")
    assert "Pat1 Doe" in out
    assert "MRN00001" in out
    # 15:00 UTC is 08:00 in Denver (the first visit's clinic), in its own zone.
    assert "08:00 MST" in out
    assert "Foothills" in out
    assert "+1 more visit" in out  # one patient-level item lists both visits
    assert "Call the patient for their current insurance card" in out
    assert "Appointment " not in out
    assert "UTC" not in out
    assert "Plan ends" not in out  # a note, not a task
    assert "Open items by kind" in out
    assert "3 shown of 3 open" in out


def test_the_queue_as_a_role_and_filtered(env: dict[str, str], items: dict[str, int]) -> None:
    billing = runner.invoke(queue_app, ["--as", "billing"], env=env)
    assert "Another payer reported" in billing.output
    assert "Coverage not active" not in billing.output
    denver = runner.invoke(queue_app, ["--clinic", "Foothills"], env=env)
    assert "1 shown of 1 open" in denver.output
    notes = runner.invoke(
        queue_app, [], env={**env, "OFFICE_QUEUE_NOTE_KINDS_AS_TASKS": "plan_ending"}
    )
    assert "Plan ends" in notes.output


def test_take_close_and_dismiss_are_recorded_with_who_did_them(
    env: dict[str, str], items: dict[str, int], clinic: Clinic, factory: sessionmaker[Session]
) -> None:
    took = runner.invoke(
        queue_app, ["take", str(items["not_active"]), "--by", "frankie@practice.test"], env=env
    )
    assert took.exit_code == 0, took.output
    closed = runner.invoke(
        queue_app,
        ["close", str(items["not_active"]), "--by", "Frankie", "--note", "new card on file"],
        env=env,
    )
    assert closed.exit_code == 0, closed.output
    dismissed = runner.invoke(
        queue_app,
        ["dismiss", str(items["copay_changed"]), "--by", "Morgan", "--reason", "told already"],
        env=env,
    )
    assert dismissed.exit_code == 0, dismissed.output
    with factory() as session:
        done = session.get_one(WorkItem, items["not_active"])
        assert (done.status, done.assignee_id, done.close_note, done.closed_by) == (
            WorkStatus.DONE,
            clinic.front_desk,
            "new card on file",
            "Frankie",
        )
        gone = session.get_one(WorkItem, items["copay_changed"])
        assert (gone.status, gone.close_note) == (WorkStatus.DISMISSED, "told already")
        sources = set(
            session.scalars(
                select(AuditEntry.source).where(
                    AuditEntry.entity == "work_items",
                    AuditEntry.entity_id == items["not_active"],
                    AuditEntry.actor != "officeflows",
                )
            )
        )
    assert sources == {"cli"}
    history = runner.invoke(queue_app, ["show", str(items["not_active"])], env=env)
    assert "new card on file" in history.output
    assert f"staff:{clinic.front_desk}" in history.output


def test_acting_on_a_closed_item_or_without_a_reason_is_one_clear_line(
    env: dict[str, str], items: dict[str, int]
) -> None:
    item = str(items["copay_changed"])
    runner.invoke(queue_app, ["close", item, "--by", "Morgan"], env=env)
    again = runner.invoke(queue_app, ["close", item, "--by", "Morgan"], env=env)
    assert again.exit_code == 1
    assert f"error: work item {item} is already closed (done)" in again.output
    nobody = runner.invoke(queue_app, ["take", item, "--by", "nobody@x.test"], env=env)
    assert nobody.exit_code == 1
    assert "no staff member" in nobody.output
    blank = runner.invoke(
        queue_app, ["dismiss", str(items["not_active"]), "--by", "M", "--reason", " "], env=env
    )
    assert blank.exit_code == 1
    assert "needs a reason" in blank.output
