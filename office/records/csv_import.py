"""Patients with their coverage from a CSV export: the file, then each row, in the inbox.

`office records import FILE.csv` stores the file (source "file:<name>", type text/csv)
before anything reads it. Its handler, `import_file`, decodes it (UTF-8, UTF-8 with BOM,
else CP1252), stores each row as its own inbox item (source "row:<name>", keyed by the
row's content, so importing the same file again stores and applies nothing twice), and
applies the rows in chunks through `apply_records`: a rejected row stays in the inbox with
its reasons and can be replayed (`apply_row`) after a fix; the other rows apply.

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
    "first_name",
    "middle_name",
    "last_name",
    "suffix",
    "date_of_birth",
    "sex",
    "phone",
    "email",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "language",
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
                name: cell.strip()
                for name, cell in zip(names, cells, strict=False)
                if name and cell.strip()
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
        if raw.lower() == CLEAR_CELL:
            return CLEAR
        if name.removeprefix("secondary_") in _DATES:
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
    for rank, prefix in ((1, ""), (2, "secondary_")):
        if not any(row.get(prefix + name) for name in COVERAGE_COLUMNS):
            continue
        copay = cell(prefix + "copay")
        coverages.append(
            CoverageUpdate(
                payer_code=_text(cell(prefix + "payer_code")),
                payer_name=_text(cell(prefix + "payer_name")),
                member_id=cell(prefix + "member_id"),
                group_number=cell(prefix + "group_number"),
                plan_name=cell(prefix + "plan_name"),
                rank=rank,
                effective_from=cell(prefix + "effective_from"),
                effective_to=cell(prefix + "effective_to"),
                relationship_code=cell(prefix + "relationship"),
                subscriber_first_name=cell(prefix + "subscriber_first_name"),
                subscriber_last_name=cell(prefix + "subscriber_last_name"),
                subscriber_date_of_birth=cell(prefix + "subscriber_date_of_birth"),
                subscriber_sex=cell(prefix + "subscriber_sex"),
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
    """A stored CSV file's handler: store each row in the inbox, then apply the new ones."""
    rows = read_rows(item.body)
    name = item.source.partition(":")[2][:60] or "records.csv"
    stored = _store_rows(session, f"row:{name}", rows, now)
    counts: Counter[str] = Counter({"rows": len(rows), "already_applied": 0})
    todo = []
    for number, (row_id, status) in enumerate(stored, start=1):
        if status is InboxStatus.PROCESSED:
            counts["already_applied"] += 1
        else:
            todo.append((row_id, number, rows[number - 1]))
    calls: list[FollowupCall] = []
    for chunk in chunks(todo, _CHUNK):
        calls.extend(_apply_chunk(session, chunk, actor=item.source[:80], now=now, counts=counts))
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


def _store_rows(
    session: Session, source: str, rows: Sequence[dict[str, str]], now: datetime
) -> list[tuple[int, InboxStatus]]:
    """Each row as an inbox item (new ones in one statement); (id, status) per row."""
    keyed = []
    for number, row in enumerate(rows, start=1):
        values = json.dumps(row, sort_keys=True, ensure_ascii=False)
        key = hashlib.sha256(values.encode()).hexdigest()
        keyed.append((key, number, values))
    found: dict[str, tuple[int, InboxStatus]] = {}
    for chunk in chunks(sorted({key for key, _n, _v in keyed})):
        for row_id, key, status in session.execute(
            select(InboxItem.id, InboxItem.idempotency_key, InboxItem.status).where(
                InboxItem.source == source, InboxItem.idempotency_key.in_(chunk)
            )
        ).tuples():
            found[key] = (row_id, status)
    fresh: dict[str, dict[str, Any]] = {}
    for key, number, values in keyed:
        if key not in found and key not in fresh:
            body = f'{{"row": {number}, "values": {values}}}'.encode()
            fresh[key] = {
                "source": source,
                "idempotency_key": key,
                "content_type": "application/json",
                "body": body,
                "status": InboxStatus.PENDING,
                "attempts": 0,
                "received_at": now,
            }
    if fresh:
        rows_in = list(fresh.values())
        ids = session.execute(
            insert(InboxItem).returning(InboxItem.id, sort_by_parameter_order=True), rows_in
        ).scalars()
        for entry, row_id in zip(rows_in, ids, strict=True):
            found[entry["idempotency_key"]] = (row_id, InboxStatus.PENDING)
    return [found[key] for key, _n, _v in keyed]


def _apply_chunk(
    session: Session,
    chunk: Iterable[tuple[int, int, dict[str, str]]],
    *,
    actor: str,
    now: datetime,
    counts: Counter[str],
) -> list[FollowupCall]:
    batches: list[RecordBatch] = []
    ids: list[int] = []
    rejected: list[dict[str, Any]] = []
    for row_id, number, row in chunk:
        where = f"row {number}"
        update_, problems = row_update(row, where)
        if update_ is None:
            rejected.append({"_id": row_id, "_reason": "; ".join(map(str, problems))[:2000]})
            continue
        batches.append(RecordBatch((update_,), SourceKind.CSV, inbox_id=row_id, label=where))
        ids.append(row_id)
    outcomes = apply_records(session, batches, actor=actor, now=now)
    processed: list[dict[str, Any]] = []
    calls: list[FollowupCall] = []
    for row_id, outcome in zip(ids, outcomes, strict=True):
        counts[outcome.status.value] += 1
        if outcome.status is ApplyStatus.REJECTED:
            rejected.append({"_id": row_id, "_reason": outcome.reason[:2000]})
        else:
            processed.append({"_id": row_id})
            calls.extend(FollowupCall(VERIFY, visit) for visit in outcome.reverify)
    counts[ApplyStatus.REJECTED.value] += len(rejected) - sum(
        1 for o in outcomes if o.status is ApplyStatus.REJECTED
    )
    table = cast(Table, InboxItem.__table__)
    if processed:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values(
                status=InboxStatus.PROCESSED.value,
                reason=None,
                attempts=table.c.attempts + 1,
                last_attempt_at=now,
                processed_at=now,
            ),
            processed,
        )
    if rejected:
        session.execute(
            update(table)
            .where(table.c.id == bindparam("_id"))
            .values(
                status=InboxStatus.REJECTED.value,
                reason=bindparam("_reason"),
                attempts=table.c.attempts + 1,
                last_attempt_at=now,
            ),
            rejected,
        )
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
