"""The one writer for async code: in order, each call its own transaction, failures kept."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from office.ledgers.work import WorkNeeded, open_work_items
from office.models import WorkItem
from office.writes import Writer


def item(n: int) -> WorkNeeded:
    return WorkNeeded(kind="k", entity="appointment", entity_id=n, summary=f"s{n}", role="r")


def store(session: Session, n: int) -> int:
    (item_id, _created) = open_work_items(session, [item(n)])[item(n).dedupe_key]
    return item_id


def fail(session: Session, n: int) -> None:
    store(session, n)
    raise LookupError(f"refused {n}")


def count(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(WorkItem)) or 0


def test_writes_run_in_order_and_each_commits(factory: sessionmaker[Session]) -> None:
    seen: list[int] = []

    def record(session: Session, n: int) -> int:
        seen.append(count(factory))  # every earlier write is committed: another session sees it
        return store(session, n)

    async def main() -> list[int]:
        async with Writer(factory) as writer:
            started = [writer.submit(record, n) for n in range(20)]
            last = await writer.run(record, 20)
            return [*(await asyncio.gather(*started)), last]

    ids = asyncio.run(main())
    assert ids == sorted(ids), "a later write never overtakes an earlier one"
    assert seen == list(range(21))
    assert count(factory) == 21


def test_a_failed_write_rolls_back_and_stays_with_its_future(
    factory: sessionmaker[Session],
) -> None:
    async def main() -> tuple[BaseException | None, int]:
        async with Writer(factory) as writer:
            failed = writer.submit(fail, 1)
            after = await writer.run(store, 2)
            await writer.drain()
            return failed.exception(), after

    error, after = asyncio.run(main())
    assert isinstance(error, LookupError)
    assert after > 0
    assert count(factory) == 1, "the failed write's item was rolled back"


def test_run_raises_what_the_work_raised(factory: sessionmaker[Session]) -> None:
    async def main() -> None:
        async with Writer(factory) as writer:
            await writer.run(fail, 3)

    with pytest.raises(LookupError, match="refused 3"):
        asyncio.run(main())


def test_leaving_waits_for_every_write_and_its_callbacks(
    factory: sessionmaker[Session],
) -> None:
    called: list[int] = []

    async def main() -> None:
        async with Writer(factory) as writer:
            for n in range(5):
                writer.submit(store, n).add_done_callback(lambda _f, n=n: called.append(n))

    asyncio.run(main())
    assert count(factory) == 5
    assert called == [0, 1, 2, 3, 4]


def test_submit_outside_the_block_is_refused(factory: sessionmaker[Session]) -> None:
    async def main() -> None:
        Writer(factory).submit(store, 1)

    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(main())


def test_the_writes_leave_the_event_loop_for_one_writer_thread(
    factory: sessionmaker[Session],
) -> None:
    """A write is round trips (PostgreSQL) or statement steps and a commit (SQLite) that the
    requests around it must not wait for."""
    writing: list[int] = []

    def where(session: Session, n: int) -> int:
        writing.append(threading.get_ident())
        return store(session, n)

    async def main() -> int:
        async with Writer(factory) as writer:
            for n in range(3):
                writer.submit(where, n)
            await writer.drain()
            return threading.get_ident()

    loop_thread = asyncio.run(main())
    assert len(writing) == 3
    assert len(set(writing)) == 1, "one writer thread, in order"
    assert writing[0] != loop_thread
    assert count(factory) == 3
