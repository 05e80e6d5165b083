"""`office queue`: the board's Today in a terminal, and what a person does to an item.

Same read model as the board (`office.workqueue.views.today`): items grouped by priority
then role, each with the patient, the visit's local time and clinic, what is wrong and
what to do, and the counts per kind. Acting on an item goes through
`office.workqueue.actions`, which writes its history (source "cli").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from app.cli_support import command_group, console, database, fail, settings_or_fail
from office.db import transaction
from office.ledgers import LedgerError
from office.models import Location, Staff
from office.settings import Settings
from office.workqueue import actions, views
from office.workqueue.kinds import ROLE_LABELS
from office.workqueue.views import ItemRow, TodayView

__all__ = ["queue_app"]

queue_app = command_group(
    "The work queue: what needs a person, across all flows, most urgent first.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@contextmanager
def _database() -> Iterator[tuple[Settings, sessionmaker[Session]]]:
    settings = settings_or_fail()
    with database(settings) as factory:
        yield settings, factory


@queue_app.callback()
def queue(
    ctx: typer.Context,
    role: Annotated[str | None, typer.Option(help="Only items for this role.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only items of this kind.")] = None,
    clinic: Annotated[
        str | None, typer.Option(help="Only items with a visit at this clinic (id or name).")
    ] = None,
    viewer: Annotated[
        str | None,
        typer.Option("--as", help="See it as this role sees it (default: everything)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many items.")] = 50,
) -> None:
    """List open items, grouped by priority then role, with the counts per kind."""
    if ctx.invoked_subcommand is not None:
        return
    with _database() as (settings, factory), factory() as session:
        clinic_id = _clinic(session, clinic) if clinic else None
        view = views.today(
            session,
            viewer_role=viewer,
            clinic_id=clinic_id,
            role=role,
            kind=kind,
            limit=limit,
            notes_as_tasks=settings.queue_note_kinds_as_tasks,
        )
    _print_today(console(), view, ZoneInfo(settings.practice_timezone))


@queue_app.command("show")
def show(item_id: Annotated[int, typer.Argument(help="Work item id.")]) -> None:
    """One item's history: who did what, when."""
    with _database() as (settings, factory), factory() as session:
        try:
            entries = views.history(session, item_id)
        except views.NotFound as exc:
            fail(str(exc))
    zone = ZoneInfo(settings.practice_timezone)
    table = Table("when", "who", "what", "before", "after", title=f"Work item {item_id}")
    for entry in entries:
        table.add_row(
            _when(entry.at, zone), entry.by, entry.what, entry.before or "", entry.after or ""
        )
    console().print(table)


@queue_app.command("take")
def take(
    item_id: Annotated[int, typer.Argument(help="Work item id.")],
    by: Annotated[str, typer.Option(help="The staff member taking it (id or email).")],
) -> None:
    """Assign an item to yourself."""
    with _database() as (_settings, factory), transaction(factory) as session:
        staff_id = _staff(session, by)
        state = _act(lambda: actions.take(session, item_id, staff_id=staff_id, source="cli"))
    console().print(f"work item {state.id} taken by staff {staff_id}")


@queue_app.command("close")
def close(
    item_id: Annotated[int, typer.Argument(help="Work item id.")],
    by: Annotated[str, typer.Option(help="Who closes it (name, staff id or email).")],
    note: Annotated[str | None, typer.Option(help="What was done.")] = None,
) -> None:
    """Mark an item done, with a note on what was done."""
    with _database() as (_settings, factory), transaction(factory) as session:
        who = _actor(session, by)
        state = _act(lambda: actions.close(session, item_id, by=who, note=note, source="cli"))
    console().print(f"work item {state.id} done")


@queue_app.command("dismiss")
def dismiss(
    item_id: Annotated[int, typer.Argument(help="Work item id.")],
    by: Annotated[str, typer.Option(help="Who dismisses it (name, staff id or email).")],
    reason: Annotated[str, typer.Option(help="Why there is nothing to do.")],
) -> None:
    """Dismiss an item: not a problem, or nothing to do. A reason is required."""
    with _database() as (_settings, factory), transaction(factory) as session:
        who = _actor(session, by)
        state = _act(lambda: actions.dismiss(session, item_id, by=who, reason=reason, source="cli"))
    console().print(f"work item {state.id} dismissed")


def _act(action: Callable[[], actions.ItemState]) -> actions.ItemState:
    try:
        return action()
    except LedgerError as exc:
        fail(str(exc))


def _staff(session: Session, who: str) -> int:
    """A staff member by id or email."""
    found = _find_staff(session, who)
    if found is None:
        fail(f"no staff member {who!r}: give a staff id or email")
    return found


def _actor(session: Session, who: str) -> int | str:
    """A staff id when `who` names a staff member, else the name as given."""
    found = _find_staff(session, who)
    return found if found is not None else who


def _find_staff(session: Session, who: str) -> int | None:
    text = who.strip()
    condition = Staff.email == text.lower()
    if text.isdigit():
        condition = or_(condition, Staff.id == int(text))
    return session.scalar(select(Staff.id).where(condition).limit(1))


def _clinic(session: Session, wanted: str) -> int:
    condition = Location.name == wanted
    if wanted.isdigit():
        condition = or_(condition, Location.id == int(wanted))
    found = session.scalar(select(Location.id).where(condition).limit(1))
    if found is None:
        fail(f"no clinic {wanted!r}: give a location id or name")
    return found


# --- printing ---------------------------------------------------------------------------------


def _print_today(console: Console, view: TodayView, zone: ZoneInfo) -> None:
    if view.total == 0:
        console.print("no open work items")
        return
    for group in view.groups:
        for role in group.roles:
            table = Table(
                "#",
                "patient",
                "visit",
                "what is wrong",
                "what to do",
                "due",
                title=f"{group.label} · {role.label} ({len(role.items)})",
                title_justify="left",
                show_lines=True,
            )
            for item in role.items:
                table.add_row(*_cells(item, zone))
            console.print(table)
    counts = Table("kind", "priority", "for", "open", "overdue", title="Open items by kind")
    for count in view.counts:
        counts.add_row(
            f"{count.title} ({count.kind})",
            count.priority.value,
            ROLE_LABELS.get(count.role, count.role),
            str(count.count),
            str(count.overdue) if count.overdue else "",
        )
    console.print(counts)
    more = (
        f"; {view.total - view.shown} more (--limit, --role, --kind)"
        if view.shown < view.total
        else ""
    )
    console.print(f"{view.shown} shown of {view.total} open, {view.overdue} overdue{more}")


def _cells(item: ItemRow, zone: ZoneInfo) -> list[str]:
    patient = f"{item.patient_name}\n{item.mrn}" if item.patient_name else "-"
    if item.visit_at is not None:
        visit = f"{_local(item.visit_at)}\n{item.clinic}"
        if len(item.visits) > 1:
            visit += f"\n+{len(item.visits) - 1} more visit" + ("s" if len(item.visits) > 2 else "")
    else:
        visit = "-"
    wrong = f"{item.title}\n{item.summary}" if item.summary != item.title else item.title
    due = _when(item.due_at, zone) if item.due_at else ""
    if item.overdue:
        due += "\noverdue"
    if item.assignee_name:
        due += f"\ntaken by {item.assignee_name}"
    return [str(item.id), patient, visit, wrong, item.next_step, due]


def _local(moment: datetime) -> str:
    """A time in its own (clinic's) zone: "Tue Dec 03 09:00 CST"."""
    return moment.strftime("%a %b %d %H:%M %Z")


def _when(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%a %b %d %H:%M %Z")
