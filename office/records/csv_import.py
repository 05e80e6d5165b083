"""Patients with their coverage from a CSV export: the file, then each row, in the inbox.

`office records import FILE.csv` stores the file (source "file:<name>", type text/csv)
before anything reads it; the same bytes again are the same inbox item, already applied.
Its handler, `import_file`, decodes it (UTF-8, UTF-8 with BOM, else CP1252) and applies
the rows in chunks through `apply_records`, each audited as "inbox:<file> row N". A
rejected row is stored as its own inbox item (source "row:<name>", keyed by the row's
content) with its reasons, to be fixed and replayed alone (`apply_row`); the other rows
apply. Applying is idempotent: rows that say what the records say change nothing.

Columns (header names, any order, case-insensitive; see the README and
templates/examples/patients.csv): `CSV_COLUMNS`. A blank cell changes nothing; the cell
`[clear]` deletes the stored value.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, Final, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from office.clock import chunks
from office.collector import collector_paused
from office.followups.ledger import FollowupCall
from office.intake import IntakeRejected, Outcome
from office.models import InboxItem, InboxStatus
from office.records.apply import ApplyStatus, apply_records
from office.records.inbound import VERIFY, apply_inbound
from office.records.updates import (
    CLEAR,
    PATIENT_FIELDS,
    Clear,
    ConsentUpdate,
    CoverageUpdate,
    Identifier,
    PatientUpdate,
    RecordBatch,
    SourceKind,
)
from office.records.validate import Problem

__all__ = [
    "CLEAR_CELL",
    "COVERAGE_COLUMNS",
    "CSV_COLUMNS",
    "apply_row",
    "decode",
    "import_file",
    "read_rows",
    "row_update",
]

CLEAR_CELL: Final = "[clear]"
PATIENT_COLUMNS: Final = (
    "mrn",
    "sender_system",
    "sender_id",
    *PATIENT_FIELDS,  # first_name .. language, in display order
    "consent_email",
    "consent_sms",
    "record_version",
)
COVERAGE_COLUMNS: Final = (
    "payer_code",
    "payer_name",
    "member_id",
    "group_number",
    "plan_name",
    "effective_from",
    "effective_to",
    "relationship",
    "subscriber_first_name",
    "subscriber_last_name",
    "subscriber_date_of_birth",
    "subscriber_sex",
    "copay",
)
CSV_COLUMNS: Final = (
    *PATIENT_COLUMNS,
    *COVERAGE_COLUMNS,
    *(f"secondary_{name}" for name in COVERAGE_COLUMNS),
)
_KNOWN: Final = frozenset(CSV_COLUMNS)
# A patient's own fields have columns of the same names.
_FIELD_COLUMNS: Final = PATIENT_FIELDS
_DATES: Final = frozenset(
    {"date_of_birth", "effective_from", "effective_to", "subscriber_date_of_birth"}
)
_DATE_COLUMNS: Final = frozenset(n for n in CSV_COLUMNS if n.removeprefix("secondary_") in _DATES)
# Each coverage's columns, in COVERAGE_COLUMNS' order.
_COVERAGES_BY_RANK: Final = (
    (1, COVERAGE_COLUMNS),
    (2, tuple(f"secondary_{name}" for name in COVERAGE_COLUMNS)),
)
_YES: Final = frozenset({"yes", "y", "true", "1"})
_NO: Final = frozenset({"no", "n", "false", "0"})
_CHUNK: Final = 500
MAX_ROWS: Final = 200_000


def decode(data: bytes) -> str:
    """The file's text: UTF-8 (with or without BOM), else Windows-1252."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def read_rows(data: bytes) -> list[dict[str, str]]:
    """The rows as column → cell, blanks dropped; unknown columns stop the whole file."""
    text = decode(data).replace("\x00", "")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise IntakeRejected("the file is empty") from None
    except csv.Error:
        raise IntakeRejected("the header line cannot be read as CSV") from None
    names = [cell.strip().lower().replace(" ", "_").replace("-", "_") for cell in header]
    unknown = sorted({n for n in names if n and n not in _KNOWN})
    if unknown:
        raise IntakeRejected(f"unknown columns: {', '.join(unknown)[:200]}")
    if len(set(names)) != len(names):
        raise IntakeRejected("a column appears twice")
    rows: list[dict[str, str]] = []
    try:
        for cells in reader:
            if len(rows) >= MAX_ROWS:
                raise IntakeRejected(f"more than {MAX_ROWS} rows; split the file")
            row = {
                name: value
                for name, cell in zip(names, cells, strict=False)
                if name and (value := cell.strip())
            }
            if row:
                rows.append(row)
    except csv.Error:
        raise IntakeRejected(f"line {reader.line_num} cannot be read as CSV") from None
    return rows


def row_update(row: dict[str, str], where: str) -> tuple[PatientUpdate | None, list[Problem]]:
    """One row as a normalized update, or the problems that stop it being one."""
    problems: list[Problem] = []

    def cell(name: str) -> Any:
        raw = row.get(name)
        if raw is None:
            return None
        if len(raw) == len(CLEAR_CELL) and raw.lower() == CLEAR_CELL:
            return CLEAR
        if name in _DATE_COLUMNS:
            parsed = _date(raw)
            if parsed is None:
                problems.append(Problem(where, name, "not a date (YYYY-MM-DD or MM/DD/YYYY)"))
            return parsed
        return raw

    identifiers: tuple[Identifier, ...] = ()
    system, value = row.get("sender_system"), row.get("sender_id")
    if system and value:
        identifiers = (Identifier(system, value),)
    elif system or value:
        problems.append(Problem(where, "sender_id", "needs both sender_system and sender_id"))
    consents = []
    for channel in ("email", "sms"):
        answer = (row.get(f"consent_{channel}") or "").lower()
        if answer in _YES or answer in _NO:
            consents.append(ConsentUpdate(channel, answer in _YES, "records import"))
        elif answer:
            problems.append(Problem(where, f"consent_{channel}", "must be yes or no"))
    coverages = []
    for rank, columns in _COVERAGES_BY_RANK:
        if row.keys().isdisjoint(columns) or not any(row.get(name) for name in columns):
            continue
        (
            payer_code,
            payer_name,
            member_id,
            group_number,
            plan_name,
            effective_from,
            effective_to,
            relationship,
            subscriber_first_name,
            subscriber_last_name,
            subscriber_date_of_birth,
            subscriber_sex,
            copay,
        ) = map(cell, columns)
        coverages.append(
            CoverageUpdate(
                payer_code=_text(payer_code),
                payer_name=_text(payer_name),
                member_id=member_id,
                group_number=group_number,
                plan_name=plan_name,
                rank=rank,
                effective_from=effective_from,
                effective_to=effective_to,
                relationship_code=relationship,
                subscriber_first_name=subscriber_first_name,
                subscriber_last_name=subscriber_last_name,
                subscriber_date_of_birth=subscriber_date_of_birth,
                subscriber_sex=subscriber_sex,
                copay_on_file=copay,
            )
        )
    version = row.get("record_version")
    if version is not None and not (version.isdigit() and int(version) >= 1):
        problems.append(Problem(where, "record_version", "must be a whole number from 1"))
    update = PatientUpdate(
        mrn=_text(cell("mrn")),
        identifiers=identifiers,
        **{name: cell(name) for name in _FIELD_COLUMNS},
        coverages=tuple(coverages),
        consents=tuple(consents),
        expected_version=int(version) if version and version.isdigit() else None,
    )
    return (None if problems else update), problems


def import_file(session: Session, item: InboxItem, *, now: datetime) -> Outcome:
    """A stored CSV file's handler: apply its rows in chunks; a rejected row is stored as
    its own inbox item with its reasons, to be fixed and replayed alone."""
    rows = read_rows(item.body)
    name = item.source.partition(":")[2][:60] or "records.csv"
    counts: Counter[str] = Counter({"rows": len(rows)})
    calls: list[FollowupCall] = []
    rejected: list[tuple[int, dict[str, str], str]] = []
    numbered = list(enumerate(rows, start=1))
    with collector_paused():
        for chunk in chunks(numbered, _CHUNK):
            calls.extend(
                _apply_chunk(session, item, chunk, now=now, counts=counts, rejected=rejected)
            )
    _store_rejected(session, f"row:{name}", rejected, now)
    return Outcome("inbox", item.id, (), tuple(dict.fromkeys(calls)), tuple(counts.items()))


def apply_row(session: Session, item: InboxItem, *, now: datetime) -> Outcome:
    """One stored row's handler (a replay after a fix)."""
    stored = json.loads(item.body)
    where = f"row {stored.get('row', '?')}"
    update, problems = row_update(stored["values"], where)
    if update is None:
        raise IntakeRejected("; ".join(str(p) for p in problems))
    batch = RecordBatch((update,), SourceKind.CSV, label=where)
    return apply_inbound(session, item, batch, now=now)


def _store_rejected(
    session: Session,
    source: str,
    rejected: Sequence[tuple[int, dict[str, str], str]],
    now: datetime,
) -> None:
    """Each rejected row as an inbox item keyed by its content, rejected with its reasons (a
    row already stored, from an earlier import of the file, gets the new reasons)."""
    keyed: dict[str, dict[str, Any]] = {}
    for number, row, reason in rejected:
        values = json.dumps(row, sort_keys=True, ensure_ascii=False)
        key = hashlib.sha256(values.encode()).hexdigest()
        keyed[key] = {
            "source": source,
            "idempotency_key": key,
            "content_type": "application/json",
            "body": f'{{"row": {number}, "values": {values}}}'.encode(),
            "status": InboxStatus.REJECTED,
            "reason": reason[:2000],
            "attempts": 1,
            "received_at": now,
            "last_attempt_at": now,
        }
    found: dict[str, int] = {}
    for chunk in chunks(sorted(keyed)):
        found.update(
            session.execute(
                select(InboxItem.idempotency_key, InboxItem.id).where(
                    InboxItem.source == source, InboxItem.idempotency_key.in_(chunk)
                )
            )
            .tuples()
            .all()
        )
    table = cast(Table, InboxItem.__table__)
    fresh = [entry for key, entry in keyed.items() if key not in found]
    if fresh:
        session.execute(insert(table), fresh)
    again = [
        {"_id": found[key], "_reason": entry["reason"]}
        for key, entry in keyed.items()
        if key in found
    ]
    if again:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("_id"), table.c.status != InboxStatus.PROCESSED.value)
            .values(reason=bindparam("_reason"), last_attempt_at=now),
            again,
        )


def _apply_chunk(
    session: Session,
    item: InboxItem,
    chunk: Iterable[tuple[int, dict[str, str]]],
    *,
    now: datetime,
    counts: Counter[str],
    rejected: list[tuple[int, dict[str, str], str]],
) -> list[FollowupCall]:
    batches: list[RecordBatch] = []
    kept: list[tuple[int, dict[str, str]]] = []
    for number, row in chunk:
        where = f"row {number}"
        update_, problems = row_update(row, where)
        if update_ is None:
            rejected.append((number, row, "; ".join(map(str, problems))))
            counts[ApplyStatus.REJECTED.value] += 1
            continue
        batches.append(
            RecordBatch((update_,), SourceKind.CSV, inbox_id=item.id, label=where, row=number)
        )
        kept.append((number, row))
    outcomes = apply_records(session, batches, actor=item.source[:80], now=now)
    calls: list[FollowupCall] = []
    for (number, row), outcome in zip(kept, outcomes, strict=True):
        status = outcome.status
        counts[status.value] += 1
        if status is ApplyStatus.REJECTED:
            rejected.append((number, row, outcome.reason))
        elif visits := outcome.reverify:
            calls.extend(FollowupCall(VERIFY, visit) for visit in visits)
    return calls


def _text(value: Any) -> str | None:
    return None if value is None or isinstance(value, Clear) else str(value)


def _date(raw: str) -> date | None:
    try:
        if "/" in raw:
            month, day, year = raw.split("/")
            return date(int(year), int(month), int(day))
        return date.fromisoformat(raw)
    except ValueError:
        return None
