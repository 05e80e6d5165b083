"""Follow-ups as their own deployment runs: the intake starts `on-booking` and `on-change`
with a key per ledger id and attempt and does not wait; `retry-followups` learns from the
Prefect API how each run ended, retries a failed or crashed one as a new run and, out of
attempts, hands it to a person. Without a deployment a follow-up runs in process.
`office inbox replay` runs the handler again and starts the follow-ups the same way.

The deployments are registered on the session's test server with nobody serving them, so
their runs stay Scheduled until a test sets the state a worker would have reported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from prefect import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.states import Completed, Crashed, Failed, State
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import app
from flows import runtime
from flows.eligibility import verify_appointment
from flows.followups import retry_followups
from flows.intake import process_inbox
from flows.reminders import send_appointment_notices
from office.db import transaction
from office.followups import MAX_ATTEMPTS, STALE_CLAIM
from office.intake import process_item
from office.models import (
    Followup,
    FollowupStatus,
    InboxItem,
    OutboxItem,
    WorkItem,
    utcnow,
)
from office.settings import Settings
from tests.records.conftest import booked, ledger

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]

FLOWS = {"on-booking": verify_appointment, "on-change": send_appointment_notices}


@pytest.fixture
def deployments() -> Iterator[Callable[..., dict[str, UUID]]]:
    """Register some of the follow-ups' deployments, served (polled for runs, as `office
    serve` or a worker does) or idle (registered by an `office serve` no longer running).
    All removed after the test, so the other tests in the session run follow-ups in process.
    """
    made: list[UUID] = []

    async def register(served: tuple[str, ...], idle: tuple[str, ...]) -> dict[str, UUID]:
        ids = {}
        for name in (*served, *idle):
            deployment = await FLOWS[name].ato_deployment(name=name)
            ids[name] = await deployment.apply()
        polled = [ids[name] for name in served]
        async with get_client() as client:
            await client.get_scheduled_flow_runs_for_deployments(deployment_ids=polled)
            for deployment_id in polled:  # the server records the poll in the background
                for _ in range(600):
                    if (await client.read_deployment(deployment_id)).last_polled is not None:
                        break
                    await asyncio.sleep(0.05)
        return ids

    def make(*served: str, idle: tuple[str, ...] = ()) -> dict[str, UUID]:
        ids = asyncio.run(register(served, idle))
        made.extend(ids.values())
        return ids

    yield make

    async def remove() -> None:
        async with get_client() as client:
            for deployment_id in made:
                await client.delete_deployment(deployment_id)

    asyncio.run(remove())


def key(row: Followup, attempt: int) -> str:
    return f"followup-{row.id}-{attempt}-{row.created_at:%Y%m%dT%H%M%S%f}"


def flow_run(run_id: str) -> FlowRun:
    async def read() -> FlowRun:
        async with get_client() as client:
            return await client.read_flow_run(UUID(run_id))

    return asyncio.run(read())


def runs_of(deployment_id: UUID) -> list[FlowRun]:
    async def read() -> list[FlowRun]:
        from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

        async with get_client() as client:
            return await client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
            )

    return asyncio.run(read())


def end_run(run_id: str | None, state: State[Any]) -> None:
    """What the worker running it would have reported."""
    assert run_id is not None

    async def force() -> None:
        async with get_client() as client:
            await client.set_flow_run_state(UUID(run_id), state, force=True)

    asyncio.run(force())


def retry() -> dict[str, int]:
    return asyncio.run(retry_followups())


def make_due(practice: sessionmaker[Session]) -> None:
    with transaction(practice) as session:
        session.execute(
            update(Followup)
            .where(Followup.status == FollowupStatus.FAILED)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


def test_each_followup_starts_as_its_own_deployment_run_keyed_by_id_and_attempt(
    practice: sessionmaker[Session],
    office_app: runtime.Office,
    deployments: Callable[..., dict[str, UUID]],
) -> None:
    ids = deployments("on-booking", "on-change")
    item_id = booked(practice)

    result = asyncio.run(process_inbox(item_id))

    assert result["status"] == "processed"
    rows = ledger(practice)
    assert sorted(result["followups"]) == sorted(  # type: ignore[call-overload]
        f"{name}:{row.entity_id}" for name, row in rows.items()
    )
    for name, deployment in [
        ("verify_appointment", "on-booking"),
        ("appointment_notices", "on-change"),
    ]:
        row = rows[name]
        assert (row.status, row.attempts) == (FollowupStatus.STARTED, 1)
        assert row.run_id is not None
        run = flow_run(row.run_id)
        assert run.deployment_id == ids[deployment]
        assert run.parameters == {"appointment_id": row.entity_id}  # ids only
        assert run.idempotency_key == key(row, 1)
        assert run.parent_task_run_id is None  # its own run, not the intake's child
        assert run.state is not None
        assert run.state.is_scheduled()
    with practice() as session:  # nothing ran in the intake's process
        assert session.scalars(select(OutboxItem)).all() == []

    # The dispatcher died after Prefect created the run and before the ledger named it:
    # claimed again once stale, as the same attempt, the key finds the same run.
    first = rows["appointment_notices"].run_id
    with transaction(practice) as session:
        session.execute(
            update(Followup)
            .where(Followup.name == "appointment_notices")
            .values(run_id=None, started_at=utcnow() - STALE_CLAIM - timedelta(seconds=1))
        )
    assert retry()["started"] == 1
    again = ledger(practice)["appointment_notices"]
    assert (again.status, again.attempts, again.run_id) == (FollowupStatus.STARTED, 1, first)
    assert [str(run.id) for run in runs_of(ids["on-change"])] == [first]


def test_runs_that_end_are_settled_and_a_failing_one_is_retried_as_new_runs_then_given_up(
    practice: sessionmaker[Session],
    office_app: runtime.Office,
    deployments: Callable[..., dict[str, UUID]],
) -> None:
    ids = deployments("on-booking", "on-change")
    asyncio.run(process_inbox(booked(practice)))
    rows = ledger(practice)

    # Still scheduled: nothing to settle, nothing due.
    assert retry() == {"done": 0, "failed": 0, "waiting": 2, "due": 0, "started": 0}

    end_run(rows["appointment_notices"].run_id, Completed())
    end_run(rows["verify_appointment"].run_id, Failed())
    assert retry() == {"done": 1, "failed": 1, "waiting": 0, "due": 0, "started": 0}
    rows = ledger(practice)
    assert rows["appointment_notices"].status is FollowupStatus.DONE
    check = rows["verify_appointment"]
    assert (check.status, check.attempts, check.error) == (FollowupStatus.FAILED, 1, "run failed")
    assert check.next_attempt_at > utcnow()  # its back-off

    seen = {check.run_id}
    for attempt in range(2, MAX_ATTEMPTS + 1):
        make_due(practice)
        assert retry()["started"] == 1
        check = ledger(practice)["verify_appointment"]
        assert (check.status, check.attempts) == (FollowupStatus.STARTED, attempt)
        assert check.run_id not in seen  # a retry is a new run
        assert check.run_id is not None
        assert flow_run(check.run_id).idempotency_key == key(check, attempt)
        seen.add(check.run_id)
        end_run(check.run_id, Crashed())  # a worker killed mid-run
        assert retry()["failed"] == 1

    check = ledger(practice)["verify_appointment"]
    assert (check.status, check.error) == (FollowupStatus.GAVE_UP, "run crashed")
    assert len(runs_of(ids["on-booking"])) == MAX_ATTEMPTS
    with practice() as session:
        item = session.scalars(select(WorkItem).where(WorkItem.kind == "followup_failed")).one()
    assert (item.entity_id, item.detail["followup"]) == (check.entity_id, "verify_appointment")


@pytest.mark.parametrize("on_booking", ["missing", "idle"])
def test_with_nobody_serving_its_deployment_a_followup_runs_in_process_and_stops_no_other(
    practice: sessionmaker[Session],
    office_app: runtime.Office,
    deployments: Callable[..., dict[str, UUID]],
    on_booking: str,
) -> None:
    # on-booking not registered, or registered and polled by nobody: the check runs here,
    # and fails; the notice is started as its served deployment's run all the same.
    ids = deployments("on-change", idle=("on-booking",) if on_booking == "idle" else ())
    asyncio.run(process_inbox(booked(practice)))

    rows = ledger(practice)
    check, notice = rows["verify_appointment"], rows["appointment_notices"]
    assert (check.status, check.attempts, check.run_id) == (FollowupStatus.FAILED, 1, None)
    assert check.error == "EligibilityBatchesFailed"
    assert (notice.status, notice.attempts) == (FollowupStatus.STARTED, 1)
    assert [str(run.id) for run in runs_of(ids["on-change"])] == [notice.run_id]


def test_replay_runs_the_handler_again_and_starts_its_followups(
    practice: sessionmaker[Session],
    office_app: runtime.Office,
    settings: Settings,
    deployments: Callable[..., dict[str, UUID]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = deployments("on-change")  # the notice as its run; the check here, where it fails
    item_id = booked(practice)
    process_item(practice, item_id)  # handled, its follow-ups recorded and never started
    assert {(r.status, r.attempts) for r in ledger(practice).values()} == {
        (FollowupStatus.PENDING, 0)
    }

    monkeypatch.setenv("OFFICE_DATABASE_URL", settings.db_url)
    monkeypatch.setenv("OFFICE_HOME", str(settings.home))
    result = CliRunner().invoke(app, ["inbox", "replay", str(item_id)])

    assert result.exit_code == 0, result.output
    assert f"inbox item {item_id} processed" in result.output
    with practice() as session:
        assert session.get_one(InboxItem, item_id).attempts == 2  # the handler ran again
    rows = ledger(practice)
    check, notice = rows["verify_appointment"], rows["appointment_notices"]
    assert (check.status, check.attempts) == (FollowupStatus.FAILED, 1)
    assert (notice.status, notice.attempts) == (FollowupStatus.STARTED, 1)
    assert [str(run.id) for run in runs_of(ids["on-change"])] == [notice.run_id]
    assert (
        f"follow-up verify_appointment for appointment {check.entity_id}: failed "
        "(EligibilityBatchesFailed), attempt 1"
    ) in result.output
    assert (
        f"follow-up appointment_notices for appointment {notice.entity_id}: started, "
        f"attempt 1, run {notice.run_id}"
    ) in result.output
