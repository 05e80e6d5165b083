"""A flow run whose process dies mid-run (its worker or machine gone) ends Crashed, through the
heartbeat automation `office prefect setup` creates, instead of staying Running forever.

Slow by nature: heartbeats come at least 30 s apart (Prefect's floor) and the automation
waits three of them; about 2.5 minutes here, most of it waiting for the server to decide.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.prefect_setup import ZOMBIE_AFTER_BEATS, ZOMBIE_AUTOMATION
from tests.app.processes import wait_for

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BEAT = 30  # the shortest heartbeat Prefect allows


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A Prefect server (SQLite, no UI) and the environment its clients use."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OFFICE_"))}
    env |= {
        "PYTHONPATH": str(REPO),
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(BEAT),
        "OFFICE_HOME": str(tmp_path / "office"),
        "OFFICE_DATABASE_URL": f"sqlite:///{tmp_path / 'office.db'}",
    }
    with (tmp_path / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    try:
        assert wait_for(lambda: healthy(api), within=180), (tmp_path / "server.log").read_text()
        yield api, env
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=20)
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def healthy(api: str) -> bool:
    with suppress(httpx.HTTPError):
        return httpx.get(f"{api}/health", timeout=5, trust_env=False).status_code == 200
    return False


def post(api: str, path: str, body: dict[str, Any]) -> Any:
    answer = httpx.post(f"{api}{path}", json=body, timeout=30, trust_env=False)
    answer.raise_for_status()
    return answer.json()


def test_a_run_whose_process_is_killed_ends_crashed(
    server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    api, env = server
    for command in (["db", "upgrade"], ["prefect", "setup"]):
        done = subprocess.run(
            [sys.executable, "-m", "app", *command], cwd=REPO, env=env, capture_output=True
        )
        assert done.returncode == 0, done.stderr
    [automation] = post(api, "/automations/filter", {})
    assert automation["name"] == ZOMBIE_AUTOMATION

    with (tmp_path / "flow.log").open("wb") as log:
        flow = subprocess.Popen(
            [sys.executable, "-m", "tests.app.stuck_flow"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def beating() -> bool:
            runs = post(api, "/flow_runs/filter", {})
            if not runs or runs[0]["state"]["type"] != "RUNNING":
                return False
            query = {
                "filter": {
                    "event": {"name": ["prefect.flow-run.heartbeat"]},
                    "resource": {"id": [f"prefect.flow-run.{runs[0]['id']}"]},
                }
            }
            return bool(post(api, "/events/filter", query)["events"])

        assert wait_for(beating, within=180, every=1), (tmp_path / "flow.log").read_text()
    finally:
        flow.kill()  # SIGKILL: no engine left to report anything, as when a machine dies
        flow.wait()

    [run] = post(api, "/flow_runs/filter", {})
    assert run["state"]["type"] == "RUNNING"

    def state() -> dict[str, Any]:
        return post(api, "/flow_runs/filter", {})[0]["state"]

    assert wait_for(lambda: state()["type"] != "RUNNING", within=ZOMBIE_AFTER_BEATS * BEAT + 180)
    ended = state()
    assert ended["type"] == "CRASHED"
    assert "heartbeat" in ended["message"]
