"""The onboarding flows through the Prefect engine: start-onboarding builds the checklist
and sends its mail through the file outbox, start-offboarding mirrors what was granted,
onboarding-followup escalates and publishes a progress table of counts; no staff name or
address in parameters, logs or artifacts."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, timedelta
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from flows.onboarding import onboarding_followup, start_offboarding_flow, start_onboarding_flow
from flows.runtime import use_office
from office.db import transaction
from office.models import ChecklistItem, OutboxItem, OutboxStatus, Staff, StaffStatus
from office.onboarding.directory import load_directory
from office.settings import Settings
from tests.onboarding.practice import NOW, START, seed_team

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]
SECRETS = ("Peregrine", "Fairweather", "Thistlewood", "onboarding.test")


async def _recorded(run_ids: list[UUID | None]) -> list[str]:
    await APILogHandler.aflush()
    ids = [run_id for run_id in run_ids if run_id is not None]
    texts: list[str] = []
    async with get_client() as client:
        for run_id in ids:
            run = await client.read_flow_run(run_id)
            texts += [repr(run.parameters), run.name]
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids))
        )
        texts += [log.message for log in logs]
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids))
        )
        assert "onboarding-progress" in {a.key for a in artifacts}
        texts += [repr(a.data) + repr(a.description) for a in artifacts]
    return texts


def test_the_flows_build_send_escalate_and_report_counts_only(
    settings: Settings,
    engine: Engine,
    factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with transaction(factory) as session:
        team = seed_team(session)
        hire = Staff(
            first_name="Peregrine",
            last_name="Fairweather",
            email="peregrine@onboarding.test",
            role="front_desk",
            manager_id=team.manager,
            start_date=START,
            status=StaffStatus.PENDING,
        )
        session.add(hire)
        session.flush()
        hire_id = hire.id
        assert hire_id in load_directory(session).people
    use_office(settings, engine)
    caplog.set_level(logging.DEBUG)
    started = asyncio.run(start_onboarding_flow(hire_id, now=NOW, return_state=True))
    built = started.result()
    assert built["created"] == 1
    assert built["items"] == 14
    assert built["send_onboarding_welcome:sent"] == 1
    with transaction(factory) as session:
        email = session.scalars(
            select(ChecklistItem).where(ChecklistItem.key == "email_account")
        ).one()
        email.status = email.status.DONE  # granted, as if IT confirmed it on the board
        email.completed_on = date(2026, 12, 4)
    later = NOW + timedelta(days=14)
    followed = asyncio.run(onboarding_followup(now=later, return_state=True))
    counts = followed.result()
    assert counts["items"] == 13
    assert counts["overdue"] >= 1
    assert counts["send_onboarding_overdue:sent"] >= 1
    left = asyncio.run(
        start_offboarding_flow(hire_id, date(2026, 12, 31), now=later, return_state=True)
    )
    assert left.result()["items"] == 1  # only the email account was granted
    with factory() as session:
        statuses = set(session.scalars(select(OutboxItem.status)))
    assert statuses == {OutboxStatus.SENT}
    assert list(settings.outbox_dir.rglob("*.eml"))
    texts = [r.getMessage() for r in caplog.records] + asyncio.run(
        _recorded([s.state_details.flow_run_id for s in (started, followed, left)])
    )
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into {text[:120]!r}"


def test_office_staff_add_and_offboard_run_the_flows(
    settings: Settings, engine: Engine, factory: sessionmaker[Session]
) -> None:
    from typer.testing import CliRunner

    from app.cli import app

    with transaction(factory) as session:
        team = seed_team(session)
    assert settings.database_url is not None
    env = {
        "OFFICE_HOME": str(settings.home),
        "OFFICE_DATABASE_URL": settings.database_url,
        "OFFICE_SECRET_KEY": "test-link-secret-32-bytes-or-longer",
        "COLUMNS": "200",
    }
    runner = CliRunner()
    added = runner.invoke(
        app,
        [
            "staff",
            "add",
            "new.biller@onboarding.test",
            "--first-name",
            "Peregrine",
            "--last-name",
            "Fairweather",
            "--role",
            "billing",
            "--start-date",
            "2027-01-04",
            "--manager-id",
            str(team.manager),
        ],
        env=env,
    )
    assert added.exit_code == 0, added.output
    assert "items, " in added.output
    again = runner.invoke(
        app,
        [
            "staff",
            "add",
            "new.biller@onboarding.test",
            "--first-name",
            "P",
            "--last-name",
            "F",
            "--role",
            "billing",
            "--start-date",
            "2027-01-04",
        ],
        env=env,
    )
    assert again.exit_code == 1
    assert "already has this email" in again.output
    with factory() as session:
        hire = session.scalars(
            select(Staff).where(Staff.email == "new.biller@onboarding.test")
        ).one()
        assert hire.status is StaffStatus.PENDING
        items = session.scalars(select(ChecklistItem).where(ChecklistItem.staff_id == hire.id))
        assert len(items.all()) == 15
    left = runner.invoke(
        app, ["staff", "offboard", str(hire.id), "--last-day", "2027-03-31"], env=env
    )
    assert left.exit_code == 0, left.output
    assert "0 accesses to revoke" in left.output  # nothing was granted yet
