"""Stored payloads are acted on by their source's handler; a rejection keeps the payload and
its reason, and a replay after the fix processes it."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import app
from office.db import transaction
from office.intake import due_for_sweep, process_item
from office.ledgers import replay, store_inbound
from office.models import (
    Appointment,
    AppointmentStatus,
    AuditEntry,
    InboxItem,
    InboxStatus,
    Patient,
    Provider,
    utcnow,
)
from office.settings import Settings
from tests.foundation.helpers import NOW, booking, seed_small


@pytest.fixture
def seeded(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    with transaction(factory) as session:
        seed_small(session)
    return factory


def store(factory: sessionmaker[Session], body: bytes, key: str = "k") -> int:
    with transaction(factory) as session:
        item, _ = store_inbound(session, source="webhook:bookings", key=key, body=body)
        session.flush()
        return item.id


def npi(factory: sessionmaker[Session]) -> str:
    with factory() as session:
        return session.scalars(select(Provider.npi)).first() or ""


def test_booking_creates_an_appointment_with_audit(seeded: sessionmaker[Session]) -> None:
    item_id = store(seeded, booking(provider_npi=npi(seeded)))
    result = process_item(seeded, item_id, now=NOW)
    assert result.status is InboxStatus.PROCESSED
    assert result.outcome is not None
    assert result.outcome.followups == ("verify_appointment", "appointment_notices")
    with seeded() as session:
        appointment = session.scalars(
            select(Appointment).where(Appointment.external_id == "PM-1")
        ).one()
        assert appointment.start_at == NOW + timedelta(days=2)
        assert appointment.status is AppointmentStatus.BOOKED
        item = session.get_one(InboxItem, item_id)
        assert (item.status, item.attempts) == (InboxStatus.PROCESSED, 1)
        audit = session.scalars(
            select(AuditEntry).where(AuditEntry.entity_id == appointment.id)
        ).all()
        assert [(a.field, a.source) for a in audit] == [("status", f"inbox:{item_id}")]


def test_reschedule_changes_fields_bumps_version_and_audits_each(
    seeded: sessionmaker[Session],
) -> None:
    process_item(seeded, store(seeded, booking(provider_npi=npi(seeded)), "a"), now=NOW)
    later = (NOW + timedelta(days=3)).isoformat()
    moved = booking(provider_npi=npi(seeded), event="rescheduled", start=later)
    process_item(seeded, store(seeded, moved, "b"), now=NOW)
    with seeded() as session:
        appointment = session.scalars(
            select(Appointment).where(Appointment.external_id == "PM-1")
        ).one()
        assert appointment.version == 2
        changes = session.scalars(
            select(AuditEntry.field).where(
                AuditEntry.entity == "appointments", AuditEntry.entity_id == appointment.id
            )
        ).all()
        assert changes == ["status", "start_at"]


def test_invalid_payload_is_rejected_with_field_names_not_values(
    seeded: sessionmaker[Session],
) -> None:
    body = json.dumps({"external_id": "PM-2", "patient_mrn": "MRN-SECRET-99"}).encode()
    item_id = store(seeded, body)
    result = process_item(seeded, item_id)
    assert result.status is InboxStatus.REJECTED
    assert result.reason is not None
    assert "provider_npi" in result.reason
    assert "MRN-SECRET-99" not in result.reason
    with seeded() as session:
        item = session.get_one(InboxItem, item_id)
        assert item.status is InboxStatus.REJECTED
        assert item.body == body  # nothing lost


def test_unknown_patient_rejected_then_replayed_after_the_fix(
    seeded: sessionmaker[Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    item_id = store(seeded, booking(provider_npi=npi(seeded), patient_mrn="MRN-NEW-1"))
    assert process_item(seeded, item_id).reason == "unknown patient_mrn"
    with transaction(seeded) as session:
        patient = session.scalars(select(Patient)).first()
        assert patient is not None
        patient.mrn = "MRN-NEW-1"

    monkeypatch.setenv("OFFICE_DATABASE_URL", settings.db_url)
    monkeypatch.setenv("OFFICE_HOME", str(settings.home))
    result = CliRunner().invoke(app, ["inbox", "replay", str(item_id)])
    assert result.exit_code == 0, result.output
    assert f"inbox item {item_id} processed" in result.output
    with seeded() as session:
        item = session.get_one(InboxItem, item_id)
        assert (item.status, item.attempts) == (InboxStatus.PROCESSED, 2)


def test_unknown_source_is_kept_for_later(seeded: sessionmaker[Session]) -> None:
    with transaction(seeded) as session:
        item, _ = store_inbound(session, source="webhook:faxes", key="f1", body=b"%PDF")
        session.flush()
        item_id = item.id
    result = process_item(seeded, item_id)
    assert result.reason == "no handler for source 'faxes'"


def test_processed_items_are_not_processed_twice(seeded: sessionmaker[Session]) -> None:
    item_id = store(seeded, booking(provider_npi=npi(seeded)))
    process_item(seeded, item_id)
    again = process_item(seeded, item_id)
    assert again.status is InboxStatus.PROCESSED
    with seeded() as session:
        assert session.get_one(InboxItem, item_id).attempts == 1


def test_replay_of_missing_item_is_a_clear_error(seeded: sessionmaker[Session]) -> None:
    with pytest.raises(ValueError, match="inbox item 999 does not exist"), transaction(seeded) as s:
        replay(s, 999)


def test_sweeper_finds_only_stale_untried_pending_items(seeded: sessionmaker[Session]) -> None:
    fresh = store(seeded, b"{}", "fresh")
    with transaction(seeded) as session:
        item = session.get_one(InboxItem, fresh)
        item.received_at = NOW - timedelta(minutes=5)
        tried, _ = store_inbound(session, source="webhook:bookings", key="tried", body=b"{}")
        tried.received_at = NOW - timedelta(minutes=5)
        tried.last_attempt_at = NOW - timedelta(minutes=2)
        done, _ = store_inbound(session, source="webhook:bookings", key="done", body=b"{}")
        done.received_at = NOW - timedelta(hours=1)
        done.status = InboxStatus.PROCESSED
    with seeded() as session:
        assert due_for_sweep(session, now=NOW) == [fresh]
        assert due_for_sweep(session, now=NOW + timedelta(minutes=20)) == [fresh, tried.id]


def test_sweeper_hands_over_what_is_pending_and_survives_prefect_down(
    seeded: sessionmaker[Session],
) -> None:
    import asyncio

    from app.serve import sweep_once

    item_id = store(seeded, b"{}", "stale")
    with transaction(seeded) as session:
        session.get_one(InboxItem, item_id).received_at = utcnow() - timedelta(hours=1)
    handed: list[tuple[int, str]] = []

    async def up(inbox_id: int, key: str) -> str:
        handed.append((inbox_id, key))
        return "run"

    async def down(inbox_id: int, key: str) -> str:
        raise ConnectionError("no API")

    assert asyncio.run(sweep_once(seeded, down)) == 0
    with seeded() as session:
        assert session.get_one(InboxItem, item_id).status is InboxStatus.PENDING
    assert asyncio.run(sweep_once(seeded, up)) == 1
    assert handed[0][0] == item_id
    assert handed[0][1].startswith(f"inbox-{item_id}-0-sweep-")
