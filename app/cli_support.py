"""What the CLI's command modules share; `app.cli` imports them, so they cannot import it.

A command module builds its group with `command_group`, prints through `console()`,
ends with one line through `fail`, and reaches the database through `database`, which
refuses a schema that is not at the latest migration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from office.db import make_engine, make_sessionmaker
from office.settings import Settings, SettingsError, load_settings

__all__ = [
    "command_group",
    "console",
    "database",
    "fail",
    "print_counts",
    "require_schema",
    "run_flow",
    "settings_or_fail",
]

SCHEMA_NOT_CURRENT = "the database is not up to date: run `office db upgrade` first"


def command_group(help: str, **options: Any) -> typer.Typer:
    """A sub-command group as every `office` group is made: no shell completion, no pretty
    tracebacks (`app.cli.main` turns failures into one line), its help when called bare."""
    settings: dict[str, Any] = {"no_args_is_help": True} | options
    return typer.Typer(help=help, add_completion=False, pretty_exceptions_enable=False, **settings)


def console(*, stderr: bool = False) -> Console:
    """Standard output (or error); built per command, so the terminal width (COLUMNS) is
    read when it runs."""
    return Console(stderr=stderr, highlight=False)


def fail(message: str) -> NoReturn:
    """One line on stderr, exit status 1."""
    console(stderr=True).print(f"error: {message}", markup=False)
    raise typer.Exit(1)


def settings_or_fail() -> Settings:
    """The settings from OFFICE_* variables, or one line saying which one is wrong."""
    try:
        return load_settings()
    except SettingsError as exc:
        fail(str(exc))


@contextmanager
def database(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """Sessions on the office database, once its schema is known to be current."""
    engine = make_engine(settings.db_url)
    try:
        require_schema(engine)
        yield make_sessionmaker(engine)
    finally:
        engine.dispose()


def require_schema(bind: Engine) -> None:
    """Stop with one line on stderr and exit status 1 unless the schema is at the latest
    migration: a command must not half-work against an older database."""
    from office.migrate import current_revision, head_revision

    if current_revision(bind) != head_revision():
        fail(SCHEMA_NOT_CURRENT)


def run_flow(
    settings: Settings,
    start: Callable[[], Coroutine[Any, Any, dict[str, int]]],
    *,
    needs_secret_key: bool = False,
) -> dict[str, int]:
    """Run one flow to its end, now, against this machine's settings and database, through
    the Prefect API this home has (office serve's, or one started for the command)."""
    from app.prefect_handoff import prefect_api
    from flows.runtime import use_office

    if needs_secret_key:
        try:
            settings.require_secret_key()
        except SettingsError as exc:
            fail(str(exc))
    engine = make_engine(settings.db_url)
    try:
        require_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    use_office(settings, engine)
    with prefect_api(settings):
        return asyncio.run(start())


def print_counts(title: str, counts: Mapping[str, int]) -> None:
    """A flow's counts as a two-column table."""
    table = Table("what", "count", title=title)
    for name, value in counts.items():
        table.add_row(name, str(value))
    console().print(table)


def start_followups(settings: Settings, followup_ids: tuple[int, ...]) -> None:
    """Start follow-ups this command recorded (as their deployments' runs when `office serve`
    or workers serve them, else here, now), then show where each stands."""
    from sqlalchemy import select

    from flows.followups import start_recorded
    from office.models import Followup

    async def start() -> dict[str, int]:
        started = await start_recorded(followup_ids)
        return {"started": len(started)}

    run_flow(settings, start)
    with database(settings) as factory, factory() as session:
        rows = session.scalars(
            select(Followup).where(Followup.id.in_(followup_ids)).order_by(Followup.id)
        ).all()
    for row in rows:
        where = f", run {row.run_id}" if row.run_id else ""
        why = f" ({row.error})" if row.error else ""
        console().print(
            f"follow-up {row.name} for appointment {row.entity_id}: {row.status.value}{why}, "
            f"attempt {row.attempts}{where}",
            markup=False,
            soft_wrap=True,
        )
