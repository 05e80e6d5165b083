"""`office eligibility`: check insurance now, and read a payer's 271 file.

`run` and `check` run the same Prefect flows as the schedules, in this process (they need the
Prefect API: PREFECT_API_URL, `office serve`'s server, or one started for the command). `parse`
needs neither the database nor Prefect. Flows are imported only when a command needs them, so
`office --help` stays quick and this module stays free of Prefect at import time.
"""

from __future__ import annotations

import json
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from app.cli_support import run_flow, settings_or_fail
from office.eligibility.codes import AAA_REASONS, EB01_CODES, EB06_TIME_PERIODS
from office.eligibility.types import EligibilityResult

__all__ = ["eligibility_app"]

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

eligibility_app = typer.Typer(
    help=(
        "Insurance eligibility: check patients' coverage with their payers before visits, "
        "and read the 271 answer files payers and clearinghouses send back."
    ),
    no_args_is_help=True,
)

# Exit status for input that is not a readable 271, as the shell convention for bad usage.
BAD_INPUT = 2


@eligibility_app.command("run")
def run(
    days_ahead: Annotated[
        int,
        typer.Option(
            "--days-ahead", min=0, max=60, help="Check visits from today through this many days."
        ),
    ] = 3,
    refresh_after_days: Annotated[
        int,
        typer.Option(
            "--refresh-after-days",
            min=0,
            help="Skip visits whose coverage was verified within this many days.",
        ),
    ] = 7,
) -> None:
    """Check every booked visit in the next few days now (what the weekday schedule runs).

    Prints counts by outcome and by alert; the alerts themselves are on `office queue`.
    """

    def start() -> Coroutine[Any, Any, dict[str, int]]:
        from flows.eligibility import verify_eligibility

        return verify_eligibility(days_ahead=days_ahead, refresh_after_days=refresh_after_days)

    _print_counts("Eligibility run", run_flow(settings_or_fail(), start))


@eligibility_app.command("check")
def check(
    appointment_id: Annotated[int, typer.Argument(help="The appointment's id in officeflows.")],
) -> None:
    """Check one appointment's insurance now (what a new booking triggers).

    Exits with status 1 when the appointment was not checked: it is cancelled, not found, or
    its patient has no active primary coverage on file.
    """

    def start() -> Coroutine[Any, Any, dict[str, int]]:
        from flows.eligibility import verify_appointment

        return verify_appointment(appointment_id)

    counts = run_flow(settings_or_fail(), start)
    if not counts.get("due"):
        err.print(
            f"appointment {appointment_id} was not checked: not found, not booked, or no "
            "active primary coverage",
            markup=False,
        )
        raise typer.Exit(1)
    _print_counts(f"Appointment {appointment_id}", counts)


@eligibility_app.command("parse")
def parse(
    file: Annotated[Path, typer.Argument(help="A 271 file, as the payer sent it.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array, one object per patient loop.")
    ] = False,
) -> None:
    """Read a 271 eligibility answer and print what it says, one patient loop at a time.

    Exits with status 2, and one line on stderr, when the file cannot be read or is not a 271.
    """
    from integrations.x12 import X12Error, parse_271, results_to_json

    try:
        data = file.read_bytes()
    except OSError as exc:
        _bad_input(f"cannot read {file}: {exc.strerror or type(exc).__name__}")
    try:
        results = parse_271(data)
    except X12Error as exc:
        _bad_input(f"{file} is not a readable 271: {exc}")
    if as_json:
        typer.echo(json.dumps(results_to_json(results), indent=2))
        return
    for number, result in enumerate(results, start=1):
        _print_result(number, len(results), result)


# --- running flows -------------------------------------------------------------------------------


def _print_counts(title: str, counts: Mapping[str, int]) -> None:
    table = Table("outcome", "count", title=title)
    for name in ("due", "checked", "active", "inactive", "unverified", "errors"):
        table.add_row(name, str(counts.get(name, 0)))
    console.print(table)
    alerts = {k.removeprefix("alert_"): v for k, v in counts.items() if k.startswith("alert_")}
    if not alerts:
        console.print("no alerts")
        return
    by_kind = Table("alert", "work items", title="Alerts raised")
    for kind, count in sorted(alerts.items()):
        by_kind.add_row(kind, str(count))
    console.print(by_kind)


# --- printing a 271 ----------------------------------------------------------------------------


def _bad_input(message: str) -> NoReturn:
    err.print(f"error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(BAD_INPUT)


def _print_result(number: int, total: int, result: EligibilityResult) -> None:
    who = "dependent" if result.is_dependent else "subscriber"
    console.print(f"[bold]Patient loop {number} of {total}[/bold] ({who})")
    facts = [
        ("status", result.status.value),
        ("member id", result.member_id or ""),
        ("plan", result.plan_name or ""),
        ("group", result.group_number or ""),
        ("insurance type", result.insurance_type or ""),
        ("plan dates", _span(result.plan_begin, result.plan_end)),
        ("eligibility dates", _span(result.eligibility_begin, result.eligibility_end)),
        ("PCP", _entity(result.pcp.name, result.pcp.identifier) if result.pcp else ""),
        ("other payers", ", ".join(_entity(e.name, e.identifier) for e in result.other_payers)),
        ("payer corrected data", "yes" if result.payer_corrected_data else ""),
    ]
    for label, value in facts:
        if value:
            console.print(f"  {label:>20}  {value}", markup=False)
    if result.benefits:
        console.print(_benefits_table(result))
    if result.aaa:
        rejections = Table("loop", "AAA", "reason", "follow-up", "action", title="Rejections")
        for item in result.aaa:
            rejections.add_row(
                item.loop,
                item.code,
                AAA_REASONS.get(item.code, ""),
                item.followup or "",
                item.action.value,
            )
        console.print(rejections)
    console.print()


def _benefits_table(result: EligibilityResult) -> Table:
    """One row per EB; columns no benefit fills are left out so the table fits a terminal."""
    columns: dict[str, list[str]] = {
        "benefit": [f"{EB01_CODES.get(b.code, b.code)} ({b.code})" for b in result.benefits],
        "level": [b.coverage_level or "" for b in result.benefits],
        "service types": [" ".join(b.service_types) for b in result.benefits],
        "network": [b.network for b in result.benefits],
        "period": [
            EB06_TIME_PERIODS.get(b.time_period or "", b.time_period or "") for b in result.benefits
        ],
        "amount": ["" if b.amount is None else format(b.amount, "f") for b in result.benefits],
        "percent": ["" if b.percent is None else format(b.percent, "f") for b in result.benefits],
        "auth": [
            {True: "yes", False: "no", None: ""}[b.authorization_required] for b in result.benefits
        ],
        "message": ["; ".join(b.messages) for b in result.benefits],
    }
    shown = {name: cells for name, cells in columns.items() if any(cells)}
    table = Table(*shown)
    for row in zip(*shown.values(), strict=True):
        table.add_row(*row)
    return table


def _span(begin: object, end: object) -> str:
    if begin is None and end is None:
        return ""
    return f"{begin or '?'} to {end or '?'}"


def _entity(name: str | None, identifier: str | None) -> str:
    return " ".join(part for part in (name, f"({identifier})" if identifier else None) if part)
