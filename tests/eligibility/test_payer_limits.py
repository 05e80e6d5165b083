"""A payer's limits hold across workers: two eligibility runs at once in two processes, each
with its own in-process semaphore at the payer's limit, never have more inquiries in flight at
the clearinghouse than the payer allows, because both hold Prefect's global limit
`payer:<code>` (and with their slots, their shares of the payer's rate: test_rate_share)."""

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
from prefect.client.orchestration import get_client
from sqlalchemy import update

from flows import runtime
from flows.payer_limits import limit_name, sync_payer_limits
from office.db import transaction
from office.eligibility import PayerLimit
from office.models import Payer
from testkit.mock_clearinghouse import running
from testkit.processes import stop
from tests.eligibility.builders import NOW, TODAY, appointment, clinic, days, patient

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


async def read_limit(code: str) -> Any:
    async with get_client() as client:
        return await client.read_global_concurrency_limit_by_name(limit_name(code))
