"""`office reminders`: send what is due now, or preview what the next hours would send."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from app.cli_support import (
    command_group,
    console,
    database,
    print_counts,
    run_flow,
    settings_or_fail,
)
from office.clock import as_utc

__all__ = ["reminders_app"]

reminders_app = command_group(
    "Appointment reminders: send what is due, or preview what would be sent."
)


@reminders_app.command("run")
def run(
    now: Annotated[
        datetime | None,
        typer.Option(help="Compute as of this instant (UTC unless it has an offset)."),
    ] = None,
) -> None:
    """Send every reminder and notice that is due, through the send-reminders flow."""
    from flows.reminders import send_reminders

    counts = run_flow(
        settings_or_fail(),
        lambda: send_reminders(now=as_utc(now, "UTC") if now else None),
        needs_secret_key=True,
    )
    print_counts("Reminder run", counts)


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
    from office.models import utcnow
    from office.reminders.preview import preview as plan_preview

    with database(settings_or_fail()) as factory:
        moment = as_utc(now, "UTC") if now else utcnow()
        lines = plan_preview(factory, now=moment, hours=hours)
    out = console()
    if not lines:
        out.print(f"nothing to send in the next {hours:g} hours")
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
    out.print(table)
    out.print(f"{sending} to send, {len(lines) - sending} skipped")
