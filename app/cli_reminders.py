"""`office reminders`: send what is due now, or preview what the next hours would send."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from office.clock import as_utc
from office.settings import SettingsError, load_settings

__all__ = ["reminders_app"]

reminders_app = typer.Typer(
    help="Appointment reminders: send what is due, or preview what would be sent.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _console() -> Console:
    # Built per command, so the terminal width (COLUMNS) is read when it runs.
    return Console(highlight=False)


def _fail(message: str) -> NoReturn:
    Console(stderr=True, highlight=False).print(f"[red]error:[/red] {message}")
    raise typer.Exit(1)


@reminders_app.command("run")
def run(
    now: Annotated[
        datetime | None,
        typer.Option(help="Compute as of this instant (UTC unless it has an offset)."),
    ] = None,
) -> None:
    """Send every reminder and notice that is due, through the send-reminders flow."""
    try:
        settings = load_settings()
        settings.require_secret_key()
    except SettingsError as exc:
        _fail(str(exc))
    from app.prefect_handoff import prefect_api
    from flows.reminders import send_reminders
    from flows.runtime import use_office

    use_office(settings)
    with prefect_api(settings):
        counts = asyncio.run(send_reminders(now=as_utc(now, "UTC") if now else None))
    table = Table("what", "count", title="Reminder run")
    for name, value in counts.items():
        table.add_row(name, str(value))
    _console().print(table)


@reminders_app.command("preview")
def preview(
    hours: Annotated[float, typer.Option(min=0, max=24 * 14, help="How far ahead to look.")] = 48,
    now: Annotated[
        datetime | None,
        typer.Option(help="Preview as of this instant (UTC unless it has an offset)."),
    ] = None,
) -> None:
    """Show what would be sent in the next HOURS, to whom (masked), when, and what is skipped.

    Sends nothing and writes nothing.
    """
    from office.db import make_engine, make_sessionmaker
    from office.models import utcnow
    from office.reminders.preview import preview as plan_preview

    try:
        settings = load_settings()
    except SettingsError as exc:
        _fail(str(exc))
    engine = make_engine(settings.db_url)
    try:
        moment = as_utc(now, "UTC") if now else utcnow()
        lines = plan_preview(make_sessionmaker(engine), now=moment, hours=hours)
    finally:
        engine.dispose()
    console = _console()
    if not lines:
        console.print(f"nothing to send in the next {hours:g} hours")
        return
    table = Table(
        "local time",
        "appointment",
        "message",
        "channel",
        "to",
        "outcome",
        title=f"Reminders in the next {hours:g} hours",
    )
    sending = 0
    for line in lines:
        outcome = "send" if line.skip is None else f"skip: {line.skip}"
        sending += line.skip is None
        table.add_row(
            line.local.strftime("%a %b %d %H:%M %Z"),
            str(line.appointment_id),
            f"{line.kind} {line.offset}" if line.kind == "reminder" else line.kind,
            line.channel,
            line.to,
            outcome,
        )
    console.print(table)
    console.print(f"{sending} to send, {len(lines) - sending} skipped")
