"""`office serve`: the web intake, the inbox sweeper and Prefect serving, in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from datetime import timedelta

import uvicorn
from rich.console import Console

from app.webapp import Dispatcher, create_app
from office.db import make_engine, make_sessionmaker
from office.intake import due_for_sweep
from office.settings import Settings

__all__ = ["run_server", "sweep_forever", "sweep_once"]

log = logging.getLogger("app.serve")


async def sweep_once(factory: object, dispatcher: Dispatcher) -> int:
    """Dispatch every pending item nobody picked up; returns how many were handed over."""
    from sqlalchemy.orm import Session, sessionmaker

    assert isinstance(factory, sessionmaker)
    typed: sessionmaker[Session] = factory

    def due() -> list[tuple[int, int]]:
        from office.models import InboxItem

        with typed() as session:
            ids = due_for_sweep(session, grace=timedelta(seconds=30))
            return [(i, session.get_one(InboxItem, i).attempts) for i in ids]

    handed = 0
    # A new key per sweep window: a run that was created but never ran (its server
    # went away) must not swallow the retry.
    window = int(time.time() // 600)
    for inbox_id, attempts in await asyncio.to_thread(due):
        try:
            await dispatcher(inbox_id, f"inbox-{inbox_id}-{attempts}-sweep-{window}")
            handed += 1
        except Exception:
            log.warning("sweeper: inbox %s still pending; Prefect unreachable", inbox_id)
            break
    return handed


async def sweep_forever(factory: object, dispatcher: Dispatcher, interval: float = 60.0) -> None:
    await asyncio.sleep(interval / 2)  # let the deployments register first
    while True:
        with contextlib.suppress(Exception):
            count = await sweep_once(factory, dispatcher)
            if count:
                log.info("sweeper handed %d pending inbox items to Prefect", count)
        await asyncio.sleep(interval)


def run_server(settings: Settings, *, host: str, port: int, console: Console) -> None:
    from app.prefect_handoff import prefect_api

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    with prefect_api() as api_url:
        console.print(f"Prefect API at {api_url}")
        asyncio.run(_serve(settings, host=host, port=port, console=console))


async def _serve(settings: Settings, *, host: str, port: int, console: Console) -> None:
    from app.prefect_handoff import dispatch_inbox, serve_all

    engine = make_engine(settings.db_url)
    factory = make_sessionmaker(engine)
    app = create_app(settings, factory, dispatcher=dispatch_inbox)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    console.print(f"officeflows: intake on http://{host}:{port}, flows served through Prefect")
    tasks = [
        asyncio.create_task(server.serve(), name="web"),
        asyncio.create_task(serve_all(settings.practice_timezone), name="prefect"),
        asyncio.create_task(sweep_forever(factory, dispatch_inbox), name="sweeper"),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        engine.dispose()
