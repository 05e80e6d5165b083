"""`office serve` on a throwaway home runs the practice by itself: Prefect's UI answers at the
printed URL, every kind of schedule is registered in its zone, a scheduled run is created
and completes with nobody typing a command, and SIGTERM stops everything in one line."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.prefect_server import home_server
from app.prefect_setup import ZOMBIE_AUTOMATION
from integrations.hl7.samples import SamplePatient, adt_message
from integrations.hl7.sender import MllpSender
from office.db import make_engine, make_sessionmaker
from office.models import InboxItem
from office.settings import Settings
from tests.app.processes import alive, descendants, in_group, wait_for

pytestmark = pytest.mark.slow

# A real flow of the project on a short interval (its first run is due at once), beside a
# cron and an rrule schedule.
DEPLOYMENTS = """\
deployments:
  - name: every-minute
    entrypoint: flows/reminders.py:send_reminders
    schedules:
      - {interval: 60, timezone: America/Denver, slug: every-minute}
  - name: weekday-mornings
    entrypoint: flows/eligibility.py:verify_eligibility
    parameters: {days_ahead: 3}
    schedules:
      - {cron: "30 6 * * 1-5", timezone: Europe/Paris, slug: weekday-morning}
      - {rrule: "FREQ=WEEKLY;BYDAY=SA;BYHOUR=9;BYMINUTE=0", timezone: America/New_York,
         slug: saturday}
"""
NOW = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
PREFECT_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| ")


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def office_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFICE_", "PREFECT_"))}
    return env | {
        "OFFICE_HOME": str(home),
        "OFFICE_SECRET_KEY": "k" * 40,
        "OFFICE_WEBHOOK_SECRET": "w" * 40,
        "OFFICE_MLLP_PORT": "0",  # any free port: tests run side by side
        # Prefect's own knobs, so the test need not wait a minute for each loop.
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "PREFECT_HOME": str(home / "prefect"),
        "COLUMNS": "200",
    }


@dataclass
class Served:
    home: Path
    process: subprocess.Popen[bytes]
    output: Path
    ui_url: str
    intake_url: str

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"

    def text(self) -> str:
        return self.output.read_text()

    def intake_answers(self) -> bool:
        try:
            answer = httpx.get(f"{self.intake_url}/healthz", trust_env=False, timeout=60)
            return answer.status_code == 200
        except httpx.HTTPError:
            return False

    def api(self, path: str, body: dict[str, Any] | None = None) -> Any:
        answer = httpx.post(f"{self.api_url}{path}", json=body or {}, trust_env=False, timeout=60)
        answer.raise_for_status()
        return answer.json()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("serve")
    home, deployments, output = root / "home", root / "deployments.yaml", root / "serve.out"
    deployments.write_text(DEPLOYMENTS)
    env = office_env(home)
    subprocess.run([sys.executable, "-m", "app", "db", "upgrade"], env=env, check=True)
    port, prefect_port = free_port(), free_port()
    command = [sys.executable, "-m", "app", "serve", "--port", str(port)]
    command += ["--prefect-port", str(prefect_port), "--deployments", str(deployments)]
    with output.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        up = wait_for(
            lambda: "serving 2 deployments" in output.read_text() or process.poll() is not None,
            within=300,
        )
        text = output.read_text()
        assert up, text
        assert process.poll() is None, text
        ui_url = re.search(r"Prefect UI: (\S+)", text)
        intake_url = re.search(r"intake: (\S+)", text)
        assert ui_url, text
        assert intake_url, text
        served = Served(home, process, output, ui_url[1], intake_url[1])
        assert wait_for(served.intake_answers, within=60), served.text()
        assert wait_for(lambda: len(served.api("/deployments/filter")) == 2, within=120)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_printed_urls_are_the_ui_and_the_intake(served: Served) -> None:
    page = httpx.get(served.ui_url + "/", trust_env=False, timeout=60)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<html" in page.text.lower()
    assert httpx.get(f"{served.intake_url}/healthz", trust_env=False, timeout=60).status_code == 200


def test_serve_sets_the_zombie_run_automation_on_its_server(served: Served) -> None:
    assert "flow runs whose heartbeats stop are marked Crashed" in served.text()
    names = [automation["name"] for automation in served.api("/automations/filter")]
    assert names.count(ZOMBIE_AUTOMATION) == 1


def test_the_hl7_listener_stores_then_acknowledges(served: Served) -> None:
    line = re.compile(r"HL7 v2 \(MLLP\): (\S+):(\d+)")
    assert wait_for(lambda: line.search(served.text()) is not None, within=60), served.text()
    address = line.search(served.text())
    assert address
    message = adt_message("A08", "SERVE-0001", SamplePatient(mrn="MRN90001"), sent_at=NOW)

    async def send() -> str:
        async with MllpSender(address[1], int(address[2]), ack_timeout=60) as sender:
            return (await sender.deliver(message)).code

    assert asyncio.run(send()) == "AA"
    engine = make_engine(f"sqlite:///{served.home / 'office.db'}")
    try:
        with make_sessionmaker(engine)() as session:
            keys = session.scalars(select(InboxItem.idempotency_key)).all()
    finally:
        engine.dispose()
    assert "SERVE-0001" in keys


def test_the_server_keeps_its_state_in_the_home_with_the_scheduler_on(served: Served) -> None:
    state = httpx.get(f"{served.api_url}/admin/settings", trust_env=False, timeout=60).json()
    assert state["home"] == str((served.home / "prefect").resolve())
    assert state["server"]["services"]["scheduler"]["enabled"] is True
    assert (served.home / "prefect" / "prefect.db").is_file()


def test_every_schedule_is_registered_with_its_kind_and_zone(served: Served) -> None:
    deployments = {d["name"]: d for d in served.api("/deployments/filter")}
    schedules = {s["slug"]: s["schedule"] for d in deployments.values() for s in d["schedules"]}
    assert schedules["every-minute"]["interval"] == 60
    assert schedules["every-minute"]["timezone"] == "America/Denver"
    assert schedules["weekday-morning"]["cron"] == "30 6 * * 1-5"
    assert schedules["weekday-morning"]["timezone"] == "Europe/Paris"
    assert "FREQ=WEEKLY;BYDAY=SA" in schedules["saturday"]["rrule"]
    assert schedules["saturday"]["timezone"] == "America/New_York"
    assert deployments["weekday-mornings"]["parameters"] == {"days_ahead": 3}


def test_a_scheduled_run_is_created_and_completes_by_itself(served: Served) -> None:
    [deployment] = served.api(
        "/deployments/filter", {"deployments": {"name": {"any_": ["every-minute"]}}}
    )
    query = {
        "deployments": {"id": {"any_": [deployment["id"]]}},
        "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
    }

    def completed() -> list[Any]:
        return list(served.api("/flow_runs/filter", query))

    assert wait_for(lambda: bool(completed()), within=300, every=2), served.text()[-3000:]
    run = completed()[0]
    assert run["auto_scheduled"] is True  # made by the scheduler, not by a person or a test
    assert run["state"]["type"] == "COMPLETED"


def test_a_command_on_the_home_uses_the_served_server(served: Served) -> None:
    with home_server(Settings(home=served.home), serving=False) as server:
        assert server.api_url == served.api_url
        assert not server.started


def test_a_second_serve_on_the_home_refuses_in_one_line(served: Served) -> None:
    command = [sys.executable, "-m", "app", "serve", "--port", str(free_port())]
    command += ["--prefect-port", str(free_port())]
    done = subprocess.run(
        command, env=office_env(served.home), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: office serve is already running for this OFFICE_HOME")
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr


def test_sigterm_stops_everything_in_one_line(served: Served) -> None:
    """Runs last: it stops the served process."""
    record = json.loads((served.home / "prefect" / "server.json").read_text())
    children = descendants(served.process.pid)
    assert record["server_pid"] in children
    before = len(served.text())

    served.process.send_signal(signal.SIGTERM)
    code = served.process.wait(timeout=300)  # runs in flight finish first

    after = served.text()[before:]
    assert code == 0, after
    assert "Traceback" not in served.text()
    assert "CancelledError" not in served.text()
    ours = [line for line in after.splitlines() if line and not PREFECT_LOG_LINE.match(line)]
    assert ours == ["officeflows stopped; schedules paused until the next `office serve`"]
    assert wait_for(lambda: not in_group(record["server_pid"]), within=30)
    assert wait_for(lambda: not any(alive(pid) for pid in children), within=30)
    assert not (served.home / "prefect" / "server.json").exists()
