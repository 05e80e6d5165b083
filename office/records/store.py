"""The patients, coverages and ids one apply call works on, read in a few statements.

`load_store` reads every row the call's updates can touch (by MRN, sender id, or date of
birth for matching), locked for update on PostgreSQL so two writers to one patient take
turns; the planner then works on these in-memory rows, and `office.records.write` writes
what changed, in bulk. Rows created by the call are in the store too, so a later update in
the same call finds them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from office.clock import chunks
from office.models import (
    AuditEntry,
    Consent,
    Coverage,
    DistinctPatients,
    Patient,
    PatientIdentifier,
    Payer,
)
from office.records.updates import PATIENT_FIELDS, MergeRequest, PatientUpdate, RecordBatch

__all__ = [
    "COVERAGE_FIELDS",
    "EVENT_FIELD",
    "LINKED_MRN_SYSTEM",
    "CoverageRow",
    "PatientRow",
    "Store",
    "load_store",
]

# A sender's MRN a person linked to one of our patients (a possible duplicate approved) is
# kept as a sender id of this system, so that MRN finds the patient from then on.
LINKED_MRN_SYSTEM: Final = "mrn"

# The audit field holding when the source made the last update applied to a patient.
EVENT_FIELD: Final = "record_event_at"
COVERAGE_FIELDS: Final = (
    "payer_id",
    "member_id",
    "group_number",
    "plan_name",
    "rank",
    "effective_from",
    "effective_to",
    "relationship_code",
    "subscriber_first_name",
    "subscriber_last_name",
    "subscriber_date_of_birth",
    "subscriber_sex",
    "copay_on_file",
    "active",
)
_PATIENT_COLUMNS: Final = ("mrn", *PATIENT_FIELDS)


@dataclass(eq=False)
class CoverageRow:
    """A coverage as this call sees it; `id` is None until it is inserted."""

    id: int | None
    values: dict[str, Any]
    version: int = 1
    changed: set[str] = field(default_factory=set)

    @property
    def new(self) -> bool:
        return self.id is None


@dataclass(eq=False)
class PatientRow:
    """A patient as this call sees it; `id` is None until it is inserted."""

    id: int | None
    values: dict[str, Any]
    version: int = 1
    merged_into_id: int | None = None
    last_event_at: datetime | None = None
    coverages: list[CoverageRow] = field(default_factory=list)
    consents: dict[str, tuple[int | None, bool, bool]] = field(default_factory=dict)
    identifiers: set[tuple[str, str]] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)

    @property
    def new(self) -> bool:
        return self.id is None


@dataclass
class Store:
    by_id: dict[int, PatientRow] = field(default_factory=dict)
    by_mrn: dict[str, PatientRow] = field(default_factory=dict)
    by_identifier: dict[tuple[str, str], PatientRow] = field(default_factory=dict)
    by_birth: dict[date, list[PatientRow]] = field(default_factory=lambda: defaultdict(list))
    distinct: set[tuple[int, int]] = field(default_factory=set)
    payer_codes: dict[str, int] = field(default_factory=dict)
    payer_names: dict[str, int] = field(default_factory=dict)
    mbi_payers: frozenset[str] = frozenset()
    created: list[PatientRow] = field(default_factory=list)

    def add(self, row: PatientRow) -> None:
        """Index a row (a loaded one, or one this call creates)."""
        if row.id is not None:
            self.by_id[row.id] = row
        self.by_mrn[row.values["mrn"]] = row
        for key in row.identifiers:
            self.by_identifier[key] = row
        if row.merged_into_id is None and row.values.get("date_of_birth") is not None:
            self.by_birth[row.values["date_of_birth"]].append(row)

    def payer_id(self, code: str | None, name: str | None) -> int | None:
        if code is not None and code.upper() in self.payer_codes:
            return self.payer_codes[code.upper()]
        if name is not None:
            return self.payer_names.get(name.casefold())
        return None


def load_payers(session: Session, store: Store) -> None:
    """Every payer by code and by name; Medicare payers' codes for the MBI check."""
    mbi = set()
    for payer_id, code, name, settings in session.execute(
        select(Payer.id, Payer.payer_code, Payer.name, Payer.adapter_settings)
    ).tuples():
        store.payer_codes[code.upper()] = payer_id
        store.payer_names.setdefault(name.casefold(), payer_id)
        if "medicare" in name.casefold() or (settings or {}).get("member_id_format") == "mbi":
            mbi.add(code.upper())
    store.mbi_payers = frozenset(mbi)


def load_store(session: Session, batches: Iterable[RecordBatch], store: Store) -> None:
    """Read (and lock) the patients the batches may touch, with their coverages and ids."""
    mrns: set[str] = set()
    keys: set[tuple[str, str]] = set()
    births: set[date] = set()
    for batch in batches:
        for record in batch.records:
            update = record.survivor if isinstance(record, MergeRequest) else record
            if isinstance(record, MergeRequest):
                if record.retired_mrn:
                    mrns.add(record.retired_mrn)
                if record.retired_identifier is not None:
                    keys.add((record.retired_identifier.system, record.retired_identifier.value))
            _wanted(update, mrns, keys, births)
    locking = session.get_bind().dialect.name == "postgresql"
    # Sender ids by system: one value per bound parameter, not a (system, value) pair.
    values_by_system: dict[str, list[str]] = defaultdict(list)
    for system, value in sorted(keys):
        values_by_system[system].append(value)
    ids: set[int] = set()
    for system, values in values_by_system.items():
        for chunk in chunks(values):
            rows = session.execute(
                select(PatientIdentifier.patient_id).where(
                    PatientIdentifier.system == system, PatientIdentifier.value.in_(chunk)
                )
            )
            ids.update(rows.scalars())
    wanted = [
        *(Patient.mrn.in_(chunk) for chunk in chunks(sorted(mrns))),
        *(Patient.id.in_(chunk) for chunk in chunks(sorted(ids))),
        *(
            Patient.date_of_birth.in_(chunk) & Patient.merged_into_id.is_(None)
            for chunk in chunks(sorted(births))
        ),
    ]
    loaded = _load_patients(session, store, wanted, locking)
    # A merged record's survivor too: an update naming the retired one lands there.
    survivors = {p.merged_into_id for p in loaded if p.merged_into_id is not None}
    survivors -= set(store.by_id)
    if survivors:
        more = [Patient.id.in_(chunk) for chunk in chunks(sorted(survivors))]
        loaded += _load_patients(session, store, more, locking)
    if loaded:
        _load_details(session, store, [p.id for p in loaded if p.id is not None])
    for patient in loaded:
        store.add(patient)


def _load_patients(
    session: Session, store: Store, conditions: Iterable[Any], locking: bool
) -> list[PatientRow]:
    columns = [getattr(Patient, name) for name in _PATIENT_COLUMNS]
    loaded: list[PatientRow] = []
    for condition in conditions:
        query = select(Patient.id, Patient.version, Patient.merged_into_id, *columns).where(
            condition
        )
        if locking:
            query = query.order_by(Patient.id).with_for_update(of=Patient)
        for row in session.execute(query):
            if row.id in store.by_id:
                continue
            patient = PatientRow(
                row.id,
                {name: getattr(row, name) for name in _PATIENT_COLUMNS},
                row.version,
                row.merged_into_id,
            )
            store.by_id[row.id] = patient
            loaded.append(patient)
    return loaded


def _wanted(
    update: PatientUpdate, mrns: set[str], keys: set[tuple[str, str]], births: set[date]
) -> None:
    if update.mrn:
        mrns.add(update.mrn)
        keys.add((LINKED_MRN_SYSTEM, update.mrn))
    keys.update((i.system, i.value) for i in update.identifiers)
    if isinstance(update.date_of_birth, date):
        births.add(update.date_of_birth)


def _load_details(session: Session, store: Store, ids: list[int]) -> None:
    coverage_columns = [getattr(Coverage, name) for name in COVERAGE_FIELDS]
    for chunk in chunks(sorted(ids)):
        for row in session.execute(
            select(Coverage.id, Coverage.patient_id, Coverage.version, *coverage_columns)
            .where(Coverage.patient_id.in_(chunk))
            .order_by(Coverage.rank, Coverage.id)
        ):
            store.by_id[row.patient_id].coverages.append(
                CoverageRow(
                    row.id, {name: getattr(row, name) for name in COVERAGE_FIELDS}, row.version
                )
            )
        for consent_id, patient_id, channel, granted, opted_out in session.execute(
            select(
                Consent.id,
                Consent.patient_id,
                Consent.channel,
                Consent.granted,
                Consent.opted_out_at.is_not(None),
            ).where(Consent.patient_id.in_(chunk))
        ).tuples():
            store.by_id[patient_id].consents[channel.value] = (consent_id, granted, opted_out)
        for patient_id, system, value in session.execute(
            select(
                PatientIdentifier.patient_id, PatientIdentifier.system, PatientIdentifier.value
            ).where(PatientIdentifier.patient_id.in_(chunk))
        ).tuples():
            store.by_id[patient_id].identifiers.add((system, value))
        for patient_id, last in session.execute(
            select(AuditEntry.entity_id, func.max(AuditEntry.after))
            .where(
                AuditEntry.entity == Patient.__tablename__,
                AuditEntry.entity_id.in_(chunk),
                AuditEntry.field == EVENT_FIELD,
            )
            .group_by(AuditEntry.entity_id)
        ).tuples():
            if last:
                store.by_id[patient_id].last_event_at = datetime.fromisoformat(last)
        for low, high in session.execute(
            select(DistinctPatients.patient_id, DistinctPatients.other_patient_id).where(
                DistinctPatients.patient_id.in_(chunk)
                | DistinctPatients.other_patient_id.in_(chunk)
            )
        ).tuples():
            store.distinct.add((low, high))
