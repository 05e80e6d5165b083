"""Database writes from async code: one writer, in order, each call its own transaction.

Async code that stores as it goes (a payer batch storing answers, a send loop recording
what it sent) writes through `Writer`, on SQLite and PostgreSQL alike::

    async with Writer(factory) as writer:
        writer.submit(store_answers, batch)          # done when it returns; the future says how
        claimed = await writer.run(claim, item_id)   # the result, or what the work raised

Each call runs ``work(session, *args)`` in its own transaction (`office.db.transaction`),
committed when `work` returns and rolled back when it raises, one call at a time in the
order they were made. `submit` returns an `asyncio.Future` holding the result or the
exception; a failure nobody reads is logged by asyncio when the future is collected, never
dropped silently. Callers batch their rows (hundreds of answers to a call) so that a write
is rare next to the requests around it.

The writes run on one writer thread, in submission order, on SQLite and PostgreSQL alike,
so the requests around them go on while a write waits: on PostgreSQL for a dozen round trips
(the answers, the work items they open and close, the commit), on SQLite for the statements'
steps and the commit, which the driver runs without the GIL. On the loop's thread every
request of a payer batch waited for each write (measured, eligibility, 2,000 checks on
SQLite at load 5: writes held the loop 8-10 s of a 36-40 s run).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction

__all__ = ["Writer"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class Writer:
    """Runs database writes for async code, one at a time, in submission order."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._thread: ThreadPoolExecutor | None = None  # while open
        self._pending: set[asyncio.Future[Any]] = set()

    async def __aenter__(self) -> Self:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="office-writer")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            await self.drain()
        finally:
            if self._thread is not None:
                self._thread.shutdown(wait=True)
                self._thread = None

    def submit(
        self, work: Callable[Concatenate[Session, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> asyncio.Future[_T]:
        """Run ``work(session, *args, **kwargs)`` in its own transaction, after every earlier
        write; the future holds what it returned or raised."""
        if self._thread is None:
            raise RuntimeError("Writer.submit outside `async with Writer(...)`")
        job = functools.partial(self._write, work, *args, **kwargs)
        written: asyncio.Future[_T] = asyncio.wrap_future(self._thread.submit(job))
        self._pending.add(written)
        written.add_done_callback(self._pending.discard)
        return written

    def _write(
        self, work: Callable[Concatenate[Session, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        with transaction(self._factory) as session:
            return work(session, *args, **kwargs)

    async def run(
        self, work: Callable[Concatenate[Session, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """`submit`, then wait for it: the result of ``work``, or what it raised."""
        return await self.submit(work, *args, **kwargs)

    async def drain(self) -> None:
        """Wait until every write submitted so far has finished and the callbacks added to
        their futures have run (failures stay with their futures)."""
        # The writes are waited for (their failures stay put); one more turn of the loop runs
        # the callbacks added after ours.
        if self._pending:
            await asyncio.wait(set(self._pending))
        await asyncio.sleep(0)
