"""A fresh office database for one benchmark round: emptied on PostgreSQL, then migrated."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["fresh_database"]


def fresh_database(url: str) -> Engine:
    """An engine on `url` with the schema at head; a PostgreSQL database is emptied first
    (a SQLite file is new in each round's own home)."""
    from sqlalchemy import text

    from office.db import make_engine
    from office.migrate import upgrade

    engine = make_engine(url)
    if url.startswith("postgresql"):
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    return engine
