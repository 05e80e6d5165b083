"""`office practice import`, `office records import|review`: data in, and what waits.

A file is stored in the inbox whole (source "file:<name>", keyed by its SHA-256) before
anything reads it, then processed here through the same handler a flow would run; importing
the same bytes again finds them stored and applied, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from app.cli_support import command_group, console, database, fail, settings_or_fail
from office.db import transaction

if TYPE_CHECKING:
    from office.records.review import ReviewDecision

__all__ = ["practice_app", "records_app"]

practice_app = command_group(
    "The practice itself: clinics, providers, payers, appointment types, staff."
)
records_app = command_group(
    "Patient records in (CSV, FHIR) and the changes waiting for staff review."
)

# Larger files are refused before they are read: split them.
MAX_FILE_BYTES = 64 * 1024 * 1024


@contextmanager
def _database() -> Iterator[sessionmaker[Session]]:
    with database(settings_or_fail()) as factory:
        yield factory


def _read(path: Path) -> bytes:
    if not path.is_file():
        fail(f"{path} is not a file")
    if path.stat().st_size > MAX_FILE_BYTES:
        fail(f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB: split it")
    return path.read_bytes()


def import_file(factory: sessionmaker[Session], path: Path, content_type: str) -> None:
    """Store the file, process it, print what it did (counts and ids only)."""
    from office.intake import process_item, store_file

    body = _read(path)
    with transaction(factory) as session:
        item, new = store_file(session, path.name, body, content_type)
        item_id = item.id
    result = process_item(factory, item_id)
    out = console()
    if result.reason:
        fail(f"{path.name} (inbox item {item_id}) rejected: {result.reason}")
    if result.outcome is None:
        note = "stored" if new else "already stored"
        out.print(f"{path.name}: {note} as inbox item {item_id}, already applied")
        return
    table = Table("what", "count", title=f"{path.name} (inbox item {item_id})")
    for label, count in result.outcome.counts:
        table.add_row(label.replace("_", " "), str(count))
    out.print(table if result.outcome.counts else f"{path.name}: nothing to change")


@practice_app.command("import")
def practice_import(
    path: Annotated[Path, typer.Argument(help="The practice file (YAML).", metavar="FILE.yaml")],
) -> None:
    """Create or update the practice from a file; see templates/examples/practice.yaml."""
    with _database() as factory:
        import_file(factory, path, "application/yaml")


@records_app.command("import")
def records_import(
    path: Annotated[
        Path, typer.Argument(help="A CSV export of patients with coverage, or FHIR JSON.")
    ],
    fhir: Annotated[
        bool,
        typer.Option(
            "--fhir", help="The file is FHIR R4 JSON: Patient, Coverage, Appointment or a Bundle."
        ),
    ] = False,
) -> None:
    """Import patients with their coverage: CSV (columns in the README and
    templates/examples/patients.csv) or, with --fhir, FHIR R4 JSON."""
    with _database() as factory:
        import_file(factory, path, "application/fhir+json" if fhir else "text/csv")


# --- review -----------------------------------------------------------------------------------

review_app = command_group(
    "Record changes waiting for a person: possible duplicates, patients' own edits of "
    "reviewed fields, stale updates, merges."
)
records_app.add_typer(review_app, name="review")


@review_app.command("list")
def review_list(
    kind: Annotated[
        str | None,
        typer.Option(help="possible_duplicate, record_review, stale_update or merge_request."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 100,
) -> None:
    """Reviews waiting for a decision, oldest first."""
    from office.records.review import pending_reviews

    with _database() as factory, factory() as session:
        reviews = pending_reviews(session, kind=kind, limit=limit)
        table = Table("id", "kind", "patient", "fields", "from", "received", title="Record reviews")
        for review in reviews:
            table.add_row(
                str(review.id),
                review.kind,
                str(review.patient_id or ""),
                ", ".join(map(str, review.fields))[:60],
                review.source,
                review.created_at.strftime("%Y-%m-%d %H:%M UTC"),
            )
    console().print(table if reviews else "no record reviews waiting")


@review_app.command("show")
def review_show(review_id: Annotated[int, typer.Argument(help="Review id.")]) -> None:
    """One review: the current and proposed values side by side, and candidates' scores."""
    from office.models import Patient, RecordReview

    out = console()
    with _database() as factory, factory() as session:
        review = session.get(RecordReview, review_id)
        if review is None:
            fail(f"review {review_id} does not exist")
        out.print(
            f"review {review.id}: {review.kind}, {review.status.value}, patient "
            f"{review.patient_id or '-'}, from {review.source} ({review.submitter})"
        )
        proposed = _flat(review.proposed)
        names = list(dict.fromkeys([*map(str, review.fields), *proposed]))
        diff = Table("field", "on file", "proposed", title="Change")
        for name in names:
            if name in {"mrn", "identifiers", "expected_version", "occurred_at"}:
                continue
            diff.add_row(name, _show(review.current.get(name)), _show(proposed.get(name)))
        out.print(diff)
        if review.candidates:
            table = Table("patient", "MRN", "name", "born", "score", "why", title="Candidates")
            for candidate in review.candidates:
                patient = session.get(Patient, candidate.get("patient_id"))
                parts = candidate.get("parts") or {}
                table.add_row(
                    str(candidate.get("patient_id")),
                    patient.mrn if patient else "",
                    f"{patient.first_name} {patient.last_name}" if patient else "",
                    str(patient.date_of_birth) if patient else "",
                    str(candidate.get("total", candidate.get("role", ""))),
                    ", ".join(f"{k} {v}" for k, v in parts.items()),
                )
            out.print(table)


@review_app.command("approve")
def review_approve(
    review_id: Annotated[int, typer.Argument(help="Review id.")],
    by: Annotated[str, typer.Option(help="Who decides (name or staff email).")],
    patient: Annotated[
        int | None, typer.Option(help="For a possible duplicate: the candidate it is.")
    ] = None,
    note: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
) -> None:
    """Apply the held change (a possible duplicate: it is that patient)."""
    from office.records.review import approve_review

    _decide(
        lambda s, now: approve_review(s, review_id, by=by, now=now, patient_id=patient, note=note)
    )


@review_app.command("reject")
def review_reject(
    review_id: Annotated[int, typer.Argument(help="Review id.")],
    by: Annotated[str, typer.Option(help="Who decides (name or staff email).")],
    note: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
) -> None:
    """Drop the held change (a possible duplicate: not a duplicate, a new patient)."""
    from office.records.review import reject_review

    _decide(lambda s, now: reject_review(s, review_id, by=by, now=now, note=note))


def _decide(decide: Callable[[Session, datetime], ReviewDecision]) -> None:
    from office.followups.ledger import FollowupCall, record_followups
    from office.models import utcnow
    from office.records.review import ReviewError

    with _database() as factory:
        now = utcnow()
        try:
            with transaction(factory) as session:
                decision = decide(session, now)
                # A coverage the person approved re-checks the upcoming visits, as follow-ups.
                calls = [FollowupCall("verify_appointment", v) for v in decision.reverify]
                record_followups(session, None, calls, now=now)
        except ReviewError as exc:
            fail(str(exc))
    changed = f", changed: {', '.join(decision.changed)}" if decision.changed else ""
    console().print(
        f"review {decision.review_id} {decision.status.value}; patient "
        f"{decision.patient_id or '-'}{changed}"
    )


def _flat(proposed: dict[str, Any]) -> dict[str, Any]:
    """The proposed update's fields, its coverages as "coverage N.field"."""
    flat = {k: v for k, v in proposed.items() if k not in {"coverages", "consents"}}
    for index, coverage in enumerate(proposed.get("coverages", []), start=1):
        rank = coverage.get("rank", index)
        for name, value in coverage.items():
            if name != "rank":
                flat[f"coverage {rank}.{name}"] = value
    return flat


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict) and value.get("clear") is True:
        return "(delete)"
    return str(value)
