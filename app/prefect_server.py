"""The Prefect server of an OFFICE_HOME: the one `office serve` runs, or one a command starts.

`app.prefect_handoff.prefect_api` comes here when no PREFECT_API_URL is configured, for every
command that needs Prefect's API. The server is a real `prefect server start` (UI and
background services) with PREFECT_HOME=OFFICE_HOME/prefect, so each home keeps its own
Prefect database and history across restarts; its output goes to OFFICE_HOME/prefect/
server.log, never to the terminal.

- `office serve` keeps one on 127.0.0.1:4200 (or its --prefect-port) for its whole life and
  records it in OFFICE_HOME/prefect/server.json; other commands on the home use that one once
  it answers /api/health.
- Otherwise a command starts its own on a free port for as long as it runs, without the
  scheduler: nothing serves the deployments meanwhile, and runs it scheduled would pile up
  as late runs for the next `office serve`.

One process per home owns a server at a time (an flock on OFFICE_HOME/prefect/server.lock):
two servers never share one SQLite database. The server never outlives its owner: it runs
in its own process group, stopped as a group on exit, and Linux kills it if the owner dies
without stopping it (PR_SET_PDEATHSIG, bound to the thread that started it: start it from
the main thread). While a command owns a server, SIGTERM is handled as Ctrl-C is, so that
every `finally` runs and the server is stopped in order.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from office.settings import Settings

__all__ = [
    "SERVE_PORT",
    "PrefectServer",
    "PrefectServerError",
    "Progress",
    "home_server",
    "port_taken",
    "to_stderr",
]

SERVE_PORT = 4200
HOST = "127.0.0.1"
POLL_SECONDS = 0.25
NOTE_EVERY_SECONDS = 10
STOP_GRACE_SECONDS = 10.0
PR_SET_PDEATHSIG = 1

Progress = Callable[[str], None]


class PrefectServerError(RuntimeError):
    """Prefect's server could not be started, reused or kept; the one line says what to do."""


@dataclass(frozen=True)
class PrefectServer:
    """A Prefect server this process talks to."""

    api_url: str
    ui_url: str
    started: bool  # by this process; False when it belongs to `office serve` or is configured
    log: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, compare=False, repr=False)

    def gone(self) -> PrefectServerError | None:
        """Why the server this process started is no longer there, if it is not."""
        code = None if self.process is None else self.process.poll()
        if code is None:
            return None
        return PrefectServerError(
            f"the Prefect server stopped (exit status {code}); read {self.log}, then start again"
        )


def to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def port_taken(host: str, port: int) -> bool:
    """Whether something already listens on host:port (so a server could not bind it)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


@contextmanager
def home_server(
    settings: Settings, *, serving: bool, port: int | None = None, progress: Progress = to_stderr
) -> Iterator[PrefectServer]:
    """This home's Prefect server for the length of the block: reused, or started and stopped.

    Args:
        settings: OFFICE_HOME, the start-up budget and the optional command wrapper.
        serving: True for `office serve`: a fixed port, the scheduler on, the server recorded
            for other commands; refused while another `office serve` runs on this home.
        port: the port when serving (default 4200); a command's own server takes a free one.
        progress: where "starting Prefect… 10 s" lines go while the server comes up.
    """
    folder = (settings.home / "prefect").resolve()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    deadline = time.monotonic() + settings.prefect_start_timeout
    with _sigterm_as_ctrl_c():
        claim = _claim(folder, serving=serving, deadline=deadline, progress=progress)
        if isinstance(claim, PrefectServer):
            yield claim
            return
        try:
            with _started(settings, folder, serving=serving, port=port, progress=progress) as own:
                if serving:
                    _record(folder, own)
                try:
                    yield own
                finally:
                    if serving:
                        _forget(folder)
        finally:
            os.close(claim)


# --- who owns this home's server --------------------------------------------------------------


def _claim(
    folder: Path, *, serving: bool, deadline: float, progress: Progress
) -> int | PrefectServer:
    """Lock the home's server for this process (the lock's descriptor), or find `office serve`'s.

    The lock is held by whoever runs a server on this home; while another command holds it
    for a server of its own, wait for it, within the start-up budget.
    """
    waited = False
    while True:
        descriptor = _try_lock(folder / "server.lock")
        if descriptor is not None:
            _forget(folder)  # a record left by an `office serve` that was killed
            return descriptor
        recorded = _recorded(folder)
        if recorded is not None:
            owner, server = recorded
            if serving:
                raise PrefectServerError(
                    f"office serve is already running for this OFFICE_HOME (pid {owner}); "
                    f"its Prefect UI is at {server.ui_url}"
                )
            return server
        holder = _lock_holder(folder / "server.lock")
        if time.monotonic() >= deadline:
            raise PrefectServerError(
                f"another office command (pid {holder}) holds this OFFICE_HOME's Prefect "
                "server; wait for it to end, or run `office serve` so commands share one"
            )
        if not waited:
            progress(f"waiting for office (pid {holder}) to finish with Prefect…")
            waited = True
        time.sleep(POLL_SECONDS)


def _try_lock(path: Path) -> int | None:
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"{os.getpid()}\n".encode())
    return descriptor


def _lock_holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "?"
    except OSError:
        return "?"


def _recorded(folder: Path) -> tuple[int, PrefectServer] | None:
    """`office serve`'s server for this home, if its record is current and it answers."""
    try:
        record: dict[str, Any] = json.loads((folder / "server.json").read_text())
        owner, api_url, ui_url = int(record["pid"]), str(record["api_url"]), str(record["ui_url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _alive(owner) or not _healthy(api_url):
        return None
    return owner, PrefectServer(api_url, ui_url, started=False, log=folder / "server.log")


def _record(folder: Path, server: PrefectServer) -> None:
    assert server.process is not None
    record = {
        "pid": os.getpid(),
        "server_pid": server.process.pid,
        "api_url": server.api_url,
        "ui_url": server.ui_url,
    }
    temporary = folder / f"server.json.{os.getpid()}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(record, out)
    os.replace(temporary, folder / "server.json")


def _forget(folder: Path) -> None:
    (folder / "server.json").unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _healthy(api_url: str) -> bool:
    try:
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            return client.get(f"{api_url}/health").status_code == 200
    except httpx.HTTPError:
        return False


# --- starting and stopping one ----------------------------------------------------------------


@contextmanager
def _started(
    settings: Settings, folder: Path, *, serving: bool, port: int | None, progress: Progress
) -> Iterator[PrefectServer]:
    """`prefect server start` as a child that dies with this process, until the block ends."""
    port = port or (SERVE_PORT if serving else _free_port())
    if port_taken(HOST, port):
        raise PrefectServerError(
            f"port {port} on {HOST} is taken, so Prefect cannot start there: stop what "
            "listens on it, or choose another with --prefect-port"
        )
    command = [
        *_wrapper(settings),
        *(sys.executable, "-m", "prefect", "server", "start"),
        *("--host", HOST, "--port", str(port)),
    ]
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {
        "PREFECT_HOME": str(folder),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "true" if serving else "false",
    }
    log = folder / "server.log"
    base = f"http://{HOST}:{port}"
    progress(f"starting Prefect on {base} (its log: {log})…")
    with _log_file(log) as out:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        out.write(f"--- {stamp} UTC office (pid {os.getpid()}): {shlex.join(command)}\n".encode())
        out.flush()
        process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=0,
            preexec_fn=_dies_with_parent(),
        )
    server = PrefectServer(f"{base}/api", base, started=True, log=log, process=process)
    try:
        _wait_until_healthy(server, settings.prefect_start_timeout, progress)
        yield server
    finally:
        _stop(process)


def _wrapper(settings: Settings) -> list[str]:
    try:
        return shlex.split(settings.prefect_server_wrapper)
    except ValueError as exc:
        raise PrefectServerError(f"OFFICE_PREFECT_SERVER_WRAPPER: {exc}") from None


@contextmanager
def _log_file(path: Path) -> Iterator[Any]:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "ab") as out:
        yield out


def _dies_with_parent() -> Callable[[], None] | None:
    """What the child runs before `exec`: ask Linux for SIGKILL when its parent thread ends."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


def _wait_until_healthy(server: PrefectServer, budget: float, progress: Progress) -> None:
    assert server.process is not None
    started = time.monotonic()
    next_note = started + NOTE_EVERY_SECONDS
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            code = server.process.poll()
            if code is not None:
                raise PrefectServerError(
                    f"the Prefect server stopped while starting (exit status {code}); "
                    f"read {server.log}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{server.api_url}/health").status_code == 200:
                    return
            now = time.monotonic()
            if now - started >= budget:
                raise PrefectServerError(
                    f"Prefect did not answer on {server.api_url} within {budget:g} s; read "
                    f"{server.log}, or allow longer with OFFICE_PREFECT_START_TIMEOUT"
                )
            if now >= next_note:
                progress(f"starting Prefect… {now - started:.0f} s")
                next_note += NOTE_EVERY_SECONDS
            time.sleep(POLL_SECONDS)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group, SIGKILL to whatever is left after the grace."""
    with _signals_ignored():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_GRACE_SECONDS)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


# --- signals ----------------------------------------------------------------------------------


def _as_ctrl_c(signum: int, frame: FrameType | None) -> None:
    """SIGTERM, handled as the SIGINT handler in force (asyncio's, or Python's) handles Ctrl-C."""
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


@contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _as_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """A second Ctrl-C or SIGTERM must not cut the stop short and leave the server running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
