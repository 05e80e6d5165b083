"""The kinds catalog: every kind a flow raises is in it, with an owner and a next step."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from office.eligibility.alerts import ROLES, AlertKind
from office.models import OutboxStatus, WorkPriority
from office.settings import Settings, SettingsError, load_settings
from office.workqueue.kinds import (
    KINDS,
    PRIORITY_LABELS,
    ROLE_LABELS,
    CloseReason,
    Subject,
    kind_of,
    note_kinds,
)

ROOT = Path(__file__).resolve().parents[2]
NAMES = {kind.name for kind in KINDS}


def _raised_in_code() -> set[str]:
    """Every `kind="..."` a domain module opens a work item with."""
    found: set[str] = set()
    for path in (ROOT / "office").rglob("*.py"):
        text = path.read_text()
        if "open_work_item" not in text and "WorkNeeded" not in text:
            continue
        found.update(re.findall(r'kind="([a-z_]+)",\s*\n?\s*entity=', text))
    return found


def test_every_kind_raised_anywhere_is_in_the_catalog() -> None:
    raised = _raised_in_code() | {kind.value for kind in AlertKind}
    # The general mail sender names its kind after the outcome.
    raised |= {f"mail_send_{s.value}" for s in (OutboxStatus.FAILED, OutboxStatus.UNKNOWN)}
    assert len(raised) > 20
    assert raised <= NAMES, f"add {sorted(raised - NAMES)} to office/workqueue/kinds.py"


def test_each_kind_has_an_owner_a_next_step_and_closes_only_by_a_cause() -> None:
    assert len(NAMES) == len(KINDS)
    for kind in KINDS:
        assert kind.role in ROLE_LABELS, kind.name
        assert kind.priority in PRIORITY_LABELS, kind.name
        assert kind.title[0].isupper(), kind.name
        assert kind.next_step.endswith("."), kind.name
        assert CloseReason.DONE not in kind.closes_when, kind.name
        assert CloseReason.DISMISSED not in kind.closes_when, kind.name
        if kind.note:
            assert kind.priority is WorkPriority.INFO, kind.name


def test_eligibility_owners_agree_with_the_catalog() -> None:
    for alert, role in ROLES.items():
        assert kind_of(alert.value).role == role, alert


def test_information_is_a_note_and_inactive_coverage_a_blocker() -> None:
    assert note_kinds() == {"plan_ending", "high_deductible"}
    assert note_kinds(["plan_ending"]) == {"high_deductible"}
    not_active = kind_of("not_active")
    assert (not_active.priority, not_active.subject, not_active.note) == (
        WorkPriority.BLOCKER,
        Subject.PATIENT,
        False,
    )
    assert kind_of("fix_patient_data").subject is Subject.PATIENT


def test_an_unregistered_kind_still_opens_a_task_for_the_role_given() -> None:
    kind = kind_of("records_request", role="medical_assistant")
    assert (kind.role, kind.priority, kind.note) == (
        "medical_assistant",
        WorkPriority.ACTION,
        False,
    )


def test_the_note_setting_accepts_note_kinds_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFICE_QUEUE_NOTE_KINDS_AS_TASKS", "plan_ending, high_deductible")
    assert load_settings().queue_note_kinds_as_tasks == ["plan_ending", "high_deductible"]
    monkeypatch.setenv("OFFICE_QUEUE_NOTE_KINDS_AS_TASKS", "not_active")
    with pytest.raises(SettingsError, match="OFFICE_QUEUE_NOTE_KINDS_AS_TASKS: not_active is not"):
        load_settings()


def test_the_readme_documents_the_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "`OFFICE_QUEUE_NOTE_KINDS_AS_TASKS`" in readme
    assert Settings.model_fields["queue_note_kinds_as_tasks"].description
