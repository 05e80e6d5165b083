"""Engines and sessions, built from settings once per process.

SQLite gets WAL, foreign keys and a busy timeout so the web app, the sweeper
and a flow can share one file; PostgreSQL needs nothing special.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import Session, sessionmaker

from office.home import create_private_file

__all__ = ["make_engine", "make_sessionmaker", "transaction"]


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; for SQLite, make the directory and set the pragmas we rely on.

    Row values never appear in SQL error messages: they are patient data, and an
    exception's text ends up in Prefect's logs and states. `hide_parameters`
    drops the bound values SQLAlchemy would print, and `_without_row_values`
    the DETAIL line PostgreSQL adds ("Key (mrn)=(...)", "Failing row contains").
    """
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            # 0600 (and its folder 0700) before SQLite opens it; its -wal and -shm copy the mode.
            create_private_file(Path(database))
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "handle_error", _without_row_values)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


def _without_row_values(context: ExceptionContext) -> None:
    """Cut a PostgreSQL error down to its primary message, which names no values."""
    original = context.original_exception
    primary = getattr(getattr(original, "diag", None), "message_primary", None)
    if not primary:
        return
    original.args = (primary,)
    wrapped = context.sqlalchemy_exception
    if wrapped is not None:
        kind = type(original)
        wrapped.args = (f"({kind.__module__}.{kind.__name__}) {primary}", *wrapped.args[1:])


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Take over transaction control from pysqlite so BEGIN IMMEDIATE below is ours.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    # A write lock at BEGIN: two writers queue on busy_timeout instead of one
    # failing half-way with "database is locked" on lock upgrade.
    connection.exec_driver_sql("BEGIN IMMEDIATE")
