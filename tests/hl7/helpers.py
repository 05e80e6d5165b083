"""A listener on a loopback port for the length of one coroutine, and what the tests read back."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from integrations.hl7 import Dispatcher, serve_mllp
from office.models import InboxItem
from office.settings import Settings

T = TypeVar("T")
NOW = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)


async def with_listener(
    settings: Settings,
    factory: sessionmaker[Session],
    work: Callable[[int], Awaitable[T]],
    *,
    dispatcher: Dispatcher | None = None,
) -> T:
    """Run `work(port)` against a listener on a free loopback port, then stop the listener."""
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    local = settings.model_copy(update={"mllp_host": "127.0.0.1", "mllp_port": 0})
    server = asyncio.create_task(
        serve_mllp(local, factory, dispatcher, ready=lambda _h, port: ready.set_result(port))
    )
    done, _ = await asyncio.wait([ready, server], timeout=60, return_when=asyncio.FIRST_COMPLETED)
    assert ready in done, "the listener did not come up"
    try:
        return await asyncio.wait_for(work(ready.result()), timeout=120)
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)


def stored(factory: sessionmaker[Session]) -> list[InboxItem]:
    with factory() as session:
        return list(session.scalars(select(InboxItem).order_by(InboxItem.id)))
