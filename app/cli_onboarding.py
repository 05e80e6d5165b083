"""`office onboarding` (templates, status, completing items, closed days, the follow-up) and
`office staff add` / `office staff offboard`, which start the onboarding flows."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.cli_staff import staff_app
from app.cli_support import (
    command_group,
    console,
    database,
    fail,
    print_counts,
    run_flow,
    settings_or_fail,
)
from office.clock import as_utc
from office.db import transaction
from office.models import ClosedDay, Staff, StaffStatus, utcnow
from office.onboarding import (
    CompletionError,
    Evidence,
    OnboardingError,
    TemplateError,
    complete_item,
    load_templates,
    skip_item,
)
from office.onboarding.complete import MAX_EVIDENCE_BYTES, evidence_dir
from office.onboarding.templates import CHECKLIST_ROLES, DEFAULT_DIRECTORY
from office.onboarding.views import progress
from office.settings import Settings, SettingsError

__all__ = ["onboarding_app"]

onboarding_app = command_group("Staff onboarding and offboarding checklists.")
templates_app = command_group("The role checklist templates.")
closed_app = command_group("Days the practice is closed besides the federal holidays.")
onboarding_app.add_typer(templates_app, name="templates")
onboarding_app.add_typer(closed_app, name="closed-days")


def _today(settings: Settings) -> date:
    return utcnow().astimezone(ZoneInfo(settings.practice_timezone)).date()


# --- templates -------------------------------------------------------------------------------


@templates_app.command("check")
def templates_check(
    directory: Annotated[
        Path, typer.Option(help="The templates' folder.", file_okay=False)
    ] = DEFAULT_DIRECTORY,
) -> None:
    """Validate every checklist template; each problem names its file, item and field."""
    try:
        templates = load_templates(directory)
    except TemplateError as exc:
        for problem in exc.problems:
            Console(stderr=True, highlight=False).print(f"error: {problem}", markup=False)
        raise typer.Exit(1) from None
    table = Table("role", "items", "required by law", "grant access", "recurring", "version")
    for role in CHECKLIST_ROLES:
        template = templates[role]
        table.add_row(
            role,
            str(len(template.items)),
            str(sum(i.required_by_law for i in template.items)),
            str(sum(i.access is not None for i in template.items)),
            str(sum(i.recurrence_months is not None for i in template.items)),
            template.version,
        )
    console().print(table)
    console().print(f"{len(templates)} templates valid")


# --- status and items ------------------------------------------------------------------------


@onboarding_app.command("status")
def status() -> None:
    """Per person: % done, overdue, next due, blocked, certifications expiring in 60 days."""
    settings = settings_or_fail()
    today = _today(settings)
    with database(settings) as factory, factory() as session:
        found = progress(session, today)
    if not found:
        console().print("no open checklists and no certification expiring in 60 days")
        return
    table = Table(
        "staff",
        "name",
        "role",
        "checklist",
        "from",
        "done",
        "overdue",
        "blocked",
        "next due",
        "expiring",
        title=f"Checklists on {today:%a %d %b %Y}",
    )
    for person in found:
        table.add_row(
            str(person.staff_id),
            person.name,
            person.role,
            person.kind,
            f"{person.anchor_on:%d %b}" if person.anchor_on else "",
            f"{person.percent}% ({person.done}/{person.total})" if person.total else "",
            str(person.overdue),
            str(person.blocked),
            f"{person.next_due:%a %d %b} {person.next_title}" if person.next_due else "",
            f"{person.expiring}" + (f" ({person.expired} expired)" if person.expired else ""),
        )
    console().print(table)


@onboarding_app.command("complete")
def complete(
    item_id: Annotated[int, typer.Argument(help="The checklist item's id.")],
    evidence: Annotated[
        Path | None,
        typer.Option(
            help="The certificate or signed form (PDF, PNG, JPEG, text; 10 MB).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    course_version: Annotated[str | None, typer.Option(help="The course's version.")] = None,
    signature: Annotated[str | None, typer.Option(help="The signer's name.")] = None,
    on: Annotated[
        datetime | None, typer.Option(help="Completed on this day (default today).")
    ] = None,
    by: Annotated[str, typer.Option(help="Who completed it, for the audit.")] = "cli",
) -> None:
    """Mark an item done with its evidence; the file is kept 0600 under OFFICE_HOME."""
    settings = settings_or_fail()
    data = None
    if evidence is not None:
        if evidence.stat().st_size > MAX_EVIDENCE_BYTES:
            fail("the evidence file is larger than 10 MB")
        data = evidence.read_bytes()
    given = Evidence(
        completed_on=on.date() if on else _today(settings),
        file_bytes=data,
        file_name=evidence.name if evidence else None,
        course_version=course_version,
        signature=signature,
    )
    with database(settings) as factory:
        try:
            with transaction(factory) as session:
                item = complete_item(
                    session,
                    item_id,
                    given,
                    by=f"cli:{by}"[:80],
                    via="cli",
                    now=utcnow(),
                    evidence_dir=evidence_dir(settings.home),
                )
                digest = item.evidence.get("sha256")
        except CompletionError as exc:
            fail(str(exc))
    console().print(
        f"item {item_id} done" + (f"; evidence sha256 {digest}" if digest else ""), markup=False
    )


@onboarding_app.command("skip")
def skip(
    item_id: Annotated[int, typer.Argument(help="The checklist item's id.")],
    reason: Annotated[str, typer.Option(help="Why it does not apply.")],
) -> None:
    """Say an item does not apply (never one required by law)."""
    settings = settings_or_fail()
    with database(settings) as factory:
        try:
            with transaction(factory) as session:
                skip_item(session, item_id, reason=reason, by="cli", via="cli", now=utcnow())
        except CompletionError as exc:
            fail(str(exc))
    console().print(f"item {item_id} skipped")


@onboarding_app.command("followup")
def followup(
    now: Annotated[
        datetime | None,
        typer.Option(help="Decide as of this instant (UTC unless it has an offset)."),
    ] = None,
) -> None:
    """Run the daily follow-up now, through the onboarding-followup flow."""
    from flows.onboarding import onboarding_followup

    counts = run_flow(
        settings_or_fail(),
        lambda: onboarding_followup(now=as_utc(now, "UTC") if now else None),
        needs_secret_key=True,
    )
    print_counts("Onboarding follow-up", counts)


# --- closed days -----------------------------------------------------------------------------


@closed_app.command("add")
def closed_add(
    day: Annotated[datetime, typer.Argument(help="The day, YYYY-MM-DD.", formats=["%Y-%m-%d"])],
    note: Annotated[str | None, typer.Option(help="Why (shown to staff).")] = None,
) -> None:
    """The practice is closed that day: not a business day for due dates and escalation."""
    settings = settings_or_fail()
    with database(settings) as factory:
        try:
            with transaction(factory) as session:
                session.add(ClosedDay(day=day.date(), note=note, added_by="cli"))
        except IntegrityError:
            fail(f"{day:%Y-%m-%d} is already a closed day")
    console().print(f"{day:%a %d %b %Y} is a closed day")


@closed_app.command("list")
def closed_list() -> None:
    """The practice's closed days from today on."""
    settings = settings_or_fail()
    with database(settings) as factory, factory() as session:
        rows = session.execute(
            select(ClosedDay.day, ClosedDay.note)
            .where(ClosedDay.day >= _today(settings))
            .order_by(ClosedDay.day)
        ).all()
    if not rows:
        console().print("no closed days ahead (US federal holidays are always off)")
        return
    for day, note in rows:
        console().print(f"{day:%a %d %b %Y}  {note or ''}".rstrip(), markup=False)


# --- staff add / offboard --------------------------------------------------------------------


@staff_app.command("add")
def staff_add(
    email: Annotated[str, typer.Argument(help="The person's work email.")],
    first_name: Annotated[str, typer.Option(help="First name.")],
    last_name: Annotated[str, typer.Option(help="Last name.")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(CHECKLIST_ROLES)}.")],
    start_date: Annotated[
        datetime, typer.Option(help="Day one, YYYY-MM-DD.", formats=["%Y-%m-%d"])
    ],
    manager_id: Annotated[int | None, typer.Option(help="Their manager's staff id.")] = None,
) -> None:
    """Add a staff member and start their onboarding (the start-onboarding flow)."""
    settings = settings_or_fail()
    if role not in CHECKLIST_ROLES:
        fail(f"role must be one of {', '.join(CHECKLIST_ROLES)}")
    try:
        settings.require_secret_key()
    except SettingsError as exc:
        fail(str(exc))
    with database(settings) as factory:
        try:
            with transaction(factory) as session:
                if manager_id is not None and session.get(Staff, manager_id) is None:
                    fail(f"no staff member {manager_id}")
                person = Staff(
                    first_name=first_name.strip(),
                    last_name=last_name.strip(),
                    email=email.strip().lower(),
                    role=role,
                    manager_id=manager_id,
                    start_date=start_date.date(),
                    status=StaffStatus.PENDING,
                )
                session.add(person)
                session.flush()
                staff_id = person.id
        except IntegrityError:
            fail("a staff member already has this email")
    counts = _run_flow(settings, "start", staff_id)
    console().print(
        f"staff {staff_id} added; checklist {counts['checklist_id']} with {counts['items']} "
        f"items, {counts['messages']} messages queued"
    )


@staff_app.command("offboard")
def staff_offboard(
    staff_id: Annotated[int, typer.Argument(help="The staff member's id.")],
    last_day: Annotated[
        datetime, typer.Option(help="Their last day, YYYY-MM-DD.", formats=["%Y-%m-%d"])
    ],
) -> None:
    """A departure: revoke every access the onboarding granted, due on the last day."""
    settings = settings_or_fail()
    try:
        settings.require_secret_key()
    except SettingsError as exc:
        fail(str(exc))
    with database(settings) as factory, factory() as session:
        if session.get(Staff, staff_id) is None:
            fail(f"no staff member {staff_id}")
    counts = _run_flow(settings, "offboard", staff_id, last_day.date())
    console().print(
        f"offboarding checklist {counts['checklist_id']}: {counts['items']} accesses to revoke "
        f"by {last_day:%a %d %b %Y}; each counts as revoked once its owner confirms it"
    )


def _run_flow(
    settings: Settings, which: str, staff_id: int, last_day: date | None = None
) -> dict[str, int]:
    from app.prefect_handoff import prefect_api
    from flows.onboarding import start_offboarding_flow, start_onboarding_flow
    from flows.runtime import use_office

    use_office(settings)
    try:
        with prefect_api(settings):
            if which == "start":
                return asyncio.run(start_onboarding_flow(staff_id))
            assert last_day is not None
            return asyncio.run(start_offboarding_flow(staff_id, last_day))
    except (OnboardingError, TemplateError) as exc:
        fail(str(exc))
