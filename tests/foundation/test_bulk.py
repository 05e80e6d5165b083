"""Many rows at once: stored exactly as `insert(table)` stores them, every column type bound
the same way, however many statements it takes (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session, sessionmaker

from office.bulk import SQLITE_PARAMETERS, insert_many
from office.db import transaction
from office.models import Channel, Coverage, Patient, Payer

PATIENTS = cast(Table, Patient.__table__)
COVERAGES = cast(Table, Coverage.__table__)
NOW = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)


def patient(i: int, prefix: str) -> dict[str, Any]:
    return {
        "mrn": f"{prefix}{i:05d}",
        "first_name": "Ana" if i % 2 else "Zoë",
        "middle_name": None,
        "last_name": f"Lake{i}",
        "date_of_birth": date(1950, 1, 1) + timedelta(days=i),
        "sex": "FMU"[i % 3],
        "email": f"p{i}@example.org",
        "phone": None,
        "language": "en",
        "confidential_communications": i % 2 == 0,
        "confidential_channel": Channel.SMS if i % 2 else None,
        "email_undeliverable": False,
        "version": 1,
        "created_at": NOW,
        "updated_at": NOW + timedelta(seconds=i),
    }


def stored(session: Session, prefix: str) -> list[tuple[Any, ...]]:
    names = [name for name in patient(0, prefix) if name != "mrn"]
    rows = session.execute(
        select(*(PATIENTS.c[name] for name in names), COVERAGES.c.copay_on_file)
        .join(COVERAGES, COVERAGES.c.patient_id == PATIENTS.c.id)
        .where(PATIENTS.c.mrn.startswith(prefix))
        .order_by(PATIENTS.c.mrn)
    )
    return [tuple(row) for row in rows]


def test_rows_are_stored_as_insert_stores_them(factory: sessionmaker[Session]) -> None:
    n = 2 * (SQLITE_PARAMETERS // len(patient(0, "A"))) + 3  # two full statements and a part
    with transaction(factory) as session:
        payer = Payer(name="Aetna", payer_code="60054")
        session.add(payer)
        session.flush()
        for prefix, write in (
            ("A", lambda table, rows: insert_many(session, table, rows)),
            ("B", lambda table, rows: session.execute(insert(table), rows)),
        ):
            rows = [patient(i, prefix) for i in range(n)]
            write(PATIENTS, rows)
            ids = dict(session.execute(select(PATIENTS.c.mrn, PATIENTS.c.id)).tuples().all())
            coverages = [
                {
                    "patient_id": ids[row["mrn"]],
                    "payer_id": payer.id,
                    "member_id": f"W{i}",
                    "rank": 1,
                    "relationship_code": "18",
                    "effective_from": date(2026, 1, 1),
                    "copay_on_file": Decimal("25.50") if i % 2 else None,
                    "active": True,
                    "version": 1,
                }
                for i, row in enumerate(rows)
            ]
            write(COVERAGES, coverages)
    with factory() as session:
        mine, theirs = stored(session, "A"), stored(session, "B")
    assert len(mine) == n
    assert mine == theirs


def test_rows_leaving_out_a_column_with_a_default_are_refused(
    factory: sessionmaker[Session],
) -> None:
    row = patient(1, "C")
    del row["language"]
    with transaction(factory) as session, pytest.raises(ValueError, match="language"):
        insert_many(session, PATIENTS, [row])
