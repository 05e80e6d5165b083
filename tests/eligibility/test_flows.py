"""The eligibility flows through the Prefect engine: faults, retries, and no patient data.

Few on purpose (each flow run costs the engine about a second); the rules are tested
without the engine next door.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from flows import runtime
from flows.eligibility import refresh_eligibility, verify_appointment, verify_eligibility
from office.db import transaction
from office.eligibility.types import EligibilityRequest
from office.models import AppointmentStatus, CheckStatus, EligibilityCheck, WorkItem
from tests.eligibility.builders import (
    DOB,
    NOW,
    TODAY,
    FakePayer,
    appointment,
    clinic,
    days,
    first_name,
    member_id,
    patient,
)

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


def book(factory: sessionmaker[Session], count: int, *, payers: int = 2) -> list[int]:
    with transaction(factory) as session:
        place = clinic(session, payers=payers, concurrency=3)
        visits = []
        for n in range(count):
            person, _ = patient(session, place, n, payer=n % payers)
            visits.append(appointment(session, place, person, day=TODAY + days(1 + n % 3)))
        return visits


def ended(factory: sessionmaker[Session]) -> tuple[dict[int, CheckStatus], Counter[int]]:
    """The latest check status per appointment, and work items per appointment."""
    with factory() as session:
        latest: dict[int, CheckStatus] = {}
        for check in session.scalars(select(EligibilityCheck).order_by(EligibilityCheck.id)):
            assert check.appointment_id is not None
            latest[check.appointment_id] = check.status
        items = Counter(item.entity_id for item in session.scalars(select(WorkItem)))
    return latest, items


def test_faults_end_verified_or_unverified_with_exactly_one_work_item(
    office_app: runtime.Office, fake_payer: FakePayer
) -> None:
    visits = book(office_app.factory, 30)
    fake_payer.fault_rate = 0.2
    down: dict[str, str] = {}
    persistent = iter(["timeout", "5xx", "aaa42"])

    def decide(request: EligibilityRequest, attempt: int) -> str:
        # Three members meet a payer that never recovers; the rest see 20 % random faults.
        member = request.subscriber.member_id or ""
        if member not in down and len(down) < 3:
            down[member] = next(persistent)
        return down.get(member) or fake_payer._random(request, attempt)

    fake_payer.decide = decide
    counts = asyncio.run(verify_eligibility(now=NOW))
    assert counts["due"] == 30
    assert counts["checked"] == 30
    assert counts["failed_batches"] == 0
    assert counts["unverified"] == 3
    assert counts["active"] == 27
    assert counts["alerts"] == counts["alert_unverified"] == 3
    assert sum(fake_payer.outcomes[f] for f in ("5xx", "429", "timeout", "aaa42")) > 3 * 6

    again = asyncio.run(verify_eligibility(now=NOW))
    # Verified visits are not asked again within the refresh age; unverified ones are, and
    # their work items are refreshed rather than repeated.
    assert again["due"] == 3
    assert again["unverified"] == 3

    latest, items = ended(office_app.factory)
    assert set(latest) == set(visits)
    for visit, status in latest.items():
        assert status in (CheckStatus.ACTIVE, CheckStatus.UNVERIFIED)
        assert items[visit] == (1 if status is CheckStatus.UNVERIFIED else 0)


def test_a_batch_left_waiting_on_its_payer_is_retried_by_prefect(
    office_app: runtime.Office, fake_payer: FakePayer
) -> None:
    [visit] = book(office_app.factory, 1, payers=1)
    # Down for both in-process tries of the first task run, up on the task's retry.
    fake_payer.decide = lambda request, attempt: "5xx" if attempt <= 2 else "ok"
    state = asyncio.run(verify_eligibility(now=NOW, return_state=True))
    counts = state.result()
    assert counts["active"] == 1
    assert counts["checked"] == 1
    assert sum(fake_payer.attempts.values()) == 3
    latest, items = ended(office_app.factory)
    assert latest == {visit: CheckStatus.ACTIVE}
    assert not items

    async def task_runs() -> list[Any]:
        async with get_client() as client:
            flow_filter = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
            return await client.read_task_runs(flow_run_filter=flow_filter)

    batch = next(r for r in asyncio.run(task_runs()) if r.name == "payer-1")
    assert batch.run_count == 2


def test_refresh_checks_everyone_seen_for_stc_30_today(
    office_app: runtime.Office, fake_payer: FakePayer
) -> None:
    with transaction(office_app.factory) as session:
        place = clinic(session)
        for n in range(3):
            person, _ = patient(session, place, n)
            appointment(
                session, place, person, day=TODAY - days(40), status=AppointmentStatus.COMPLETED
            )
    counts = asyncio.run(refresh_eligibility(now=NOW))
    assert counts["due"] == 3
    assert counts["active"] == 3
    assert {r.service_type for r in fake_payer.requests.values()} == {"30"}
    assert {r.date_of_service for r in fake_payer.requests.values()} == {TODAY}
    assert asyncio.run(refresh_eligibility(now=NOW))["due"] == 0


# --- no patient data in anything Prefect keeps ---------------------------------------------

PHI = [first_name(0), first_name(1), "Quillfeather", "Subscriberia", member_id(0), member_id(2)]
PHI += ["QZX0", DOB.isoformat(), DOB.strftime("%Y%m%d"), "MRN-T"]


def test_no_patient_data_in_logs_artifacts_or_parameters(
    office_app: runtime.Office, fake_payer: FakePayer, caplog: pytest.LogCaptureFixture
) -> None:
    with transaction(office_app.factory) as session:
        place = clinic(session, payers=1)
        visits = []
        for n in range(4):
            person, _ = patient(session, place, n, relationship="19" if n == 3 else "18")
            visits.append(appointment(session, place, person, day=TODAY + days(1)))
    outcomes = iter(["ok", "malformed", "aaa72", "5xx"])
    chosen: dict[str, str] = {}

    def decide(request: EligibilityRequest, attempt: int) -> str:
        if request.trace not in chosen:
            chosen[request.trace] = next(outcomes, "ok")
        return chosen[request.trace]

    fake_payer.decide = decide
    caplog.set_level(logging.DEBUG)
    daily = asyncio.run(verify_eligibility(now=NOW, return_state=True))
    single = asyncio.run(verify_appointment(visits[0], return_state=True))
    counts = daily.result()
    assert counts["errors"] == 1
    assert counts["alert_fix_patient_data"] == 1
    assert single.result()["checked"] == 1
    # The patient data really went to the payer, so its absence below means something.
    sent = [r.subscriber.first_name for r in fake_payer.requests.values()]
    assert first_name(0) in sent
    assert first_name(1) in sent

    run_ids = [daily.state_details.flow_run_id, single.state_details.flow_run_id]
    recorded = asyncio.run(_recorded(run_ids))
    texts = [record.getMessage() for record in caplog.records] + recorded
    assert any("payer" in text for text in texts), "the check looked at real records"
    for text in texts:
        for secret in PHI:
            assert secret not in text, f"{secret!r} leaked into {text[:120]!r}"


async def _recorded(run_ids: list[UUID | None]) -> list[str]:
    """Everything the Prefect API kept about these runs, as text."""
    await APILogHandler.aflush()
    ids = [run_id for run_id in run_ids if run_id is not None]
    texts: list[str] = []
    async with get_client() as client:
        for run_id in ids:
            run = await client.read_flow_run(run_id)
            texts += [repr(run.parameters), run.name, repr(run.state and run.state.message)]
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids))
        )
        texts += [log.message for log in logs]
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids))
        )
        assert {a.key for a in artifacts} >= {"eligibility-summary", "eligibility-appointment"}
        texts += [repr(a.data) + repr(a.description) for a in artifacts]
        tasks = await client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids))
        )
        texts += [t.name + repr(t.state and t.state.message) for t in tasks]
    return texts
