"""Stored payloads are acted on by their source's handler; a rejection keeps the payload and
its reason, and a replay after the fix processes it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import app
from flows import runtime
from office.bookings import EVENT_TIME_FIELD
from office.db import transaction
from office.intake import due_for_sweep, process_item
from office.ledgers import replay, store_inbound
from office.models import (
    Appointment,
    AppointmentStatus,
    AuditEntry,
    Followup,
    InboxItem,
    InboxStatus,
    Patient,
    Provider,
    utcnow,
)
from office.settings import Settings
from tests.foundation.helpers import EVENT_AT, NOW, booking, seed_small


@pytest.fixture
def seeded(factory: sessionmaker[Session], tmp_path: Path) -> sessionmaker[Session]:
    seed_small(factory, tmp_path)
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
        assert [(a.field, a.after, a.source) for a in audit] == [
            ("status", "booked", f"inbox:{item_id}"),
            (EVENT_TIME_FIELD, EVENT_AT.isoformat(), f"inbox:{item_id}"),
        ]


def test_a_new_appointment_arriving_confirmed_is_checked_like_a_booked_one(
    seeded: sessionmaker[Session],
) -> None:
    provider = npi(seeded)
    first = store(seeded, booking(provider_npi=provider, event="confirmed"), "c1")
    result = process_item(seeded, first, now=NOW)
    assert result.outcome is not None
    assert result.outcome.followups == ("verify_appointment", "appointment_notices")
    with seeded() as session:
        recorded = session.scalars(select(Followup).where(Followup.inbox_id == first)).all()
        assert sorted(row.name for row in recorded) == ["appointment_notices", "verify_appointment"]
    assert appointment_status(seeded, "PM-1") is AppointmentStatus.CONFIRMED
    # Confirming a visit already known changes nothing to check: the notice only.
    later = (EVENT_AT + timedelta(hours=1)).isoformat()
    again = booking(provider_npi=provider, event="confirmed", occurred_at=later)
    repeat = process_item(seeded, store(seeded, again, "c2"), now=NOW)
    assert repeat.outcome is not None
    assert repeat.outcome.followups == ("appointment_notices",)


def test_reschedule_changes_fields_bumps_version_and_audits_each(
    seeded: sessionmaker[Session],
) -> None:
    process_item(seeded, store(seeded, booking(provider_npi=npi(seeded)), "a"), now=NOW)
    later = (NOW + timedelta(days=3)).isoformat()
    moved_at = (EVENT_AT + timedelta(hours=1)).isoformat()
    moved = booking(
        provider_npi=npi(seeded), event="rescheduled", start=later, occurred_at=moved_at
    )
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
        assert changes == ["status", EVENT_TIME_FIELD, "start_at", EVENT_TIME_FIELD]


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


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")  # the replay starts the booking's follow-ups
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
    monkeypatch.setattr(runtime, "_override", None)  # the command installs its own
    result = CliRunner().invoke(app, ["inbox", "replay", str(item_id)])
    assert result.exit_code == 0, result.output
    assert f"inbox item {item_id} processed" in result.output
    assert "appointment_notices" in result.output
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


STALE = "booking event is older than the last one applied to its appointment"


def appointment_status(factory: sessionmaker[Session], external_id: str) -> AppointmentStatus:
    with factory() as session:
        return session.scalars(
            select(Appointment.status).where(Appointment.external_id == external_id)
        ).one()


@pytest.mark.parametrize("cancelled_first", [False, True], ids=["in-order", "out-of-order"])
def test_a_replayed_booked_never_undoes_a_later_cancelled(
    seeded: sessionmaker[Session], cancelled_first: bool
) -> None:
    provider = npi(seeded)
    booked = booking(provider_npi=provider)
    later = (EVENT_AT + timedelta(minutes=1)).isoformat()
    cancelled = booking(provider_npi=provider, event="cancelled", occurred_at=later)
    arrivals = (
        [(cancelled, "c1"), (booked, "b1")]
        if cancelled_first
        else [(booked, "b1"), (cancelled, "c1")]
    )
    results = [process_item(seeded, store(seeded, body, key), now=NOW) for body, key in arrivals]
    # The booked, delivered again under another key (a retry, or a replay by hand).
    results.append(process_item(seeded, store(seeded, booked, "b2"), now=NOW))
    assert [r.reason for r in results] == (
        [None, STALE, STALE] if cancelled_first else [None, None, STALE]
    )
    assert appointment_status(seeded, "PM-1") is AppointmentStatus.CANCELLED


def test_an_event_as_recent_as_the_last_applies(seeded: sessionmaker[Session]) -> None:
    provider = npi(seeded)
    process_item(seeded, store(seeded, booking(provider_npi=provider), "b1"), now=NOW)
    confirmed = booking(provider_npi=provider, event="confirmed")
    assert process_item(seeded, store(seeded, confirmed, "c1"), now=NOW).reason is None
    assert appointment_status(seeded, "PM-1") is AppointmentStatus.CONFIRMED


@pytest.mark.parametrize(
    ("ahead", "reason"),
    [(timedelta(minutes=4), None), (timedelta(minutes=6), "booking occurred_at is in the future")],
)
def test_an_event_time_beyond_the_clock_skew_is_refused(
    seeded: sessionmaker[Session], ahead: timedelta, reason: str | None
) -> None:
    """A time far ahead would make every real event after it look older."""
    body = booking(provider_npi=npi(seeded), occurred_at=(NOW + ahead).isoformat())
    assert process_item(seeded, store(seeded, body), now=NOW).reason == reason


def test_an_event_without_its_time_is_invalid(seeded: sessionmaker[Session]) -> None:
    body = json.loads(booking(provider_npi=npi(seeded)))
    del body["occurred_at"]
    result = process_item(seeded, store(seeded, json.dumps(body).encode()), now=NOW)
    assert result.reason == "invalid booking: occurred_at"


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
