"""The Prefect API the benchmarks run against: a real `prefect server start`, as in production.

Its start-up is timed and reported apart from the work, and the run's logs are
flushed to it before it stops. The server keeps its state in SQLite under the benchmark's
home, as `office serve` does, unless `PREFECT_API_DATABASE_CONNECTION_URL` names a
PostgreSQL database (`postgresql+asyncpg://…`), as a practice group's server does.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from testkit.processes import stop

__all__ = ["flush_logs", "free_port", "prefect_server"]

START_TIMEOUT_S = 300
"""How long the server may take to answer its health check: 25 s on an idle 2-core machine,
past the 120 s this once allowed when other work kept both cores busy (load 8-15)."""


@contextmanager
def prefect_server(home: Path) -> Iterator[tuple[str, float]]:
    """`prefect server start` on a free loopback port; yields its API URL and start-up time."""
    import httpx

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(home / "prefect")
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env["PREFECT_UI_ENABLED"] = "false"
    log = (home / "prefect-server.log").open("w")
    started = time.perf_counter()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "prefect", "server", "start"),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = started + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError("prefect server exited; see its log in the bench home")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.perf_counter() > deadline:
                raise RuntimeError(f"prefect server did not start within {START_TIMEOUT_S} s")
            time.sleep(0.1)
        yield url, time.perf_counter() - started
    finally:
        stop(process, timeout=20)
        log.close()


def flush_logs() -> None:
    """Send the run's logs before the server goes away, not at interpreter exit."""
    from prefect.logging.handlers import APILogHandler

    asyncio.run(APILogHandler.aflush())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
