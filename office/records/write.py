"""Writing what a call planned: a few statements per kind of row, whatever the count.

New patients and coverages are inserted with `RETURNING` (their ids go to the audit and
the review items); changed rows are updated in groups that change the same columns, each
with its version raised; one audit entry per changed field (`record_changes`); review
items are written with their work items.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from office.bulk import insert_many
from office.clock import chunks
from office.ledgers.audit import record_changes
from office.ledgers.work import WorkNeeded, open_work_items
from office.models import (
    Appointment,
    AppointmentStatus,
    Channel,
    Consent,
    Coverage,
    Patient,
    PatientIdentifier,
    RecordReview,
)
from office.records.plan import Buffer, ReviewDraft
from office.records.store import COVERAGE_FIELDS, PatientRow
from office.records.updates import PATIENT_FIELDS

__all__ = ["REVIEW_ENTITY", "write_buffer"]

_PATIENTS = cast(Table, Patient.__table__)
_COVERAGES = cast(Table, Coverage.__table__)

REVIEW_ENTITY = "record_review"  # the work items' subject for a review
_UPCOMING = (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED)
_SUMMARIES = {
    "possible_duplicate": "Incoming record may be a patient already on file",
    "record_review": "Patient-submitted change to a reviewed field",
    "stale_update": "Update older than the record it would change",
    "merge_request": "Sending system merged two patient records",
}


def write_buffer(session: Session, buffer: Buffer, *, now: datetime) -> dict[int, list[int]]:
    """Write everything buffered; returns, per patient whose coverage changed, the
    upcoming visits to check again."""
    _insert_patients(session, buffer.new_patients, now)
    _update_patients(session, list(buffer.patients.values()), now)
    _insert_coverages(session, buffer)
    _update_coverages(session, buffer)
    if buffer.identifiers:
        session.execute(
            insert(PatientIdentifier),
            [
                {"patient_id": row.id, "system": system, "value": value, "created_at": now}
                for row, system, value in buffer.identifiers
            ],
        )
    _write_consents(session, buffer, now)
    # Every target has its id by now (inserted above, or loaded); one without would fail
    # the audit's NOT NULL entity_id, never be stored without its record.
    entries: list[tuple[str, Any, dict[str, tuple[Any, Any]], str, str]] = [
        (entity, target.id, fields, actor, source)
        for target, entity, fields, actor, source in buffer.audit
    ]
    record_changes(session, entries, at=now)
    _write_reviews(session, buffer.reviews, now)
    return _upcoming(session, [r.id for r in buffer.reverify.values() if r.id is not None], now)


def _insert_patients(session: Session, rows: Sequence[PatientRow], now: datetime) -> None:
    if not rows:
        return
    values = [
        {
            **{name: row.values.get(name) for name in ("mrn", *PATIENT_FIELDS)},
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "confidential_communications": False,
            "email_undeliverable": False,
        }
        for row in rows
    ]
    for row, entry, new_id in zip(
        rows, values, _new_ids(session, _PATIENTS, len(rows)), strict=True
    ):
        entry["id"] = row.id = new_id
    insert_many(session, _PATIENTS, values)


def _new_ids(session: Session, table: Table, count: int) -> list[int]:
    """`count` ids for new rows of `table`, taken before the insert so that it needs no
    `RETURNING`: SQLAlchemy can only match returned ids to rows by inserting them one at a
    time on SQLite, or by sorting every batch on PostgreSQL, and that was most of the
    writing's CPU. PostgreSQL: from the table's sequence (as the insert would; never
    handed out twice). SQLite: after the largest id, as SQLite would number them, while
    this transaction holds the database's write lock (BEGIN IMMEDIATE), so no other
    writer can take them; a clash would fail the insert, never overwrite.
    """
    name = table.name
    if session.get_bind().dialect.name == "postgresql":
        ids = session.execute(
            text(
                "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"
            ),
            {"table": name, "n": count},
        ).scalars()
        return sorted(ids)
    largest = session.scalar(select(func.max(table.c.id))) or 0
    return list(range(largest + 1, largest + 1 + count))


def _update_patients(session: Session, rows: Sequence[PatientRow], now: datetime) -> None:
    table = _PATIENTS
    groups: dict[frozenset[str], list[PatientRow]] = defaultdict(list)
    for row in rows:
        groups[frozenset(row.changed)].append(row)
        row.changed.clear()
    for names, members in groups.items():
        ordered = sorted(names)
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values(
                {name: bindparam(f"_v_{name}") for name in ordered}
                | {"version": bindparam("_version"), "updated_at": now}
            )
        )
        session.execute(
            statement,
            [
                {"_id": r.id, "_version": r.version}
                | {f"_v_{name}": r.values[name] for name in ordered}
                for r in members
            ],
        )


def _insert_coverages(session: Session, buffer: Buffer) -> None:
    if not buffer.new_coverages:
        return
    table = _COVERAGES
    values = [
        {name: cov.values.get(name) for name in COVERAGE_FIELDS}
        | {"patient_id": row.id, "version": 1}
        for row, cov in buffer.new_coverages
    ]
    for entry in values:
        entry["active"] = True if entry["active"] is None else entry["active"]
        entry["relationship_code"] = entry["relationship_code"] or "18"
    ids = _new_ids(session, table, len(values))
    for (_row, cov), entry, new_id in zip(buffer.new_coverages, values, ids, strict=True):
        entry["id"] = cov.id = new_id
    insert_many(session, table, values)


def _update_coverages(session: Session, buffer: Buffer) -> None:
    table = _COVERAGES
    groups: dict[frozenset[str], list[Any]] = defaultdict(list)
    for cov in buffer.coverages:
        groups[frozenset(cov.changed)].append(cov)
    for names, members in groups.items():
        ordered = sorted(names)
        statement = (
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values(
                {name: bindparam(f"_v_{name}") for name in ordered}
                | {"version": bindparam("_version")}
            )
        )
        session.execute(
            statement,
            [
                {"_id": c.id, "_version": c.version}
                | {f"_v_{name}": c.values[name] for name in ordered}
                for c in members
            ],
        )
        for cov in members:
            cov.changed.clear()


def _write_consents(session: Session, buffer: Buffer, now: datetime) -> None:
    fresh = [
        {
            "patient_id": row.id,
            "channel": Channel(consent.channel),
            "granted": consent.granted,
            "source": consent.source,
            "recorded_at": now,
            "opted_out_at": None,
            "opt_out_source": None,
        }
        for row, consent, consent_id in buffer.consents
        if consent_id is None
    ]
    if fresh:
        session.execute(insert(Consent), fresh)
    for _row, consent, consent_id in buffer.consents:
        if consent_id is None:
            continue
        values: dict[str, Any] = (
            {"granted": True, "opted_out_at": None, "opt_out_source": None, "recorded_at": now}
            if consent.granted
            else {"opted_out_at": now, "opt_out_source": consent.source}
        )
        session.execute(update(Consent).where(Consent.id == consent_id).values(**values))


def _write_reviews(session: Session, drafts: Sequence[ReviewDraft], now: datetime) -> None:
    if not drafts:
        return
    reviews = []
    for draft in drafts:
        review = RecordReview(
            kind=draft.kind.value,
            patient_id=draft.row.id if draft.row is not None else None,
            inbox_id=draft.inbox_id,
            source=draft.source[:80],
            actor=draft.actor[:80],
            submitter=draft.submitter.value,
            proposed=draft.proposed,
            current=draft.current,
            fields=draft.fields,
            candidates=draft.candidates,
            base_version=draft.base_version,
            created_at=now,
        )
        reviews.append(review)
    session.add_all(reviews)
    session.flush(reviews)
    for draft, review in zip(drafts, reviews, strict=True):
        draft.id = review.id
    open_work_items(
        session,
        [
            WorkNeeded(
                kind=draft.kind.value,
                entity=REVIEW_ENTITY,
                entity_id=review.id,
                summary=_SUMMARIES[draft.kind.value],
                role="front_desk",
                detail={"review_id": review.id, "inbox_id": draft.inbox_id},
                patient_id=review.patient_id,
            )
            for draft, review in zip(drafts, reviews, strict=True)
        ],
        now=now,
    )


def _upcoming(session: Session, patient_ids: list[int], now: datetime) -> dict[int, list[int]]:
    found: dict[int, list[int]] = defaultdict(list)
    for chunk in chunks(sorted(patient_ids)):
        for appointment_id, patient_id in session.execute(
            select(Appointment.id, Appointment.patient_id)
            .where(
                Appointment.patient_id.in_(chunk),
                Appointment.start_at > now,
                Appointment.status.in_(_UPCOMING),
            )
            .order_by(Appointment.start_at)
        ).tuples():
            found[patient_id].append(appointment_id)
    return dict(found)
