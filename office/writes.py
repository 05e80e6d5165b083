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
dropped silently. Callers batch their rows (a hundred answers to a call) so that a write
is rare next to the requests around it.

The writes run on the event loop's own thread. Measured (eligibility, 2,000 checks, run_batch
against the mock clearinghouse, interleaved rounds): a writer thread cost more CPU than the
loop thread on both databases (SQLite 10.5 s against 9.9 s, PostgreSQL 11.1 s against 10.4 s,
medians) for no gain in wall time. On SQLite a commit is CPU work (WAL, synchronous=NORMAL),
and a thread only adds a GIL hand-off at every statement step, which on a quiet machine
queues behind the HTTP work (a convoy of seconds per thousand rows); on PostgreSQL the loop
waits for the commit's round trips, about a hundred short waits a run. If that ever
matters, this class is the one place to move the writes elsewhere: callers already treat
each write as a future.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Concatenate, ParamSpec, Self, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction

__all__ = ["Writer"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class Writer:
    """Runs database writes for async code, one at a time, in submission order."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._open = False

    async def __aenter__(self) -> Self:
        self._open = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.drain()
        self._open = False

    def submit(
        self, work: Callable[Concatenate[Session, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> asyncio.Future[_T]:
        """Run ``work(session, *args, **kwargs)`` in its own transaction, after every earlier
        write; the future holds what it returned or raised."""
        if not self._open:
            raise RuntimeError("Writer.submit outside `async with Writer(...)`")
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        try:
            with transaction(self._factory) as session:
                result = work(session, *args, **kwargs)
        except Exception as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future

    async def run(
        self, work: Callable[Concatenate[Session, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """`submit`, then wait for it: the result of ``work``, or what it raised."""
        return await self.submit(work, *args, **kwargs)

    async def drain(self) -> None:
        """Wait until every write submitted so far has finished and the callbacks added to
        their futures have run (failures stay with their futures)."""
        # Each write is done when `submit` returns; one turn of the loop runs the callbacks.
        await asyncio.sleep(0)
