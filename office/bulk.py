"""Inserting many rows of one table at once, each column bound as SQLAlchemy would bind it.

On SQLite the rows go through the driver many to an INSERT: sqlite3's `executemany` binds
and steps its statement once per row, and SQLAlchemy's per-row parameter handling on top
of it cost as much again; one statement with many rows of VALUES steps once for all of
them. Values still pass each column type's own bind processing (dates, instants,
booleans, enums, amounts), so what is stored is what `insert(table)` would store.
Elsewhere (PostgreSQL) it is `insert(table)` with the rows, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.orm import Session

__all__ = ["SQLITE_PARAMETERS", "insert_many"]

SQLITE_PARAMETERS = 999
"""Bound parameters per SQLite statement: the limit of the oldest builds still about."""


def insert_many(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` into `table`: each row sets the same columns, every column with a
    Python-side default among them (none is filled in here).

    Raises:
        ValueError: the rows leave out a column that has a default.
    """
    if not rows:
        return
    names = list(rows[0])
    missing = sorted(c.name for c in table.c if c.default is not None and c.name not in names)
    if missing:
        raise ValueError(f"rows for {table.name} leave out {', '.join(missing)} (defaults)")
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "sqlite":
        session.execute(insert(table), list(rows))
        return
    processors = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    ]
    # Column by column: the values of a column with bind processing go through it, the
    # others (text, integers) as they are; rows are then cut from the columns.
    columns = [
        [row[name] for row in rows] if process is None else _processed(rows, name, process)
        for name, process in zip(names, processors, strict=True)
    ]
    values = list(zip(*columns, strict=True))
    per = max(1, SQLITE_PARAMETERS // len(names))
    quote = dialect.identifier_preparer.quote
    head = f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, names))}) VALUES "
    one = "(" + ", ".join("?" for _ in names) + ")"
    full = head + ", ".join([one] * per)
    raw = connection.connection.driver_connection
    assert raw is not None, "a checked-out connection has its driver's"
    for start in range(0, len(values), per):
        part = values[start : start + per]
        statement = full if len(part) == per else head + ", ".join([one] * len(part))
        raw.execute(statement, list(chain.from_iterable(part)))


def _processed(
    rows: Sequence[Mapping[str, Any]], name: str, process: Callable[[Any], Any]
) -> list[Any]:
    """One column's values through its bind processing; a value the same object as the
    row before's (a batch's timestamp, a flag) is processed once."""
    out: list[Any] = []
    last: Any = _NOTHING
    done: Any = None
    for row in rows:
        value = row[name]
        if value is not last:
            last, done = value, (None if value is None else process(value))
        out.append(done)
    return out


_NOTHING = object()
