"""A payer's limits hold across workers: two eligibility runs at once in two processes, each
with its own in-process semaphore at the payer's limit, never have more inquiries in flight at
the clearinghouse than the payer allows, because both hold Prefect's global limit
`payer:<code>` (and with their slots, their shares of the payer's rate: test_rate_share).
A run takes a payer's slots before the payer's batch task starts, and the task's own hold
finds them rather than take more."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from sqlalchemy import update

from flows import eligibility as eligibility_flows
from flows import runtime
from flows.payer_limits import PrefectPayerGate, limit_name, sync_payer_limits
from office.db import transaction
from office.eligibility import PayerLimit
from office.models import Payer
from testkit.mock_clearinghouse import running
from testkit.processes import stop
from tests.eligibility.builders import NOW, TODAY, FakePayer, appointment, clinic, days, patient

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]

LIMIT = 2
VISITS_PER_DAY = 16


@pytest.fixture
def clearinghouse() -> Iterator[str]:
    with running(latency_ms=200) as url:
        yield url


def test_two_workers_at_once_stay_within_the_payers_limit(
    office_app: runtime.Office, clearinghouse: str, tmp_path: Path
) -> None:
    code = f"L{uuid.uuid4().hex[:8].upper()}"  # its own limits: the harness outlives the test
    with transaction(office_app.factory) as session:
        place = clinic(session, concurrency=LIMIT)
        session.execute(
            update(Payer).values(
                payer_code=code, adapter="x12", adapter_settings={"url": clearinghouse}
            )
        )
        for n in range(2 * VISITS_PER_DAY):
            person, _ = patient(session, place, n)
            appointment(session, place, person, day=TODAY + days(5 * (n % 2)))

    go = tmp_path / "go"
    children = [start_child(office_app, day, go) for day in (NOW, NOW + days(5))]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        go.touch()
        outputs = [child.communicate(timeout=300)[0] for child in children]
    finally:
        for child in children:
            stop(child, timeout=10)

    for child, output in zip(children, outputs, strict=True):
        assert child.returncode == 0, output
        assert json.loads(output.strip().splitlines()[-1])["active"] == VISITS_PER_DAY
    stats = httpx.get(f"{clearinghouse}/stats", timeout=10).json()
    assert stats["in_flight"] == 0
    assert stats["requests"] == 2 * VISITS_PER_DAY
    assert 1 <= stats["max_in_flight"] <= LIMIT
    in_flight = asyncio.run(read_limit(code))
    assert (in_flight.limit, in_flight.active_slots) == (LIMIT, 0)


def start_child(app: runtime.Office, now: datetime, go: Path) -> subprocess.Popen[str]:
    from prefect.settings import PREFECT_API_URL

    settings = app.settings
    env = {
        **os.environ,
        "OFFICE_HOME": str(settings.home),
        "OFFICE_DATABASE_URL": settings.db_url,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PYTHONPATH": str(REPO),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.eligibility.limits_child", now.isoformat(), str(go)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_the_limit_follows_the_payers_table() -> None:
    code = "FOLLOWS"
    assert asyncio.run(sync_payer_limits([PayerLimit(code, concurrency=5, rate=2.0)])) == [
        "payer:FOLLOWS"
    ]
    asyncio.run(sync_payer_limits([PayerLimit(code, concurrency=3, rate=0.5)]))
    in_flight = asyncio.run(read_limit(code))
    assert (in_flight.limit, in_flight.slot_decay_per_second) == (3, 0.0)


def test_a_hold_where_the_payers_slots_are_held_takes_no_more() -> None:
    limit = PayerLimit(f"N{uuid.uuid4().hex[:8].upper()}", concurrency=3, rate=10.0)

    async def nested() -> tuple[bool, int, int]:
        await sync_payer_limits([limit])
        # Taking 3 more of 3 would wait for ever: the timeout makes that a failure.
        async with (
            PrefectPayerGate().hold(limit, 3) as outer,
            asyncio.timeout(30),
            PrefectPayerGate().hold(limit, 3) as inner,
        ):
            held = (await read_limit(limit.payer_code)).active_slots
        return outer is inner, held, (await read_limit(limit.payer_code)).active_slots

    assert asyncio.run(nested()) == (True, 3, 0)


def test_a_run_holds_the_payers_slots_before_its_batch_task_starts(
    office_app: runtime.Office, fake_payer: FakePayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = f"B{uuid.uuid4().hex[:8].upper()}"
    with transaction(office_app.factory) as session:
        place = clinic(session, concurrency=LIMIT)
        session.execute(update(Payer).values(payer_code=code))
        for n in range(3):
            person, _ = patient(session, place, n)
            appointment(session, place, person, day=TODAY + days(1))
    at_start: list[int] = []
    batch = eligibility_flows.check_payer_batch

    @task(task_run_name="payer-{payer_id}", cache_policy=NO_CACHE, persist_result=False)
    async def watched(payer_id: int, check_ids: list[int], now: datetime | None = None) -> Any:
        at_start.append((await read_limit(code)).active_slots)
        return await batch.fn(payer_id, check_ids, now)

    monkeypatch.setattr(eligibility_flows, "check_payer_batch", watched)
    # A task taking 2 more of the 2 slots would wait for ever: the timeout makes that a failure.
    counts = asyncio.run(asyncio.wait_for(eligibility_flows.verify_eligibility(now=NOW), 120))
    assert counts["active"] == 3
    assert len(fake_payer.requests) == 3
    assert at_start == [LIMIT]  # min(the payer's limit, the batch's 3 checks)
    assert asyncio.run(read_limit(code)).active_slots == 0


async def read_limit(code: str) -> Any:
    async with get_client() as client:
        return await client.read_global_concurrency_limit_by_name(limit_name(code))
