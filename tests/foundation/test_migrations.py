"""Migrations build the schema from empty on each backend, and agree with the models."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from office.db import make_engine, make_sessionmaker, transaction
from office.migrate import alembic_config, current_revision, head_revision, upgrade
from office.models import (
    Base,
    Coverage,
    EligibilityCheck,
    Patient,
    Payer,
    UTCDateTime,
    WorkItem,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
# The tables as 0002 left them, for rows written before 0003.
_checks = sa.table("eligibility_checks", sa.column("result", sa.JSON))
_work_items = sa.table(
    "work_items",
    *(sa.column(name) for name in ("kind", "entity", "entity_id", "dedupe_key", "summary")),
    sa.column("role"),
    sa.column("status"),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
    sa.column("detail", sa.JSON),
)


def test_empty_to_head_creates_every_table(db_url: str) -> None:
    engine = make_engine(db_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_upgrade_twice_is_harmless(engine: Engine) -> None:
    upgrade(engine)
    assert current_revision(engine) == head_revision()


# --- 0003: payer_code, singular work-item entities ------------------------------------------

# (kind, entity as 0002 code wrote it, entity from 0003 on)
ENTITIES = [
    ("reminder_no_channel", "appointments", "appointment"),
    ("email_undeliverable", "patients", "patient"),
    ("template_invalid", "appointment_types", "appointment_type"),
    ("delivery_unknown", "outbox", "outbox_item"),
    ("not_active", "appointment", "appointment"),
]


def _to(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        if revision == "0002":
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)


def _payer_check(factory: sessionmaker[Session]) -> int:
    """A payer, a patient with its coverage, and one answered check naming the payer code."""
    with transaction(factory) as session:
        payer = Payer(name="Plan", payer_code="60054", adapter="x12")
        patient = Patient(
            mrn="M1", first_name="A", last_name="B", date_of_birth=date(1980, 1, 2), sex="F"
        )
        session.add_all([payer, patient])
        session.flush()
        coverage = Coverage(patient_id=patient.id, payer_id=payer.id, member_id="X1")
        session.add(coverage)
        session.flush()
        check = EligibilityCheck(
            trace="T1",
            coverage_id=coverage.id,
            patient_id=patient.id,
            payer_id=payer.id,
            date_of_service=date(2026, 12, 1),
            service_type="30",
            result={"status": "active", "payer_code": "60054", "member_id": "X1"},
        )
        session.add(check)
        session.flush()
        return check.id


def test_0003_renames_the_payer_code_and_makes_entities_singular(engine: Engine) -> None:
    check_id = _payer_check(make_sessionmaker(engine))
    _to(engine, "0002")
    with engine.begin() as connection:
        assert connection.execute(text("SELECT payer_id FROM payers")).scalar_one() == "60054"
        [result] = connection.execute(select(_checks.c.result)).scalars()
        assert result == {"status": "active", "payer_id": "60054", "member_id": "X1"}
        for n, (kind, entity, _singular) in enumerate(ENTITIES, start=1):
            connection.execute(
                _work_items.insert().values(
                    kind=kind,
                    entity=entity,
                    entity_id=n,
                    dedupe_key=f"{kind}:{entity}:{n}",
                    summary="s",
                    role="front_desk",
                    status="open",
                    detail={},
                    created_at=NOW,
                    updated_at=NOW,
                )
            )

    _to(engine, "head")
    with make_sessionmaker(engine)() as session:
        assert session.scalars(select(Payer.payer_code)).one() == "60054"
        check = session.get_one(EligibilityCheck, check_id)
        assert check.result == {"status": "active", "payer_code": "60054", "member_id": "X1"}
        items = session.scalars(select(WorkItem).order_by(WorkItem.entity_id)).all()
        assert [(i.entity, i.dedupe_key) for i in items] == [
            (singular, f"{kind}:{singular}:{n}")
            for n, (kind, _entity, singular) in enumerate(ENTITIES, start=1)
        ]
        # The coverage still points at its payer, the unique code is still enforced.
        assert session.scalars(select(Coverage.payer_id)).one() == check.payer_id
    with pytest.raises(IntegrityError), transaction(make_sessionmaker(engine)) as session:
        session.add(Payer(name="Again", payer_code="60054"))


def test_0003_refuses_to_drop_a_payer_still_covered(engine: Engine) -> None:
    """The SQLite rebuild of `payers` keeps every foreign key checked."""
    _payer_check(make_sessionmaker(engine))
    _to(engine, "0002")
    _to(engine, "head")
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("DELETE FROM payers"))
