"""`office practice import`, `office records import|review`: data in, and what waits.

A file is stored in the inbox whole (source "file:<name>", keyed by its SHA-256) before
anything reads it, then processed here through the same handler a flow would run; importing
the same bytes again finds them stored and applied, and changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

from app.cli_support import require_schema
from office.db import make_engine, make_sessionmaker, transaction
from office.settings import Settings, SettingsError, load_settings

__all__ = ["practice_app", "records_app"]

practice_app = typer.Typer(
    help="The practice itself: clinics, providers, payers, appointment types, staff.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
records_app = typer.Typer(
    help="Patient records in (CSV, FHIR) and the changes waiting for staff review.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Larger files are refused before they are read: split them.
MAX_FILE_BYTES = 64 * 1024 * 1024


def _fail(message: str) -> NoReturn:
    Console(stderr=True, highlight=False).print(f"error: {message}", markup=False)
    raise typer.Exit(1)


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        _fail(str(exc))


@contextmanager
def _database() -> Iterator[sessionmaker[Session]]:
    engine = make_engine(_settings().db_url)
    try:
        require_schema(engine)
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def _read(path: Path) -> bytes:
    if not path.is_file():
        _fail(f"{path} is not a file")
    if path.stat().st_size > MAX_FILE_BYTES:
        _fail(f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB: split it")
    return path.read_bytes()


def import_file(factory: sessionmaker[Session], path: Path, content_type: str) -> None:
    """Store the file, process it, print what it did (counts and ids only)."""
    from office.intake import process_item
    from office.ledgers import store_inbound

    body = _read(path)
    with transaction(factory) as session:
        item, new = store_inbound(
            session,
            source=f"file:{path.name[:60]}",
            key=hashlib.sha256(body).hexdigest(),
            body=body,
            content_type=content_type,
        )
        item_id = item.id
    result = process_item(factory, item_id)
    console = Console(highlight=False)
    if result.reason:
        _fail(f"{path.name} (inbox item {item_id}) rejected: {result.reason}")
    if result.outcome is None:
        note = "stored" if new else "already stored"
        console.print(f"{path.name}: {note} as inbox item {item_id}, already applied")
        return
    table = Table("what", "count", title=f"{path.name} (inbox item {item_id})")
    for label, count in result.outcome.counts:
        table.add_row(label.replace("_", " "), str(count))
    console.print(table if result.outcome.counts else f"{path.name}: nothing to change")


@practice_app.command("import")
def practice_import(
    path: Annotated[Path, typer.Argument(help="The practice file (YAML).", metavar="FILE.yaml")],
) -> None:
    """Create or update the practice from a file; see templates/examples/practice.yaml."""
    with _database() as factory:
        import_file(factory, path, "application/yaml")


@records_app.command("import")
def records_import(
    path: Annotated[Path, typer.Argument(help="A CSV export of patients with coverage.")],
) -> None:
    """Import patients with their coverage; columns in the README and
    templates/examples/patients.csv."""
    with _database() as factory:
        import_file(factory, path, "text/csv")
