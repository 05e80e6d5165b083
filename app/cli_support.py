"""What the CLI's command modules share; `app.cli` imports them, so they cannot import it."""

from __future__ import annotations

import typer
from rich.console import Console
from sqlalchemy import Engine

__all__ = ["require_schema"]

SCHEMA_NOT_CURRENT = "the database is not up to date: run `office db upgrade` first"


def require_schema(bind: Engine) -> None:
    """Stop with one line on stderr and exit status 1 unless the schema is at the latest
    migration: a command must not half-work against an older database."""
    from office.migrate import current_revision, head_revision

    if current_revision(bind) != head_revision():
        Console(stderr=True, highlight=False).print(f"error: {SCHEMA_NOT_CURRENT}", markup=False)
        raise typer.Exit(1)
