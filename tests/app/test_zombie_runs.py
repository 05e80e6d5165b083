"""A flow run whose process dies mid-run (its worker or machine gone) ends Crashed, through the
heartbeat automation `office prefect setup` creates, instead of staying Running forever; and
when it was sending reminders, the next run sends the rest with nothing sent twice.

Slow by nature: heartbeats come at least 30 s apart (Prefect's floor) and the automation
waits three of them; about 2.5 minutes a test here, most of it waiting for the server to
decide.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.prefect_setup import ZOMBIE_AFTER_BEATS, ZOMBIE_AUTOMATION
from office.db import make_engine, make_sessionmaker
from office.models import OutboxStatus
from office.reminders import DEFAULT_LEASE
from office.settings import Settings
from testkit.smtp_sink import start_sink
from tests.app.processes import stop_group, wait_for
from tests.reminders.conftest import NOW, build_clinic

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BEAT = 30  # the shortest heartbeat Prefect allows
SECRET = "test-link-secret-32-bytes-or-longer"
TOTAL = 60  # reminders due
SENT_BEFORE = 20  # accepted by the SMTP server before it holds the rest, until the kill


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
        stop_group(process)


def healthy(api: str) -> bool:
    with suppress(httpx.HTTPError):
        return httpx.get(f"{api}/health", timeout=5, trust_env=False).status_code == 200
    return False


def post(api: str, path: str, body: dict[str, Any]) -> Any:
    answer = httpx.post(f"{api}{path}", json=body, timeout=30, trust_env=False)
    answer.raise_for_status()
    return answer.json()


def set_up(api: str, env: dict[str, str]) -> None:
    """`office db upgrade` and `office prefect setup`, as after an install."""
    for command in (["db", "upgrade"], ["prefect", "setup"]):
        done = subprocess.run(
            [sys.executable, "-m", "app", *command], cwd=REPO, env=env, capture_output=True
        )
        assert done.returncode == 0, done.stderr
    [automation] = post(api, "/automations/filter", {})
    assert automation["name"] == ZOMBIE_AUTOMATION


def beating(api: str) -> bool:
    """The one flow run is Running and the server has its heartbeat."""
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


def ended(api: str, run_id: str) -> dict[str, Any]:
    """The run's state once the automation moved it off Running (or the bound passed)."""

    def state() -> dict[str, Any]:
        answer = httpx.get(f"{api}/flow_runs/{run_id}", timeout=30, trust_env=False)
        answer.raise_for_status()
        return dict(answer.json()["state"])

    wait_for(lambda: state()["type"] != "RUNNING", within=ZOMBIE_AFTER_BEATS * BEAT + 180)
    return state()


def test_a_run_whose_process_is_killed_ends_crashed(
    server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    api, env = server
    set_up(api, env)

    with (tmp_path / "flow.log").open("wb") as log:
        flow = subprocess.Popen(
            [sys.executable, "-m", "tests.app.stuck_flow"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_for(lambda: beating(api), within=180, every=1), (
            tmp_path / "flow.log"
        ).read_text()
    finally:
        flow.kill()  # SIGKILL: no engine left to report anything, as when a machine dies
        flow.wait()

    [run] = post(api, "/flow_runs/filter", {})
    assert run["state"]["type"] == "RUNNING"
    state = ended(api, run["id"])
    assert state["type"] == "CRASHED"
    assert "heartbeat" in state["message"]


def test_a_reminder_run_killed_mid_batch_ends_crashed_and_the_next_sends_the_rest_once(
    server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """The send-reminders flow run, SIGKILLed while the SMTP server holds its next messages
    (after `SENT_BEFORE` went out), ends Crashed; the next run (the scheduled one after the
    claims' lease) completes, and every message reached the server at most once: all but the
    ones in flight at the kill, at most one per connection (README, OFFICE_SMTP_CONNECTIONS),
    exactly once; those are marked unknown with a work item, never sent again over SMTP."""
    api, env = server
    set_up(api, env)
    sink = start_sink(tmp_path / "sink", "--hold-after", str(SENT_BEFORE))
    try:
        settings = Settings(
            home=Path(env["OFFICE_HOME"]),
            database_url=env["OFFICE_DATABASE_URL"],
            secret_key=SECRET,  # type: ignore[arg-type]
            mailer="smtp",
            smtp_port=sink.port,
        )
        engine = make_engine(settings.db_url)
        clinic = build_clinic(make_sessionmaker(engine), settings)
        clinic.add_type("mail", reminder_offsets=[{"hours": 24, "channels": ["email"]}])
        clinic.many(TOTAL, start=NOW + timedelta(hours=23), kind="mail")
        worker_env = env | {
            "OFFICE_MAILER": "smtp",
            "OFFICE_SMTP_PORT": str(sink.port),
            "OFFICE_SECRET_KEY": SECRET,
        }
        command = [sys.executable, "-m", "tests.app.reminders_run"]
        with (tmp_path / "run1.log").open("wb") as log:
            first = subprocess.Popen(
                [*command, NOW.isoformat()], cwd=REPO, env=worker_env, stdout=log, stderr=log
            )
        try:
            stuck = wait_for(
                lambda: len(sink.ids()) >= SENT_BEFORE and beating(api), within=180, every=0.5
            )
            assert stuck, (tmp_path / "run1.log").read_text()
        finally:
            first.kill()  # mid-batch, as when the worker's machine dies
            first.wait()
        in_doubt = [row.id for row in clinic.outbox() if row.status is OutboxStatus.SENDING]
        [killed] = post(api, "/flow_runs/filter", {})

        state = ended(api, killed["id"])
        assert state["type"] == "CRASHED"
        assert "heartbeat" in state["message"]

        sink.release()
        after_lease = (NOW + DEFAULT_LEASE + timedelta(minutes=1)).isoformat()
        second = subprocess.run(
            [*command, after_lease], cwd=REPO, env=worker_env, capture_output=True, timeout=600
        )
        assert second.returncode == 0, second.stderr.decode(errors="replace")[-3000:]
        runs = post(api, "/flow_runs/filter", {"sort": "EXPECTED_START_TIME_ASC"})
        assert [(run["name"] == killed["name"], run["state"]["type"]) for run in runs] == [
            (True, "CRASHED"),
            (False, "COMPLETED"),
        ]

        rows = clinic.outbox()
        counts = sink.counts()
        sent = [str(row.message_id) for row in rows if row.status is OutboxStatus.SENT]
        unknown = [row for row in rows if row.status is OutboxStatus.UNKNOWN]
        assert len(rows) == TOTAL
        assert {row.status for row in rows} <= {OutboxStatus.SENT, OutboxStatus.UNKNOWN}
        assert 0 < len(in_doubt) <= settings.smtp_connections
        assert [row.id for row in unknown] == in_doubt
        assert max(counts.values()) == 1, "a message was delivered twice"
        assert sorted(counts) == sorted(sent)  # the held ones never went: nothing else did
        assert len(sent) == TOTAL - len(in_doubt)
        flagged = {(i.kind, i.entity_id) for i in clinic.work_items()}
        assert {("reminder_delivery_unknown", row.id) for row in unknown} <= flagged
        engine.dispose()
    finally:
        sink.stop()
