"""The outbox lets one claimant send; the work queue keeps one item per record and kind."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.ledgers import (
    claim_outbox,
    close_work_item,
    enqueue_outbox,
    finish_outbox,
    open_work_item,
)
from office.models import Channel, OutboxItem, OutboxStatus, WorkItem, WorkStatus


def test_outbox_key_is_unique_and_only_one_claim_wins(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        item, created = enqueue_outbox(
            session,
            key="appt:1:v1:reminder:24h:email",
            channel=Channel.EMAIL,
            kind="reminder",
            recipient="a@example.test",
        )
        again, created_again = enqueue_outbox(
            session,
            key="appt:1:v1:reminder:24h:email",
            channel=Channel.EMAIL,
            kind="reminder",
            recipient="a@example.test",
        )
        session.flush()
        item_id = item.id
    assert (created, created_again, again.id) == (True, False, item_id)
    with transaction(factory) as session:
        assert claim_outbox(session, item_id) is True
    with transaction(factory) as session:
        assert claim_outbox(session, item_id) is False
        finish_outbox(session, item_id, OutboxStatus.SENT, provider_message_id="<m@x>")
    with factory() as session:
        row = session.get_one(OutboxItem, item_id)
        assert (row.status, row.attempts, row.provider_message_id) == (
            OutboxStatus.SENT,
            1,
            "<m@x>",
        )
        assert row.sent_at is not None


def test_work_item_is_refreshed_not_duplicated(factory: sessionmaker[Session]) -> None:
    for summary in ("first", "second"):
        with transaction(factory) as session:
            open_work_item(
                session,
                kind="not_active",
                entity="appointments",
                entity_id=5,
                summary=summary,
                role="front_desk",
            )
    with factory() as session:
        [item] = session.scalars(select(WorkItem)).all()
        assert item.summary == "second"
    with transaction(factory) as session:
        close_work_item(session, item.id, by="staff:1")
    with transaction(factory) as session:
        _, created = open_work_item(
            session,
            kind="not_active",
            entity="appointments",
            entity_id=5,
            summary="again",
            role="front_desk",
        )
    with factory() as session:
        assert created is False
        assert session.scalar(select(func.count()).select_from(WorkItem)) == 1
        assert session.get_one(WorkItem, item.id).status is WorkStatus.OPEN


def test_dismissed_work_item_stays_dismissed(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        item, _ = open_work_item(
            session,
            kind="copay_changed",
            entity="appointments",
            entity_id=9,
            summary="s",
            role="front_desk",
        )
        session.flush()
        close_work_item(session, item.id, by="staff:2", status=WorkStatus.DISMISSED)
    with transaction(factory) as session:
        open_work_item(
            session,
            kind="copay_changed",
            entity="appointments",
            entity_id=9,
            summary="s",
            role="front_desk",
        )
    with factory() as session:
        assert session.get_one(WorkItem, item.id).status is WorkStatus.DISMISSED


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
