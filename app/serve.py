"""`office serve`: the web intake, the HL7 listener, the mailbox watcher, the inbox sweeper
and Prefect serving, in one process.

The main thread owns the Prefect server (a child process, `app.prefect_server`) and the
signals; the service (uvicorn, the MLLP listener, the IMAP IDLE watcher, Prefect's runner,
the sweeper) runs on one event loop in a
second thread, where neither uvicorn nor the runner installs signal handlers of its own.
SIGINT or SIGTERM asks the service to stop in order: the intake finishes its requests, the
runner pauses the schedules, the sweeper ends; then the Prefect server stops, and one line
says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn
from rich.console import Console

from app.prefect_server import PrefectServer, PrefectServerError, port_taken
from app.webapp import Dispatcher, create_app
from office.db import make_engine, make_sessionmaker
from office.intake import due_for_sweep
from office.settings import Settings

if TYPE_CHECKING:
    from app.prefect_handoff import DeploymentSpec

__all__ = ["run_server", "schedule_zone", "sweep_forever", "sweep_once"]

log = logging.getLogger("app.serve")

INTAKE_GRACE_SECONDS = 5
WATCH_SECONDS = 1.0


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


def run_server(
    settings: Settings,
    *,
    host: str,
    port: int,
    prefect_port: int | None,
    deployments: Path,
    console: Console,
) -> None:
    """Serve until SIGINT or SIGTERM, then stop everything this process started."""
    from app.prefect_handoff import load_specs, prefect_api

    if port_taken(host, port):
        raise PrefectServerError(
            f"port {port} on {host} is taken, so the intake cannot listen there: stop what "
            "listens on it, or choose another with --port"
        )
    if settings.mllp_port and port_taken(settings.mllp_host, settings.mllp_port):
        raise PrefectServerError(
            f"port {settings.mllp_port} on {settings.mllp_host} is taken, so the HL7 listener "
            "cannot listen there: stop what listens on it, or set OFFICE_MLLP_PORT"
        )
    specs = load_specs(deployments, timezone=schedule_zone(settings))

    def say(line: str) -> None:
        console.print(line, markup=False, soft_wrap=True)

    with prefect_api(settings, serving=True, port=prefect_port, progress=say) as prefect:
        say(f"Prefect UI: {prefect.ui_url}")
        say(f"intake: http://{host}:{port} (POST /webhooks/{{source}}, GET /healthz)")
        say(_set_up_prefect(settings))
        say(f"serving {len(specs)} deployments from {deployments}; stop with Ctrl-C")
        stop = threading.Event()
        with _stop_on_signals(stop):
            service = _serve(
                settings, prefect, host=host, port=port, specs=specs, stop=stop, say=say
            )
            _run_in_thread(service)
    say("officeflows stopped; schedules paused until the next `office serve`")


def _set_up_prefect(settings: Settings) -> str:
    """Payer limits and the zombie-run automation on the server (`app.prefect_setup`).

    A failure is said and serving goes on: each eligibility run sets its own payers' limits,
    and `office prefect setup` can be run again.
    """
    from app.prefect_setup import apply

    engine = make_engine(settings.db_url)
    try:
        applied = asyncio.run(apply(settings, make_sessionmaker(engine)))
    except Exception as exc:
        log.warning("Prefect setup failed", exc_info=True)
        return f"Prefect setup failed ({type(exc).__name__}); run `office prefect setup`"
    finally:
        engine.dispose()
    return (
        f"Prefect: {len(applied.limits) // 2} payers' limits, and flow runs whose heartbeats "
        f"stop are marked Crashed"
    )


def schedule_zone(settings: Settings) -> str | None:
    """OFFICE_PRACTICE_TIMEZONE when it is set; unset, each schedule keeps its file's zone."""
    return settings.practice_timezone if "practice_timezone" in settings.model_fields_set else None


def _run_in_thread(service: Coroutine[Any, Any, None]) -> None:
    """Run the service's event loop on a second thread; the main thread keeps the signals.

    The thread gets this thread's context, so the Prefect settings in force here (the API
    URL) hold there too.
    """
    failure: list[BaseException] = []
    context = contextvars.copy_context()

    def main() -> None:
        try:
            context.run(asyncio.run, service)
        except BaseException as exc:  # handed to the main thread, raised there
            failure.append(exc)

    thread = threading.Thread(target=main, name="office-serve")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop`, which the service waits on, instead of interrupting."""

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


async def _serve(
    settings: Settings,
    prefect: PrefectServer,
    *,
    host: str,
    port: int,
    specs: list[DeploymentSpec],
    stop: threading.Event,
    say: Callable[[str], None],
) -> None:
    from app.prefect_handoff import dispatch_inbox, serve_all, wake_route_mail
    from integrations.hl7 import serve_mllp
    from integrations.mailbox.watch import watch_mailboxes

    engine = make_engine(settings.db_url)
    factory = make_sessionmaker(engine)
    app = create_app(settings, factory, dispatcher=dispatch_inbox)
    intake = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=INTAKE_GRACE_SECONDS,
        )
    )
    web = asyncio.create_task(intake.serve(), name="web")
    runner = asyncio.create_task(serve_all(specs), name="prefect")
    sweeper = asyncio.create_task(sweep_forever(factory, dispatch_inbox), name="sweeper")
    hl7 = asyncio.create_task(
        serve_mllp(
            settings,
            factory,
            dispatch_inbox,
            ready=lambda h, p: say(f"HL7 v2 (MLLP): {h}:{p} (ADT and SIU; ACK after storing)"),
        ),
        name="mllp",
    )
    parts = [web, runner, sweeper, hl7]
    if any(box.kind == "imap" for box in settings.inbound_mailboxes):
        # Maildir mailboxes have no IDLE: route-mail's schedule reads them.
        parts.append(asyncio.create_task(watch_mailboxes(settings, wake_route_mail), name="mail"))
    if prefect.started:
        parts.append(asyncio.create_task(_watch(prefect), name="prefect-server"))
    requested = asyncio.create_task(asyncio.to_thread(stop.wait), name="stop")
    try:
        done, _ = await asyncio.wait([*parts, requested], return_when=asyncio.FIRST_COMPLETED)
        # In order, and without cancelling uvicorn: a cancelled uvicorn task logs its
        # lifespan's CancelledError as a traceback.
        intake.should_exit = True
        stop.set()  # whatever ended the service, the waiting thread returns
        # Prefect's runner lets the runs in flight finish and pauses the schedules as it
        # stops; the closing line says so.
        logging.getLogger("prefect.runner").setLevel(logging.WARNING)
        for part in parts[1:]:
            part.cancel()
        await asyncio.gather(*parts, requested, return_exceptions=True)
        for part in parts:
            if part in done:
                part.result()  # a part that ended by itself failed: say so
    finally:
        engine.dispose()


async def _watch(prefect: PrefectServer) -> None:
    """End, with the reason, when the Prefect server this process started goes away."""
    # A child's exit is not awaitable here (its waiting belongs to the main thread): poll.
    while (gone := prefect.gone()) is None:  # noqa: ASYNC110
        await asyncio.sleep(WATCH_SECONDS)
    raise gone
