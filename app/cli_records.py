"""`office practice import`, `office records import|review`: data in, and what waits.

A file is stored in the inbox whole (source "file:<name>", keyed by its SHA-256) before
anything reads it, then processed here through the same handler a flow would run; importing
the same bytes again finds them stored and applied, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from app.cli_support import (
    command_group,
    console,
    database,
    fail,
    settings_or_fail,
    start_followups,
)
from office.db import transaction

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
    from office.models import RecordReview
    from office.records.review import candidate_lines, change_lines

    out = console()
    with _database() as factory, factory() as session:
        review = session.get(RecordReview, review_id)
        if review is None:
            fail(f"review {review_id} does not exist")
        out.print(
            f"review {review.id}: {review.kind}, {review.status.value}, patient "
            f"{review.patient_id or '-'}, from {review.source} ({review.submitter})"
        )
        diff = Table("field", "on file", "proposed", title="Change")
        for line in change_lines(review):
            diff.add_row(line.field, line.on_file, line.proposed)
        out.print(diff)
        candidates = candidate_lines(session, review)
        if candidates:
            table = Table("patient", "MRN", "name", "born", "score", "why", title="Candidates")
            for c in candidates:
                table.add_row(str(c.patient_id), c.mrn, c.name, c.born, c.score, c.why)
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
    _decide(review_id, approve=True, by=by, patient_id=patient, note=note)


@review_app.command("reject")
def review_reject(
    review_id: Annotated[int, typer.Argument(help="Review id.")],
    by: Annotated[str, typer.Option(help="Who decides (name or staff email).")],
    note: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
) -> None:
    """Drop the held change (a possible duplicate: not a duplicate, a new patient)."""
    _decide(review_id, approve=False, by=by, note=note)


def _decide(
    review_id: int,
    *,
    approve: bool,
    by: str,
    patient_id: int | None = None,
    note: str | None = None,
) -> None:
    from office.models import utcnow
    from office.records.review import ReviewError, decide_review

    settings = settings_or_fail()
    with database(settings) as factory:
        try:
            with transaction(factory) as session:
                decision = decide_review(
                    session,
                    review_id,
                    approve=approve,
                    by=by,
                    now=utcnow(),
                    patient_id=patient_id,
                    note=note,
                )
        except ReviewError as exc:
            fail(str(exc))
    changed = f", changed: {', '.join(decision.changed)}" if decision.changed else ""
    console().print(
        f"review {decision.review_id} {decision.status.value}; patient "
        f"{decision.patient_id or '-'}{changed}"
    )
    if decision.followup_ids:  # a coverage changed: re-check the upcoming visits now
        start_followups(settings, decision.followup_ids)
