"""A fresh office database for one benchmark round (emptied on PostgreSQL, then migrated),
and seeding it in a child process."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["fresh_database", "in_child"]

T = TypeVar("T")


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


def in_child(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a fresh spawned process; its result, pickled back.

    Seeding tens of thousands of rows through the ORM raises a process's peak memory far
    above what the flow itself needs; done in a child, the benchmark's own peak (where the
    flow runs) is the flow's.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()
