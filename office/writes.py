"""Database writes from async code: one writer, in order, on a thread of its own.

Async code that stores as it goes (a payer batch storing answers, a send loop recording
what it sent) must neither block its event loop on a commit nor race its own writes.
`Writer` is the one way to do that, on SQLite and PostgreSQL alike::

    async with Writer(factory) as writer:
        writer.submit(store_answers, batch)          # starts after every earlier write
        claimed = await writer.run(claim, item_id)   # waits for this one (and those before)

Each call runs ``work(session, *args)`` in its own transaction (`office.db.transaction`),
committed when `work` returns and rolled back when it raises; calls run one at a time, in
the order they were made, so a later write never overtakes an earlier one. `submit` returns
an `asyncio.Future` at once; its result or exception is the caller's to read (a failure
nobody reads is logged by asyncio when the future is collected, never dropped silently).
Leaving the ``async with`` waits for every write still running.

Why a thread for both databases: the event loop keeps sending requests while a commit
waits on the disk or the server. On PostgreSQL the driver lets go of the GIL while the
server works; on SQLite each statement step does too, so writes are batched by the caller
(many rows per `work`) to keep the number of hand-offs small. Measured with
``python bench/run.py eligibility`` on both databases (see the README's figures).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction

__all__ = ["Writer"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class Writer:
    """Runs blocking database writes for async code, one at a time, in submission order."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._running: set[asyncio.Future[Any]] = set()

    async def __aenter__(self) -> Self:
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="db-writer")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.drain()
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None

    def submit(
        self, work: Callable[Concatenate[Session, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> asyncio.Future[_T]:
        """Start ``work(session, *args, **kwargs)`` in its own transaction after every earlier
        write; the future holds what it returned or raised."""
        if self._thread is None:
            raise RuntimeError("Writer.submit outside `async with Writer(...)`")
        future = asyncio.get_running_loop().run_in_executor(
            self._thread, self._in_transaction, work, args, kwargs
        )
        self._running.add(future)
        future.add_done_callback(self._running.discard)
        return future

    async def run(
        self, work: Callable[Concatenate[Session, _P], _T], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """`submit`, then wait for it: the result of ``work``, or what it raised."""
        return await self.submit(work, *args, **kwargs)

    async def drain(self) -> None:
        """Wait until every write submitted so far has finished (failures stay with their
        futures)."""
        if self._running:
            await asyncio.wait(list(self._running))

    def _in_transaction(
        self,
        work: Callable[..., _T],
        args: tuple[object, ...],
        kwargs: dict[str, object],
    ) -> _T:
        with transaction(self._factory) as session:
            return work(session, *args, **kwargs)
