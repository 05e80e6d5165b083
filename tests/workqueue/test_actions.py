"""What a person does to an item: each action audited; a closed item refuses every action."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.ledgers import LedgerError
from office.ledgers.work import WorkNeeded, open_work_items
from office.models import AuditEntry, Staff, StaffStatus, WorkStatus
from office.workqueue import actions
from tests.workqueue.conftest import NOW, Clinic


@pytest.fixture
def item(factory: sessionmaker[Session], clinic: Clinic) -> int:
    with transaction(factory) as session:
        [(item_id, _)] = open_work_items(
            session, [WorkNeeded("mail_triage", "mail_message", 5, "s", "front_desk")], now=NOW
        ).values()
        return item_id


def _history(factory: sessionmaker[Session], item_id: int) -> list[tuple[str, str | None, str]]:
    with factory() as session:
        rows = session.execute(
            select(AuditEntry.field, AuditEntry.after, AuditEntry.actor)
            .where(AuditEntry.entity == "work_items", AuditEntry.entity_id == item_id)
            .order_by(AuditEntry.id)
        )
        return [(field, after, actor) for field, after, actor in rows.tuples()]


def test_take_assign_and_close_are_each_in_the_history(
    factory: sessionmaker[Session], clinic: Clinic, item: int
) -> None:
    with transaction(factory) as session:
        taken = actions.take(session, item, staff_id=clinic.front_desk)
        handed = actions.assign(session, item, staff_id=clinic.billing, by=clinic.manager)
        done = actions.close(session, item, by=clinic.billing, note="forwarded to billing")
    assert taken.assignee_id == clinic.front_desk
    assert handed.assignee_id == clinic.billing
    assert (done.status, done.close_reason, done.close_note) == (
        WorkStatus.DONE,
        "done",
        "forwarded to billing",
    )
    people = [(f, a, who) for f, a, who in _history(factory, item) if who != "officeflows"]
    assert [(f, who) for f, _a, who in people] == [
        ("assignee_id", f"staff:{clinic.front_desk}"),
        ("assignee_id", f"staff:{clinic.manager}"),
        ("status", f"staff:{clinic.billing}"),
        ("closed_by", f"staff:{clinic.billing}"),
        ("closed_at", f"staff:{clinic.billing}"),
        ("close_reason", f"staff:{clinic.billing}"),
        ("close_note", f"staff:{clinic.billing}"),
    ]


def test_every_action_on_a_closed_item_is_a_clear_ledger_error(
    factory: sessionmaker[Session], clinic: Clinic, item: int
) -> None:
    with transaction(factory) as session:
        actions.dismiss(session, item, by="Morgan", reason="spam")
    attempts = [
        lambda s: actions.take(s, item, staff_id=clinic.front_desk),
        lambda s: actions.assign(s, item, staff_id=clinic.front_desk, by="Morgan"),
        lambda s: actions.close(s, item, by="Morgan"),
        lambda s: actions.dismiss(s, item, by="Morgan", reason="again"),
    ]
    refused = rf"work item {item} is already closed \(dismissed\)"
    for attempt in attempts:
        with pytest.raises(LedgerError, match=refused), transaction(factory) as session:
            attempt(session)


def test_only_working_staff_take_items_and_someone_must_act(
    factory: sessionmaker[Session], clinic: Clinic, item: int
) -> None:
    with transaction(factory) as session:
        session.get_one(Staff, clinic.billing).status = StaffStatus.INACTIVE
    with pytest.raises(LedgerError, match="not working here"), transaction(factory) as session:
        actions.take(session, item, staff_id=clinic.billing)
    with pytest.raises(LedgerError, match="does not exist"), transaction(factory) as session:
        actions.take(session, item, staff_id=999)
    with pytest.raises(LedgerError, match="say who"), transaction(factory) as session:
        actions.close(session, item, by="  ")
    with transaction(factory) as session:
        back = actions.assign(session, item, staff_id=None, by="Morgan")
    assert back.assignee_id is None
