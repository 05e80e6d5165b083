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

On SQLite the writes run on the event loop's own thread: a commit is CPU work (WAL,
synchronous=NORMAL), and a thread only adds a GIL hand-off at every statement step, which on
a quiet machine queues behind the HTTP work (measured, eligibility, 2,000 checks: a writer
thread cost 10.5 s of CPU against 9.9 s for no gain in wall time). On PostgreSQL they run
on one writer thread, in the same order: there each write is a dozen round trips to the
server (the answers, the work items they open and close, the commit), and on the loop's
thread every request of the batch waited for them, about forty times a run.
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
        self._open = False
        self._thread: ThreadPoolExecutor | None = None
        self._pending: set[asyncio.Future[Any]] = set()

    async def __aenter__(self) -> Self:
        if self._factory.kw["bind"].dialect.name != "sqlite":
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="office-writer")
        self._open = True
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
            self._open = False
            if self._thread is not None:
                self._thread.shutdown(wait=True)
                self._thread = None

    def submit(
        self, work: Callable[Concatenate[Session, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> asyncio.Future[_T]:
        """Run ``work(session, *args, **kwargs)`` in its own transaction, after every earlier
        write; the future holds what it returned or raised."""
        if not self._open:
            raise RuntimeError("Writer.submit outside `async with Writer(...)`")
        if self._thread is not None:
            job = functools.partial(self._write, work, *args, **kwargs)
            written: asyncio.Future[_T] = asyncio.wrap_future(self._thread.submit(job))
            self._pending.add(written)
            written.add_done_callback(self._pending.discard)
            return written
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        try:
            result = self._write(work, *args, **kwargs)
        except Exception as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future

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
        # On the loop's thread each write is done when `submit` returns; one turn of the loop
        # runs the callbacks. The writer thread's are waited for (their failures stay put).
        if self._pending:
            await asyncio.wait(set(self._pending))
        await asyncio.sleep(0)
