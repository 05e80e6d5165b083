"""The `office` command: what a practice's IT person runs.

Each command builds settings at the edge, talks to the database, and prints a
table or one clear line. Errors never show a traceback (set OFFICE_DEBUG=1 to
see one).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.cli_eligibility import eligibility_app
from app.cli_mail import mail_app
from app.cli_onboarding import onboarding_app
from app.cli_queue import queue_app
from app.cli_records import practice_app, records_app
from app.cli_reminders import reminders_app
from app.cli_staff import audit_app, staff_app
from app.prefect_handoff import DEPLOYMENTS_FILE
from app.prefect_server import SERVE_PORT, PrefectServerError
from office.db import make_engine, make_sessionmaker
from office.settings import Settings, SettingsError, load_settings

__all__ = ["app", "main"]

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

app = typer.Typer(
    help=(
        "officeflows: insurance checks, appointment reminders, record updates, staff "
        "onboarding and mail routing for a medical practice, run as Prefect flows."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Create or update the officeflows database.", no_args_is_help=True)
prefect_app = typer.Typer(
    help="What officeflows keeps on Prefect's server besides the deployments.",
    no_args_is_help=True,
)
inbox_app = typer.Typer(
    help="Everything that came in (webhooks, files, mail), stored before it was acted on.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
app.add_typer(prefect_app, name="prefect")
app.add_typer(inbox_app, name="inbox")
app.add_typer(eligibility_app, name="eligibility")
app.add_typer(reminders_app, name="reminders")
app.add_typer(mail_app, name="mail")
app.add_typer(staff_app, name="staff")
app.add_typer(audit_app, name="audit")
app.add_typer(practice_app, name="practice")
app.add_typer(records_app, name="records")
app.add_typer(onboarding_app, name="onboarding")


class CliError(Exception):
    """A problem the user can fix; printed as one line."""


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


@contextmanager
def _database(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.db_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def _settings() -> Settings:
    return load_settings()


def _require_schema(factory: sessionmaker[Session]) -> None:
    from office.migrate import current_revision, head_revision

    bind = factory.kw["bind"]
    if current_revision(bind) != head_revision():
        raise CliError("the database is not up to date: run `office db upgrade` first")


# --- db ---------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database, or bring it to the latest version. Safe to run again."""
    from office.migrate import current_revision, head_revision, upgrade

    settings = _settings()
    engine = make_engine(settings.db_url)
    try:
        before = current_revision(engine)
        upgrade(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    if before == after:
        console.print(f"database already at {after} (latest is {head_revision()})")
    else:
        console.print(f"database upgraded from {before or 'empty'} to {after}")


# --- demo ----------------------------------------------------------------------------


@app.command()
def demo(
    seed_only: Annotated[
        bool, typer.Option("--seed-only", help="Build the demo practice but run no flows.")
    ] = False,
    seed: Annotated[int, typer.Option(help="Random seed for the synthetic practice.")] = 42,
) -> None:
    """Build a synthetic demo practice in OFFICE_HOME and run every flow once.

    The data is made up and the same each time. Running it again starts over; it
    refuses to touch a database that holds a real practice.
    """
    from app.demo import run_demo

    run_demo(_settings(), console=console, seed=seed, run_flows=not seed_only)


# --- serve ----------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address the web intake listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the web intake listens on.")] = 8400,
    prefect_port: Annotated[
        int,
        typer.Option(
            min=1, max=65535, help="Port of the Prefect server and UI started on 127.0.0.1."
        ),
    ] = SERVE_PORT,
    deployments: Annotated[
        Path, typer.Option(help="The prefect.yaml whose deployments are served.")
    ] = DEPLOYMENTS_FILE,
) -> None:
    """Run officeflows on this machine: the web intake plus every scheduled flow.

    One process serves the webhook endpoint (POST /webhooks/{source}, GET /healthz), runs
    every deployment in deployments/prefect.yaml on its schedules through Prefect, and
    sweeps stored items that were not handed over yet. Without PREFECT_API_URL it starts
    Prefect's server (UI and scheduler) with its state in OFFICE_HOME/prefect, and stops it
    on exit. Stop it with Ctrl-C or SIGTERM.
    """
    from app.serve import run_server

    settings = _settings()
    settings.require_webhook_secret()
    settings.require_secret_key()
    with _database(settings) as factory:
        _require_schema(factory)
    run_server(
        settings,
        host=host,
        port=port,
        prefect_port=prefect_port,
        deployments=deployments,
        console=console,
    )


# --- prefect --------------------------------------------------------------------------


@prefect_app.command("setup")
def prefect_setup() -> None:
    """Set each payer's concurrency and rate limits and the zombie-run automation on Prefect.

    Run it on one machine after `prefect deploy --all`, and again after editing payers;
    `office serve` does it when it starts. Uses PREFECT_API_URL, or this home's server.
    """
    import asyncio

    from app.prefect_handoff import prefect_api
    from app.prefect_setup import apply

    settings = _settings()
    with _database(settings) as factory:
        _require_schema(factory)
        with prefect_api(settings) as server:
            applied = asyncio.run(apply(settings, factory))
    console.print(
        f"{server.api_url}: {len(applied.limits)} payer limits "
        f"({', '.join(applied.limits) or 'no payers yet'}); automation "
        f"'{applied.automation}' (heartbeats every {applied.heartbeat_seconds} s)",
        markup=False,
        soft_wrap=True,
    )


# --- queue ------------------------------------------------------------------------------

app.add_typer(queue_app, name="queue")


# --- inbox --------------------------------------------------------------------------------


@inbox_app.command("list")
def inbox_list(
    status: Annotated[str | None, typer.Option(help="pending, processed or rejected.")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many.")] = 50,
) -> None:
    """List stored inbound items, newest first."""
    from office.models import InboxItem, InboxStatus

    with _database(_settings()) as factory, factory() as session:
        query = select(InboxItem).order_by(InboxItem.id.desc()).limit(limit)
        if status:
            try:
                query = query.where(InboxItem.status == InboxStatus(status))
            except ValueError:
                raise CliError("--status must be pending, processed or rejected") from None
        items = session.scalars(query).all()
    table = Table("id", "source", "status", "attempts", "received", "size", "reason", title="Inbox")
    for item in items:
        table.add_row(
            str(item.id),
            item.source,
            item.status.value,
            str(item.attempts),
            _when(item.received_at),
            f"{len(item.body)} B",
            item.reason or "",
        )
    console.print(table)


@inbox_app.command("show")
def inbox_show(item_id: Annotated[int, typer.Argument(help="Inbox item id.")]) -> None:
    """Show one stored item: its state and, for staff with database access, its body."""
    from office.models import InboxItem

    with _database(_settings()) as factory, factory() as session:
        item = session.get(InboxItem, item_id)
        if item is None:
            raise CliError(f"inbox item {item_id} does not exist")
        rows = [
            ("id", str(item.id)),
            ("source", item.source),
            ("key", item.idempotency_key),
            ("status", item.status.value),
            ("reason", item.reason or ""),
            ("attempts", str(item.attempts)),
            ("received", _when(item.received_at)),
            ("last attempt", _when(item.last_attempt_at)),
            ("processed", _when(item.processed_at)),
            ("content type", item.content_type or ""),
        ]
        body = item.body
    for label, value in rows:
        console.print(f"[bold]{label:>13}[/bold]  {value}")
    console.print("[bold]         body[/bold]")
    console.print(body.decode("utf-8", errors="replace"), markup=False)


@inbox_app.command("replay")
def inbox_replay(item_id: Annotated[int, typer.Argument(help="Inbox item id.")]) -> None:
    """Process a stored item again, now, on this machine (after fixing what rejected it),
    then start its follow-ups: as their deployments' runs when `office serve` or workers
    have registered them, else here, now."""
    from office.db import transaction
    from office.intake import process_item
    from office.ledgers import replay

    settings = _settings()
    with _database(settings) as factory:
        with transaction(factory) as session:
            replay(session, item_id)
        result = process_item(factory, item_id)
    if result.reason:
        console.print(f"inbox item {item_id} rejected: {result.reason}")
        raise typer.Exit(1)
    console.print(f"inbox item {item_id} {result.status.value}")
    if result.followup_ids:
        from app.cli_support import start_followups

        start_followups(settings, result.followup_ids)


# --- status ---------------------------------------------------------------------------------


@app.command()
def status() -> None:
    """Counts of what is stored, and open work items by kind."""
    from office.status import collect_status

    settings = _settings()
    with _database(settings) as factory, factory() as session:
        report = collect_status(session, notes_as_tasks=settings.queue_note_kinds_as_tasks)
    table = Table("what", "count", title="officeflows")
    for label, count in report.counts:
        table.add_row(label, str(count))
    console.print(table)
    work = Table("kind", "open", title="Open work items")
    for kind, count in report.open_work:
        work.add_row(kind, str(count))
    console.print(work if report.open_work else "no open work items")


# --- helpers -----------------------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OperationalError):
        return "cannot use the database: " + str(exc.orig).splitlines()[0]
    if isinstance(exc, SQLAlchemyError):
        return f"database error ({type(exc).__name__}); check `office db upgrade` has run"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


_USER_ERRORS: tuple[type[BaseException], ...] = (
    CliError,
    SettingsError,
    ValueError,
    OSError,
    PrefectServerError,
)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning every failure into one line and an exit code."""
    runner: Callable[..., Any] = app
    try:
        code = runner(args=argv, standalone_mode=False)
    except typer.Exit as exit_:
        sys.exit(exit_.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if os.environ.get("OFFICE_DEBUG"):
            raise
        if isinstance(exc, (*_USER_ERRORS, SQLAlchemyError)):
            err.print(f"error: {_one_line(exc)}", markup=False, soft_wrap=True)
        else:
            err.print(
                f"error: unexpected {type(exc).__name__}; rerun with OFFICE_DEBUG=1 for details",
                markup=False,
            )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
