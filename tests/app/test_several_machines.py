"""The README's "Several machines", end to end: a real Prefect server on PostgreSQL,
`prefect deploy --all` from deployments/prefect.yaml (with a stray OFFICE_CODE_DIR in the
deploying shell), `office prefect setup`, two process workers; the daily eligibility batch
runs, then both workers run send-reminders at the same moment, and every reminder email
reaches the SMTP sink exactly once.

Lean on purpose (2 cores): no UI, no scheduler (runs are started as the UI's "Run" button
starts them), a small practice, one flow run at a time per worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from app.demo import demo_clock
from app.demo_import import seed_practice
from office.db import make_engine, make_sessionmaker
from office.migrate import upgrade
from office.models import Channel, CheckStatus, EligibilityCheck, OutboxItem, OutboxStatus
from testkit.smtp_sink import Sink, start_sink
from tests.app.processes import stop_group
from tests.conftest import PG_URL, fresh_database_url

pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason="OFFICE_TEST_DATABASE_URL is not set"),
]

REPO = Path(__file__).resolve().parents[2]
POOL = "office-process"
DEPLOYMENTS = "deployments/prefect.yaml"
SECRET = "several-machines-link-secret-32-bytes"
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
START_AHEAD_SECONDS = 12  # time for both workers to fetch their run and start its process


@contextmanager
def group(command: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child in its own process group, stopped with everything it started."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, process_group=0
        )
    try:
        yield process
    finally:
        stop_group(process)


@contextmanager
def prefect_database() -> Iterator[str]:
    """A database of its own for Prefect's server, beside the practice's test database."""
    assert PG_URL is not None
    admin = make_url(PG_URL).set(drivername="postgresql+psycopg")
    name = f"{admin.database}_prefect"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.set(drivername="postgresql+asyncpg", database=name).render_as_string(
            hide_password=False
        )
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(check: Any, within: float, what: str, logs: Path) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with suppress(httpx.HTTPError):
            if found := check():
                return found
        time.sleep(0.5)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(logs.glob("*.log")))
    pytest.fail(f"{what} did not happen within {within:g} s\n{tails}")


class Api:
    def __init__(self, url: str) -> None:
        self.url = url
        self.client = httpx.Client(base_url=url, timeout=60, trust_env=False)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = self.client.post(path, json=body or {})
        answer.raise_for_status()
        return answer.json()

    def get(self, path: str) -> Any:
        answer = self.client.get(path)
        answer.raise_for_status()
        return answer.json()

    def run(
        self,
        deployment: str,
        parameters: dict[str, Any],
        queue: str = "default",
        at: datetime | None = None,
    ) -> str:
        """A run as the UI's "Run" button makes it, on `queue`, to start at `at` (or now)."""
        found = self.get(f"/deployments/name/{deployment}")
        body: dict[str, Any] = {"parameters": parameters, "work_queue_name": queue}
        if at is not None:
            details = {"scheduled_time": at.isoformat()}
            body["state"] = {"type": "SCHEDULED", "state_details": details}
        return str(self.post(f"/deployments/{found['id']}/create_flow_run", body)["id"])

    def emails_sent(self, run_id: str) -> int:
        """The run's `reminder-run` artifact: emails it sent (counts only)."""
        query = {
            "artifacts": {"key": {"any_": ["reminder-run"]}},
            "flow_runs": {"id": {"any_": [run_id]}},
        }
        [artifact] = self.post("/artifacts/filter", query)
        rows = (
            json.loads(artifact["data"]) if isinstance(artifact["data"], str) else artifact["data"]
        )
        return sum(
            row["count"] for row in rows if (row["channel"], row["outcome"]) == ("email", "sent")
        )

    def ended(self, run_id: str) -> dict[str, Any] | None:
        run: dict[str, Any] = self.get(f"/flow_runs/{run_id}")
        return run if run["state"]["type"] in FINAL else None


def test_deploy_two_workers_and_each_reminder_once(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    office_url = fresh_database_url("postgresql", tmp_path)
    engine = make_engine(office_url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    now = demo_clock(datetime.now(UTC).replace(second=0, microsecond=0))
    seed_practice(factory, tmp_path / "home", now=now, patients=60, appointments=120)

    with ExitStack() as stack:
        stack.callback(engine.dispose)
        sink: Sink = start_sink(tmp_path / "sink")
        stack.callback(sink.stop)
        port = free_port()
        api_url = f"http://127.0.0.1:{port}/api"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "OFFICE_"))}
        base |= {
            "PYTHONPATH": str(REPO),
            "PREFECT_API_URL": api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "OFFICE_DATABASE_URL": office_url,
            "OFFICE_SECRET_KEY": SECRET,
            "OFFICE_MAILER": "smtp",
            "OFFICE_SMTP_HOST": "127.0.0.1",
            "OFFICE_SMTP_PORT": str(sink.port),
        }
        server_env = base | {
            "PREFECT_HOME": str(tmp_path / "server"),
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": stack.enter_context(prefect_database()),
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        }
        prefect = [sys.executable, "-m", "prefect"]
        stack.enter_context(
            group(
                [*prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                server_env,
                logs / "server.log",
            )
        )
        api = Api(api_url)
        wait_until(lambda: api.get("/health"), 180, "the Prefect server answering", logs)

        # The deploying machine: its own OFFICE_CODE_DIR must not reach the workers.
        deployer = base | {
            "PREFECT_HOME": str(tmp_path / "deployer"),
            "OFFICE_HOME": str(tmp_path / "deployer"),
            "OFFICE_CODE_DIR": str(tmp_path / "not-on-any-worker"),
        }
        for command in (
            [*prefect, "work-pool", "create", POOL, "--type", "process"],
            [*prefect, "work-queue", "create", "a", "--pool", POOL],
            [*prefect, "work-queue", "create", "b", "--pool", POOL],
            [
                *prefect,
                "--no-prompt",
                "deploy",
                "--all",
                "--prefect-file",
                "deployments/prefect.yaml",
            ],
            [sys.executable, "-m", "app", "prefect", "setup"],
        ):
            done = subprocess.run(
                command, cwd=REPO, env=deployer, capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        daily = api.get("/deployments/name/verify-eligibility/daily")
        assert daily["pull_steps"] == [
            {"flows.code_dir.enter_code_dir": {"variable": "OFFICE_CODE_DIR"}}
        ]

        # Each worker has a queue of its own, so the two reminder runs go one to each.
        for name, queues in (("a", ["default", "a"]), ("b", ["b"])):
            worker_env = base | {
                "PREFECT_HOME": str(tmp_path / f"worker-{name}"),
                "OFFICE_HOME": str(tmp_path / f"worker-{name}"),
                "OFFICE_CODE_DIR": str(REPO),
                "PREFECT_WORKER_QUERY_SECONDS": "1",
                "PREFECT_WORKER_PREFETCH_SECONDS": str(2 * START_AHEAD_SECONDS),
            }
            stack.enter_context(
                group(
                    [
                        *prefect,
                        "worker",
                        "start",
                        "--pool",
                        POOL,
                        "--name",
                        f"worker-{name}",
                        "--limit",
                        "1",
                        *(word for queue in queues for word in ("--work-queue", queue)),
                    ],
                    worker_env,
                    logs / f"worker-{name}.log",
                )
            )

        moment = now.isoformat()
        batch = api.run("verify-eligibility/daily", {"now": moment})
        ended = wait_until(lambda: api.ended(batch), 300, "the daily batch", logs)
        assert ended["state"]["type"] == "COMPLETED"
        with factory() as session:
            statuses = list(session.scalars(select(EligibilityCheck.status)))
        assert statuses
        assert CheckStatus.PENDING not in statuses

        # Two runs of the same instant, one on each worker, both to start at the same
        # moment: the workers fetch them ahead (prefetch) and Prefect holds each in
        # Scheduled until that moment.
        at = datetime.now(UTC) + timedelta(seconds=START_AHEAD_SECONDS)
        reminders = "send-reminders/every-15-minutes"
        runs = [api.run(reminders, {"now": moment}, queue, at) for queue in "ab"]
        done = [wait_until(lambda r=r: api.ended(r), 300, "the reminder runs", logs) for r in runs]
        assert [run["state"]["type"] for run in done] == ["COMPLETED", "COMPLETED"]
        assert [run["work_queue_name"] for run in done] == ["a", "b"]
        shares = [api.emails_sent(run["id"]) for run in done]
        starts = sorted(datetime.fromisoformat(run["start_time"]) for run in done)
        print(f"reminder runs started {starts[1] - starts[0]} apart; emails sent: {shares}")

    with factory() as session:
        sent = set(
            session.scalars(
                select(OutboxItem.message_id).where(
                    OutboxItem.status == OutboxStatus.SENT,
                    OutboxItem.channel == Channel.EMAIL,
                    OutboxItem.message_id.is_not(None),
                )
            )
        )
    engine.dispose()
    delivered = sink.counts()
    assert sent
    assert sum(shares) == len(sent)  # no run counted a message the other sent
    assert set(delivered) == sent
    assert max(delivered.values()) == 1
