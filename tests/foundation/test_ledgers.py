"""The outbox lets one claimant send; the work queue keeps one open item per problem."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from office.db import transaction
from office.ledgers import (
    LedgerError,
    RecordChanges,
    claim_outbox,
    close_work_item,
    enqueue_outbox,
    finish_outbox,
    open_work_item,
    record_changes,
)
from office.ledgers.outbox import DriverClaims, OutboxNotWritten, OutboxRow, move_outbox
from office.ledgers.work import WorkNeeded, open_work_items
from office.models import AuditEntry, Channel, OutboxItem, OutboxStatus, WorkItem, WorkStatus
from tests.conftest import PG_URL

DISMISSED = WorkStatus.DISMISSED


def _row(key: str, recipient: str, now: datetime) -> OutboxRow:
    return {
        "idempotency_key": key,
        "channel": Channel.EMAIL,
        "kind": "reminder",
        "appointment_id": None,
        "patient_id": None,
        "recipient": recipient,
        "status": OutboxStatus.PENDING,
        "attempts": 0,
        "error": None,
        "detail": {"offset": "24h"},
        "due_at": now,
        "created_at": now,
        "updated_at": now,
    }


def test_outbox_key_is_unique_and_only_one_claim_wins(factory: sessionmaker[Session]) -> None:
    now = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    key = "appt:1:v1:reminder:24h:email"
    with transaction(factory) as session:
        enqueue_outbox(session, [_row(key, "a@example.test", now)])
    with transaction(factory) as session:
        enqueue_outbox(session, [_row(key, "b@example.test", now)])  # the first one stays
    with factory() as session:
        (item,) = session.scalars(select(OutboxItem)).all()
    assert (item.idempotency_key, item.recipient) == (key, "a@example.test")
    with transaction(factory) as session:
        assert claim_outbox(session, item.id, now=now, recipient="c@x.test", message_id="<m@x>")
    with factory.kw["bind"].begin() as connection:  # the send loop claims on a bare connection
        assert not claim_outbox(connection, item.id, now=now, recipient="d@x", message_id=None)
        finish_outbox(connection, item.id, OutboxStatus.SENT, now=now, provider_message_id="<p>")
    with factory() as session:
        row = session.get_one(OutboxItem, item.id)
    assert (row.status, row.attempts, row.recipient, row.message_id) == (
        OutboxStatus.SENT,
        1,
        "c@x.test",
        "<m@x>",
    )
    assert (row.provider_message_id, row.sent_at, row.claimed_at) == ("<p>", now, now)


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="OFFICE_TEST_DATABASE_URL is not set")
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_driver_claim_writes_what_the_core_statements_write(
    factory: sessionmaker[Session],
) -> None:
    """`DriverClaims` (a send lane's claims on psycopg) and `claim_outbox`/`finish_outbox`
    leave the same rows: one lane claims a, sends it, and claims b with a's outcome."""
    now = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    later = now + timedelta(seconds=3)
    with transaction(factory) as session:
        enqueue_outbox(session, [_row(key, f"{key}@example.test", now) for key in "abcd"])
        a, b, c, d = session.scalars(select(OutboxItem.id).order_by(OutboxItem.id)).all()
    engine = factory.kw["bind"]

    async def one_lane() -> None:
        lane = await DriverClaims.connect(engine)
        try:
            assert await lane.claim(
                a, now=now, recipient="a@x.test", message_id="<a@x>", finished=None
            )
            sent = (a, OutboxStatus.SENT, later, "<pa>", None)
            assert await lane.claim(
                b, now=later, recipient="b@x.test", message_id=None, finished=sent
            )
            assert not await lane.claim(
                b, now=later, recipient="b@x.test", message_id=None, finished=None
            )
        finally:
            await lane.close()

    asyncio.run(one_lane())
    with engine.begin() as connection:
        assert claim_outbox(connection, c, now=now, recipient="a@x.test", message_id="<a@x>")
    with engine.begin() as connection:
        finish_outbox(connection, c, OutboxStatus.SENT, now=later, provider_message_id="<pa>")
        assert claim_outbox(connection, d, now=later, recipient="b@x.test", message_id=None)
    columns = [
        column
        for column in OutboxItem.__table__.columns
        if column.name not in ("id", "idempotency_key", "recipient", "created_at")
    ]
    with factory() as session:
        rows = session.execute(
            select(OutboxItem.id, *columns).where(OutboxItem.id.in_([a, b, c, d]))
        ).all()
    by_id = {row.id: tuple(row)[1:] for row in rows}
    assert by_id[a] == by_id[c]
    assert by_id[b] == by_id[d]
    assert by_id[a][columns.index(OutboxItem.__table__.c.status)] == OutboxStatus.SENT


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="OFFICE_TEST_DATABASE_URL is not set")
@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_driver_claim_that_fails_names_no_row_and_keeps_nothing(
    factory: sessionmaker[Session],
) -> None:
    now = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    with transaction(factory) as session:
        enqueue_outbox(session, [_row("a", "a@example.test", now)])
        a = session.scalars(select(OutboxItem.id)).one()
    too_long = "patient-name-" * 40  # message_id holds 200 characters: the UPDATE fails

    async def one_lane() -> None:
        lane = await DriverClaims.connect(factory.kw["bind"])
        try:
            with pytest.raises(OutboxNotWritten) as caught:
                await lane.claim(
                    a, now=now, recipient="a@x.test", message_id=too_long, finished=None
                )
            assert "patient" not in str(caught.value)
            assert caught.value.__cause__ is None
            assert await lane.claim(
                a, now=now, recipient="a@x.test", message_id="<m@x>", finished=None
            )
        finally:
            await lane.close()

    asyncio.run(one_lane())
    with factory() as session:
        assert session.get_one(OutboxItem, a).message_id == "<m@x>"


def test_outbox_move_happens_only_from_the_named_status(factory: sessionmaker[Session]) -> None:
    now = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    with transaction(factory) as session:
        enqueue_outbox(session, [_row("k1", "a@example.test", now)])
        item_id = session.scalars(select(OutboxItem.id)).one()
    with transaction(factory) as session:
        moved = move_outbox(
            session, item_id, OutboxStatus.SENDING, OutboxStatus.UNKNOWN, now=now, error="x"
        )
        withdrawn = move_outbox(
            session, item_id, OutboxStatus.PENDING, OutboxStatus.WITHDRAWN, now=now, error="moved"
        )
    with factory() as session:
        row = session.get_one(OutboxItem, item_id)
    assert (moved, withdrawn) == (False, True)
    assert (row.status, row.error) == (OutboxStatus.WITHDRAWN, "moved")


def test_work_item_is_refreshed_while_open_and_a_new_one_opens_after_it_closed(
    factory: sessionmaker[Session],
) -> None:
    for summary in ("first", "second"):
        with transaction(factory) as session:
            open_work_item(
                session,
                kind="not_active",
                entity="appointment",
                entity_id=5,
                summary=summary,
                role="front_desk",
            )
    with factory() as session:
        [item] = session.scalars(select(WorkItem)).all()
        assert item.summary == "second"
    with transaction(factory) as session:
        close_work_item(session, item.id, by="staff:1", note="called the patient")
    with transaction(factory) as session:
        again, created = open_work_item(
            session,
            kind="not_active",
            entity="appointment",
            entity_id=5,
            summary="again",
            role="front_desk",
        )
    with factory() as session:
        assert created is True
        assert again.id != item.id
        first = session.get_one(WorkItem, item.id)
        assert (first.status, first.close_reason, first.close_note) == (
            WorkStatus.DONE,
            "done",
            "called the patient",
        )
        assert session.get_one(WorkItem, again.id).status is WorkStatus.OPEN


def test_a_dismissed_item_stays_dismissed_and_a_recurrence_is_a_new_item(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        item, _ = open_work_item(
            session,
            kind="copay_changed",
            entity="appointment",
            entity_id=9,
            summary="s",
            role="front_desk",
        )
        session.flush()
        close_work_item(
            session, item.id, by="staff:2", status=WorkStatus.DISMISSED, note="told at booking"
        )
    with transaction(factory) as session:
        recurrence, created = open_work_item(
            session,
            kind="copay_changed",
            entity="appointment",
            entity_id=9,
            summary="s",
            role="front_desk",
        )
    with factory() as session:
        assert created is True
        assert session.get_one(WorkItem, item.id).status is WorkStatus.DISMISSED
        assert session.get_one(WorkItem, recurrence.id).status is WorkStatus.OPEN


def test_closing_a_closed_item_or_dismissing_without_a_reason_is_refused(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        item, _ = open_work_item(
            session, kind="mail_triage", entity="mail_message", entity_id=1, summary="s", role="x"
        )
        with pytest.raises(LedgerError, match="needs a reason"):
            close_work_item(session, item.id, by="staff:1", status=WorkStatus.DISMISSED)
        close_work_item(session, item.id, by="staff:1")
        with pytest.raises(LedgerError, match="already closed"):
            close_work_item(session, item.id, by="staff:1")
        with pytest.raises(LedgerError, match="does not exist"):
            close_work_item(session, item.id + 1, by="staff:1")


def test_a_database_error_names_no_patient_data(factory: sessionmaker[Session]) -> None:
    from datetime import date

    import pytest
    from sqlalchemy.exc import IntegrityError

    from office.models import Patient

    def patient() -> Patient:
        return Patient(
            mrn="MRN-SECRET-77",
            first_name="Zelda",
            last_name="Quimby",
            date_of_birth=date(1970, 5, 6),
            sex="F",
        )

    with transaction(factory) as session:
        session.add(patient())
    with pytest.raises(IntegrityError) as raised, transaction(factory) as session:
        session.add(patient())
    text = str(raised.value)
    for value in ("MRN-SECRET-77", "Zelda", "Quimby", "1970-05-06"):
        assert value not in text


def test_many_work_items_open_at_once_with_the_same_rules(factory: sessionmaker[Session]) -> None:
    def need(kind: str, n: int, summary: str = "s") -> WorkNeeded:
        return WorkNeeded(kind, "appointment", n, summary, "front_desk", detail={"n": n})

    with transaction(factory) as session:
        first = open_work_items(session, [need("a", 1), need("a", 2), need("a", 3)])
    assert [created for _id, created in first.values()] == [True, True, True]
    with transaction(factory) as session:
        close_work_item(session, first["a:appointment:2"][0], by="staff:1")
        close_work_item(
            session, first["a:appointment:3"][0], by="staff:1", status=DISMISSED, note="n/a"
        )
    with transaction(factory) as session:
        again = open_work_items(
            session, [need("a", n, "again") for n in (1, 2, 3)] + [need("b", 1)]
        )
    assert {key: created for key, (_id, created) in again.items()} == {
        "a:appointment:1": False,
        "a:appointment:2": True,  # done, and the problem came back: a new item
        "a:appointment:3": True,  # dismissed, and it came back: a new item too
        "b:appointment:1": True,
    }
    assert again["a:appointment:1"][0] == first["a:appointment:1"][0]
    with factory() as session:
        items = session.scalars(select(WorkItem).order_by(WorkItem.id)).all()
    assert [(i.dedupe_key, i.status) for i in items] == [
        ("a:appointment:1", WorkStatus.OPEN),
        ("a:appointment:2", WorkStatus.DONE),
        ("a:appointment:3", DISMISSED),
        ("a:appointment:2", WorkStatus.OPEN),
        ("a:appointment:3", WorkStatus.OPEN),
        ("b:appointment:1", WorkStatus.OPEN),
    ]
    assert {i.summary for i in items if i.status is WorkStatus.OPEN and i.kind == "a"} == {"again"}


def test_two_open_items_for_one_problem_are_refused_by_the_database(
    factory: sessionmaker[Session],
) -> None:
    """The partial unique index: one open row per key; closed rows may share it."""
    from sqlalchemy.exc import IntegrityError

    row = {
        "kind": "a",
        "entity": "patient",
        "entity_id": 1,
        "dedupe_key": "a:patient:1",
        "summary": "s",
        "role": "front_desk",
        "detail": {},
    }
    with transaction(factory) as session:
        session.add(WorkItem(**row, status=WorkStatus.DONE))
        session.add(WorkItem(**row, status=WorkStatus.DISMISSED))
        session.add(WorkItem(**row, status=WorkStatus.OPEN))
    with pytest.raises(IntegrityError), transaction(factory) as session:
        session.add(WorkItem(**row, status=WorkStatus.OPEN))


def test_an_item_another_writer_opened_meanwhile_is_refreshed(
    factory: sessionmaker[Session], backend: str
) -> None:
    """Between our read and our insert another transaction commits the same key."""
    if backend == "sqlite":
        pytest.skip("SQLite takes the write lock at BEGIN: no other writer can step in")
    rival = WorkNeeded("a", "appointment", 7, "rival", "front_desk")
    mine = WorkNeeded("a", "appointment", 7, "mine", "front_desk")
    with transaction(factory) as session:
        stepped_in: list[bool] = []

        @event.listens_for(session, "do_orm_execute")
        def step_in(state: ORMExecuteState) -> None:
            if state.is_insert and not stepped_in:
                stepped_in.append(True)
                with transaction(factory) as other:
                    open_work_items(other, [rival])

        [(item_id, created)] = open_work_items(session, [mine]).values()
    assert stepped_in
    assert created is False
    with factory() as session:
        [item] = session.scalars(select(WorkItem)).all()
    assert (item.id, item.summary) == (item_id, "mine")


def test_many_audit_entries_are_written_whole_and_in_order(
    factory: sessionmaker[Session],
) -> None:
    """Two full statements' worth and a part (SQLite), or one COPY (PostgreSQL)."""
    at = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    changes = [
        RecordChanges(
            "patients",
            n,
            {f"field{k}": (None if k % 3 else f"was {k}", n * 100 + k) for k in range(19)},
            "t",
            f"s{n}",
        )
        for n in range(1, 14)
    ]
    with transaction(factory) as session:
        assert record_changes(session, changes, at=at) == 13 * 19
    with factory() as session:
        rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [
        (r.entity, r.entity_id, r.field, r.before, r.after, r.actor, r.source) for r in rows
    ] == [
        (c.entity, c.entity_id, field, before, str(after), c.actor, c.source)
        for c in changes
        for field, (before, after) in c.fields.items()
    ]
    assert {r.at for r in rows} == {at}
