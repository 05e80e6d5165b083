"""Migration 0005: existing items get priorities, patients and visits; patient-level ones fold."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine, select

from office.db import make_engine
from office.migrate import alembic_config, upgrade
from office.models import UTCDateTime

WHEN = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)

# The tables as 0004 left them.
_items = sa.table(
    "work_items",
    *(sa.column(n) for n in ("id", "kind", "entity", "entity_id", "dedupe_key", "summary")),
    sa.column("role"),
    sa.column("status"),
    sa.column("due_at", UTCDateTime()),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
    sa.column("detail", sa.JSON),
)
_practice = sa.table("practices", sa.column("id"), sa.column("name"))
_location = sa.table(
    "locations",
    sa.column("id"),
    sa.column("practice_id"),
    sa.column("name"),
    sa.column("timezone"),
    sa.column("office_hours", sa.JSON),
)
_provider = sa.table(
    "providers",
    sa.column("id"),
    sa.column("practice_id"),
    sa.column("npi"),
    sa.column("first_name"),
    sa.column("last_name"),
    sa.column("active"),
)
_type = sa.table(
    "appointment_types",
    sa.column("id"),
    sa.column("code"),
    sa.column("name"),
    sa.column("duration_minutes"),
    sa.column("service_type_code"),
    sa.column("sensitive"),
    sa.column("stop_on_confirm"),
    sa.column("send_confirmation"),
    sa.column("send_change_notices"),
)
_patient = sa.table(
    "patients",
    sa.column("id"),
    sa.column("mrn"),
    sa.column("first_name"),
    sa.column("last_name"),
    sa.column("date_of_birth", sa.Date),
    sa.column("sex"),
    sa.column("language"),
    sa.column("confidential_communications"),
    sa.column("email_undeliverable"),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
    sa.column("version"),
)
_visit = sa.table(
    "appointments",
    sa.column("id"),
    sa.column("patient_id"),
    sa.column("provider_id"),
    sa.column("location_id"),
    sa.column("appointment_type_id"),
    sa.column("start_at", UTCDateTime()),
    sa.column("duration_minutes"),
    sa.column("status"),
    sa.column("booked_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
    sa.column("version"),
)


def _migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def _item(
    n: int, kind: str, entity: str, entity_id: int, status: str = "open"
) -> dict[str, object]:
    return {
        "id": n,
        "kind": kind,
        "entity": entity,
        "entity_id": entity_id,
        "dedupe_key": f"{kind}:{entity}:{entity_id}",
        "summary": "s",
        "role": "front_desk",
        "status": status,
        "due_at": WHEN,
        "created_at": WHEN,
        "updated_at": WHEN,
        "detail": {},
    }


@pytest.fixture
def at_0004(db_url: str) -> Iterator[Engine]:
    """A database built up to 0004, as one from before the work queue's migration."""
    bound = make_engine(db_url)
    upgrade(bound, "0004")
    yield bound
    bound.dispose()


def test_0005_folds_patient_level_items_and_lists_their_visits(at_0004: Engine) -> None:
    engine = at_0004
    with engine.begin() as db:
        db.execute(_practice.insert(), {"id": 1, "name": "P"})
        db.execute(
            _location.insert(),
            {"id": 1, "practice_id": 1, "name": "L", "timezone": "UTC", "office_hours": {}},
        )
        db.execute(
            _provider.insert(),
            {
                "id": 1,
                "practice_id": 1,
                "npi": "1",
                "first_name": "A",
                "last_name": "B",
                "active": True,
            },
        )
        db.execute(
            _type.insert(),
            {
                "id": 1,
                "code": "c",
                "name": "n",
                "duration_minutes": 20,
                "service_type_code": "30",
                "sensitive": False,
                "stop_on_confirm": True,
                "send_confirmation": True,
                "send_change_notices": True,
            },
        )
        for patient in (1, 2):
            db.execute(
                _patient.insert(),
                {
                    "id": patient,
                    "mrn": f"M{patient}",
                    "first_name": "A",
                    "last_name": "B",
                    "date_of_birth": date(1980, 1, 1),
                    "sex": "F",
                    "language": "en",
                    "confidential_communications": False,
                    "email_undeliverable": False,
                    "created_at": WHEN,
                    "updated_at": WHEN,
                    "version": 1,
                },
            )
        for visit, patient in ((10, 1), (11, 1), (12, 2)):
            db.execute(
                _visit.insert(),
                {
                    "id": visit,
                    "patient_id": patient,
                    "provider_id": 1,
                    "location_id": 1,
                    "appointment_type_id": 1,
                    "start_at": WHEN,
                    "duration_minutes": 20,
                    "status": "booked",
                    "booked_at": WHEN,
                    "updated_at": WHEN,
                    "version": 1,
                },
            )
        db.execute(
            _items.insert(),
            [
                _item(1, "not_active", "appointment", 10),
                _item(2, "not_active", "appointment", 11),
                _item(3, "not_active", "appointment", 12, status="dismissed"),
                _item(4, "authorization_required", "appointment", 11),
                _item(5, "plan_ending", "appointment", 12),
                _item(6, "email_bounced", "patient", 2),
                _item(7, "mail_triage", "mail_message", 99),
            ],
        )
    _migrate(engine, "0005")
    items = sa.table(
        "work_items",
        *(sa.column(n) for n in ("id", "kind", "entity", "entity_id", "dedupe_key", "priority")),
        sa.column("patient_id"),
        sa.column("status"),
        sa.column("close_reason"),
        sa.column("close_note"),
    )
    links = sa.table("work_item_visits", sa.column("work_item_id"), sa.column("appointment_id"))
    with engine.connect() as db:
        rows = {r.id: r for r in db.execute(select(items))}
        listed = sorted(tuple(r) for r in db.execute(select(links)))
    folded = rows[1]
    assert (folded.entity, folded.entity_id, folded.dedupe_key, folded.priority) == (
        "patient",
        1,
        "not_active:patient:1",
        "blocker",
    )
    assert (rows[2].status, rows[2].close_reason, rows[2].close_note) == (
        "done",
        "merged",
        "merged into item 1",
    )
    assert rows[3].status == "dismissed"  # history stays as it was
    assert (rows[4].entity, rows[4].patient_id, rows[4].priority) == ("appointment", 1, "blocker")
    assert (rows[5].priority, rows[6].patient_id, rows[7].patient_id) == ("info", 2, None)
    assert listed == [(1, 10), (1, 11), (2, 11), (3, 12), (4, 11), (5, 12)]


def test_0005_downgrade_keeps_closed_items_under_keys_of_their_own(at_0004: Engine) -> None:
    """After 0005 a problem back after its item closed is a new item under the same key."""
    engine = at_0004
    _migrate(engine, "0005")
    with engine.begin() as db:
        db.execute(
            _items.insert(),
            [
                _item(1, "not_active", "appointment", 12, status="dismissed"),
                _item(2, "not_active", "appointment", 12, status="done"),
                _item(3, "not_active", "appointment", 12),
                _item(4, "copay_changed", "appointment", 12, status="done"),
            ],
        )
    _migrate(engine, "0004", down=True)
    with engine.connect() as db:
        keys = dict(db.execute(select(_items.c.id, _items.c.dedupe_key)).tuples().all())
    assert keys == {
        1: "not_active:appointment:12#1",
        2: "not_active:appointment:12#2",
        3: "not_active:appointment:12",
        4: "copay_changed:appointment:12",
    }
