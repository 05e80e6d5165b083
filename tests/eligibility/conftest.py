"""Eligibility fixtures: the flows pointed at the test database and at an in-memory payer.

The Prefect API is the project-wide session harness (`prefect_harness` in tests/conftest.py);
a second harness here would nest inside it and kill the shared server when it exits.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime

import pytest
from sqlalchemy import Engine

import flows.eligibility as eligibility_flows
from flows import runtime
from office.eligibility import BatchConfig, RetryPolicy
from office.settings import Settings
from tests.eligibility.builders import FakePayer

# No waiting in tests: retries back off by zero seconds and ignore Retry-After.
NO_WAIT = RetryPolicy(attempts=2, base_delay=0.0, jitter=0.0, max_retry_after=0.0)


@pytest.fixture
def office_app(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[runtime.Office]:
    """The flows' settings and database for this test only."""
    monkeypatch.setattr(runtime, "_override", None)
    return runtime.use_office(settings, engine)


@pytest.fixture
def fake_payer(monkeypatch: pytest.MonkeyPatch) -> FakePayer:
    """Every payer answers through this fake; batch retries come at once.

    The flow's one seam, `batch_config`, still builds the batch's parameters from the
    settings; only the payer directory and the waiting are swapped.
    """
    fake = FakePayer()
    production = eligibility_flows.batch_config

    def batch_config(settings: Settings, *, final: bool, now: datetime | None) -> BatchConfig:
        config = production(settings, final=final, now=now)
        return replace(config, payers=fake, policy=NO_WAIT)

    monkeypatch.setattr(eligibility_flows, "batch_config", batch_config)
    quick = eligibility_flows.check_payer_batch.with_options(
        retry_delay_seconds=0, retry_jitter_factor=None
    )
    monkeypatch.setattr(eligibility_flows, "check_payer_batch", quick)
    return fake
