"""A large batch's emails are built ahead in a worker process, and are the loop's own bytes.

The worker only saves the send loop CPU: what it builds must be byte for byte
what the loop would have built, a row whose recipient changed since the batch
began is built again in line, and a dead worker leaves the loop building
everything itself, sending every message once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from office.reminders import Draft, compose_email, load_visits, prebuild
from office.reminders.prebuild import AHEAD_MIN, Prebuilt
from tests.reminders.conftest import NOW, Clinic, delivered_files

EMAIL_24H = [{"hours": 24, "channels": ["email"]}]


@pytest.fixture(autouse=True)
def fresh_worker() -> None:
    prebuild.shutdown()


def jobs_for(clinic: Clinic, count: int) -> list[Draft]:
    clinic.add_type("mail", reminder_offsets=EMAIL_24H)
    ids = clinic.many(count, start=NOW + timedelta(hours=23), kind="mail")
    with clinic.factory() as session:
        visits = load_visits(session, ids)
    return [
        Draft(
            item_id=index,
            key=f"appt-{appointment_id}:reminder",
            kind="reminder",
            detail={"version": 1},
            created_at=NOW,
            recipient=f"p{index}@example.test",
            visit=visits[appointment_id],
        )
        for index, appointment_id in enumerate(ids)
    ]


def inline(clinic: Clinic, job: Draft) -> bytes:
    secret = clinic.settings.require_secret_key()
    return compose_email(job, clinic.settings, secret).data


def worker_pids() -> set[int]:
    executor = prebuild._executor
    assert executor is not None
    return set(executor._processes or {})


def started(jobs: list[Draft], clinic: Clinic, *, wait: bool = True) -> Prebuilt:
    ahead = Prebuilt.start(jobs, clinic.settings, clinic.settings.require_secret_key())
    deadline = time.monotonic() + 60
    while wait and not ahead.done() and time.monotonic() < deadline:
        time.sleep(0.02)
    return ahead


def test_a_large_batch_is_built_in_another_process_byte_for_byte(clinic: Clinic) -> None:
    jobs = jobs_for(clinic, AHEAD_MIN)

    ahead = started(jobs, clinic)
    built = [ahead.take(job.item_id, job.recipient) for job in jobs]

    assert worker_pids()
    assert os.getpid() not in worker_pids()
    assert [wire.data if wire else None for wire in built] == [inline(clinic, j) for j in jobs]


def test_the_loop_never_waits_for_the_worker(clinic: Clinic) -> None:
    jobs = jobs_for(clinic, AHEAD_MIN)

    ahead = started(jobs, clinic, wait=False)  # the worker is still starting
    first = ahead.take(jobs[0].item_id, jobs[0].recipient)

    assert first is None  # not built yet: the loop builds it in line


def test_a_small_batch_starts_no_worker(clinic: Clinic) -> None:
    jobs = jobs_for(clinic, AHEAD_MIN - 1)

    ahead = started(jobs, clinic)

    assert ahead.take(jobs[0].item_id, jobs[0].recipient) is None
    assert prebuild._executor is None


def test_a_changed_recipient_is_built_in_line(clinic: Clinic) -> None:
    jobs = jobs_for(clinic, AHEAD_MIN)

    ahead = started(jobs, clinic)

    assert ahead.take(jobs[3].item_id, "someone-else@example.test") is None
    assert ahead.take(jobs[4].item_id, jobs[4].recipient) is not None


def test_a_killed_worker_leaves_the_loop_building_and_sending_everything(clinic: Clinic) -> None:
    jobs = jobs_for(clinic, AHEAD_MIN)
    ahead = started(jobs, clinic, wait=False)
    for pid in worker_pids():
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while not ahead.done() and time.monotonic() < deadline:
        time.sleep(0.02)

    assert ahead.take(jobs[-1].item_id, jobs[-1].recipient) is None
    assert prebuild._executor is None  # discarded; the next large batch starts a fresh one

    tally = clinic.run(NOW)

    assert tally.flat()["sent_email"] == AHEAD_MIN
    assert len(delivered_files(clinic.settings.outbox_dir, ".eml")) == AHEAD_MIN


@pytest.mark.slow
def test_the_command_sends_a_batch_large_enough_for_the_worker_once(clinic: Clinic) -> None:
    """End to end from `python -m office`: the worker starts in a CLI process, all goes once."""
    clinic.add_type("mail", reminder_offsets=EMAIL_24H)
    clinic.many(AHEAD_MIN + 10, start=NOW + timedelta(hours=23), kind="mail")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OFFICE_", "PREFECT_"))}
    env |= {
        "OFFICE_HOME": str(clinic.settings.home),
        "OFFICE_DATABASE_URL": clinic.settings.db_url,
        "OFFICE_SECRET_KEY": clinic.settings.require_secret_key(),
        "PREFECT_HOME": str(clinic.settings.home / "prefect"),
    }
    (clinic.settings.home / "prefect").mkdir(parents=True, exist_ok=True)

    done = subprocess.run(
        [sys.executable, "-m", "app", "reminders", "run", "--now", NOW.isoformat()],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    # The runs' log lines reach the server before the command stops it.
    assert "Error logging to API" not in done.stdout + done.stderr
    files = delivered_files(clinic.settings.outbox_dir, ".eml")
    assert len(files) == AHEAD_MIN + 10
