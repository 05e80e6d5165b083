"""Follow-ups under `office serve`, end to end: a signed booking webhook on the demo practice
starts the intake run, which starts the eligibility check and the confirmation notice as
runs of their own deployments (`on-booking`, `on-change`) that `office serve` runs; then
`retry-followups` reads how each ended and marks the ledger to match.

Slow: a real Prefect server, `office serve` and a flow-run process per run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from office.db import make_engine, make_sessionmaker
from office.models import (
    Appointment,
    AppointmentType,
    Followup,
    FollowupStatus,
    Location,
    OutboxItem,
    Patient,
    Provider,
    utcnow,
)
from office.signing import sign_webhook
from tests.app.processes import wait_for
from tests.app.test_serve import Served, free_port, office_env

pytestmark = pytest.mark.slow

# The deployments a booking's follow-ups need, from deployments/prefect.yaml, with
# retry-followups every 5 seconds instead of 2 minutes.
DEPLOYMENTS = """\
deployments:
  - name: intake
    entrypoint: flows/intake.py:process_inbox
  - name: on-booking
    entrypoint: flows/eligibility.py:verify_appointment
  - name: on-change
    entrypoint: flows/reminders.py:send_appointment_notices
  - name: retry-followups
    entrypoint: flows/followups.py:retry_followups
    schedules:
      - {interval: 5, slug: every-5-seconds}
"""
FINAL = {FollowupStatus.DONE, FollowupStatus.FAILED, FollowupStatus.GAVE_UP}


def start_serve(root: Path) -> tuple[Served, subprocess.Popen[bytes]]:
    home, deployments, output = root / "home", root / "deployments.yaml", root / "serve.out"
    deployments.write_text(DEPLOYMENTS)
    env = office_env(home)
    for command in (["db", "upgrade"], ["demo", "--seed-only"]):
        subprocess.run([sys.executable, "-m", "app", *command], env=env, check=True)
    port = free_port()
    command = [sys.executable, "-m", "app", "serve", "--port", str(port)]
    command += ["--prefect-port", str(free_port()), "--deployments", str(deployments)]
    with output.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    up = wait_for(
        lambda: "serving 4 deployments" in output.read_text() or process.poll() is not None,
        within=300,
    )
    assert up, output.read_text()
    assert process.poll() is None, output.read_text()
    text = output.read_text()
    ui = text.split("Prefect UI: ", 1)[1].split()[0]
    intake = text.split("intake: ", 1)[1].split()[0]
    served = Served(home, process, output, ui, intake)
    assert wait_for(served.intake_answers, within=60), served.text()
    return served, process


def booking_body(home: Path) -> bytes:
    """A new booking for the demo's first patient, two days out."""
    engine = make_engine(f"sqlite:///{home / 'office.db'}")
    try:
        with make_sessionmaker(engine)() as session:
            patient = session.scalars(select(Patient).order_by(Patient.id)).first()
            provider = session.scalars(select(Provider).order_by(Provider.id)).first()
            location = session.scalars(select(Location).order_by(Location.id)).first()
            kind = session.scalars(select(AppointmentType).order_by(AppointmentType.id)).first()
            assert patient is not None
            assert provider is not None
            assert location is not None
            assert kind is not None
            payload = {
                "event": "booked",
                "external_id": "PM-SERVED-1",
                "patient_mrn": patient.mrn,
                "provider_npi": provider.npi,
                "location_id": location.id,
                "appointment_type": kind.code,
                "start": (utcnow() + timedelta(days=2)).replace(hour=15, minute=0).isoformat(),
                "occurred_at": utcnow().isoformat(),
            }
    finally:
        engine.dispose()
    return json.dumps(payload).encode()


def test_a_bookings_followups_run_as_their_own_served_runs_and_are_settled(
    tmp_path: Path,
) -> None:
    served, process = start_serve(tmp_path)
    try:
        body = booking_body(served.home)
        stamp = int(time.time())
        signature = sign_webhook("w" * 40, stamp, "bookings", "", body)
        answer = httpx.post(
            f"{served.intake_url}/webhooks/bookings",
            content=body,
            headers={
                "Content-Type": "application/json",
                "X-Office-Timestamp": str(stamp),
                "X-Office-Signature": signature,
            },
            trust_env=False,
            timeout=60,
        )
        assert answer.status_code == 202, answer.text

        engine = make_engine(f"sqlite:///{served.home / 'office.db'}")
        factory = make_sessionmaker(engine)

        def followups() -> list[Followup]:
            with factory() as session:
                visit = session.scalars(
                    select(Appointment.id).where(Appointment.external_id == "PM-SERVED-1")
                ).first()
                if visit is None:
                    return []
                return list(
                    session.scalars(
                        select(Followup).where(Followup.entity_id == visit).order_by(Followup.id)
                    )
                )

        def settled() -> bool:
            rows = followups()
            return len(rows) == 2 and all(row.status in FINAL for row in rows)

        assert wait_for(settled, within=420, every=2), (
            [(r.name, r.status, r.run_id) for r in followups()],
            served.text()[-3000:],
        )
        rows = {row.name: row for row in followups()}
        deployments = {d["id"]: d["name"] for d in served.api("/deployments/filter")}
        for name, deployment in [
            ("verify_appointment", "on-booking"),
            ("appointment_notices", "on-change"),
        ]:
            row = rows[name]
            assert row.run_id is not None, name  # its own run, not the intake's
            run = httpx.get(
                f"{served.api_url}/flow_runs/{row.run_id}", trust_env=False, timeout=60
            ).json()
            assert deployments[run["deployment_id"]] == deployment
            assert run["parameters"] == {"appointment_id": row.entity_id}
            assert run["idempotency_key"].startswith(f"followup-{row.id}-{row.attempts}-")
            done = run["state"]["type"] == "COMPLETED"
            assert (row.status is FollowupStatus.DONE) is done, (name, run["state"])
        assert rows["appointment_notices"].status is FollowupStatus.DONE
        with factory() as session:  # the confirmation, queued by the on-change run
            queued = session.scalars(
                select(OutboxItem).where(
                    OutboxItem.appointment_id == rows["appointment_notices"].entity_id
                )
            ).all()
        assert queued
        engine.dispose()
    finally:
        process.terminate()  # SIGTERM: office serve stops its server and runner with it
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
