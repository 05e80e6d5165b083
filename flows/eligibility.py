"""Insurance eligibility flows: before each visit, on each booking, and monthly for everyone.

Each flow reads the same way: record the checks to make (ids only cross into Prefect), ask
each payer in one task per payer batch (concurrently across payers, asyncio inside), then
count what was stored and publish the counts. The work itself is in `office.eligibility`;
the payers' adapters come from `integrations.payers`, built from the settings.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.runtime import flow_run
from prefect.tasks import exponential_backoff

from flows.forms import AsOf, practice_instant, titled
from flows.payer_limits import PrefectPayerGate, sync_payer_limits
from flows.runtime import office
from integrations.payers import payers_from_settings
from office.db import transaction
from office.eligibility import (
    BatchConfig,
    ChecksStillPending,
    PayerLimit,
    local_today,
    payer_limits,
    record_pending,
    run_batch,
    select_appointment,
    select_due,
    select_refresh,
    summarize,
)
from office.models import utcnow
from office.settings import Settings

__all__ = [
    "EligibilityBatchesFailed",
    "batch_config",
    "check_payer_batch",
    "refresh_eligibility",
    "verify_appointment",
    "verify_eligibility",
]

Batches = dict[int, list[int]]


class EligibilityBatchesFailed(RuntimeError):
    """Some payer batches failed outright; their checks are stored as far as they got."""


# --- flows -------------------------------------------------------------------------------------


@flow(name="verify-eligibility", persist_result=False)
async def verify_eligibility(
    days_ahead: Annotated[int, titled("Days ahead", ge=0, le=60)] = 3,
    refresh_after_days: Annotated[int, titled("Re-check after (days)", ge=0, le=365)] = 7,
    now: AsOf = None,
) -> dict[str, int]:
    """Check insurance for every booked visit in the next few days, once per refresh period.

    Args:
        days_ahead: Visits from today through this many days ahead are checked.
        refresh_after_days: A visit whose coverage was verified (active or inactive) within
            this many days is not asked about again.
        now: Run as of this moment; without an offset it is the practice's wall-clock time.
            Leave empty for the current time.
    """
    batches = plan_daily_checks(days_ahead, refresh_after_days, now, _run_key())
    failures = await check_batches(batches, now)
    return await publish_counts(batches, failures, key="eligibility-summary")


@flow(
    name="verify-appointment",
    flow_run_name="appointment-{appointment_id}",
    persist_result=False,
)
async def verify_appointment(
    appointment_id: Annotated[int, titled("Appointment id", ge=1)],
) -> dict[str, int]:
    """Check insurance for one visit now: a new booking, or a manual run from the UI.

    Args:
        appointment_id: The appointment to check. Cancelled visits and patients without an
            active primary coverage are skipped.
    """
    batches = plan_appointment_check(appointment_id, _run_key())
    failures = await check_batches(batches, None)
    return await publish_counts(batches, failures, key="eligibility-appointment")


@flow(name="refresh-eligibility", persist_result=False)
async def refresh_eligibility(now: AsOf = None) -> dict[str, int]:
    """Monthly: re-check everyone seen or booked in the last 12 months, STC 30, as of today.

    Args:
        now: Run as of this moment; without an offset it is the practice's wall-clock time.
            Leave empty for the current time.
    """
    batches = plan_refresh_checks(now, _run_key())
    failures = await check_batches(batches, now)
    return await publish_counts(batches, failures, key="eligibility-refresh")


# --- tasks -------------------------------------------------------------------------------------


@task(cache_policy=NO_CACHE, persist_result=False)
def plan_daily_checks(
    days_ahead: int, refresh_after_days: int, now: datetime | None, run_key: str
) -> Batches:
    """Record a pending check for each visit due one; returns check ids per payer."""
    app = office()
    moment = practice_instant(now)
    today = local_today(moment, app.settings.practice_timezone)
    with transaction(app.factory) as session:
        due = select_due(
            session,
            now=moment,
            today=today,
            days_ahead=days_ahead,
            refresh_after_days=refresh_after_days,
        )
        return record_pending(session, due, run_key=run_key, now=moment)


@task(cache_policy=NO_CACHE, persist_result=False)
def plan_appointment_check(appointment_id: int, run_key: str) -> Batches:
    """Record a pending check for one visit (none if it is cancelled or has no coverage)."""
    app = office()
    with transaction(app.factory) as session:
        due = select_appointment(session, appointment_id)
        return record_pending(session, due, run_key=run_key, now=utcnow())


@task(cache_policy=NO_CACHE, persist_result=False)
def plan_refresh_checks(now: datetime | None, run_key: str) -> Batches:
    """Record a pending STC 30 check per patient seen in the last year, dated today."""
    app = office()
    moment = practice_instant(now)
    today = local_today(moment, app.settings.practice_timezone)
    with transaction(app.factory) as session:
        due = select_refresh(session, now=moment, today=today)
        return record_pending(session, due, run_key=run_key, now=moment)


def _still_pending(_task: Any, _task_run: Any, state: Any) -> bool:
    """Retry a batch only when checks in it are still waiting on the payer."""
    return isinstance(state.data, ChecksStillPending)


@task(
    task_run_name="payer-{payer_id}",
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=30),
    retry_jitter_factor=0.5,
    retry_condition_fn=_still_pending,
    cache_policy=NO_CACHE,
    persist_result=False,
)
async def check_payer_batch(
    payer_id: int, check_ids: list[int], now: datetime | None = None
) -> dict[str, int]:
    """Ask one payer about a batch of checks; a retry re-sends only what is still pending."""
    context = TaskRunContext.get()
    final = context is None or context.task_run.run_count > context.task.retries
    app = office()
    config = batch_config(app.settings, final=final, now=now)
    outcome = await run_batch(app.factory, payer_id, check_ids, config)
    if outcome.pending and not final:
        raise ChecksStillPending(payer_id, outcome.pending)
    return dict(outcome.counts)


def batch_config(settings: Settings, *, final: bool, now: datetime | None) -> BatchConfig:
    """A payer batch's shared parameters: the payer directory and defaults from settings.

    The flows' one seam: the flow tests replace it to answer through an in-memory payer
    and to retry without waiting (a directory cannot be a flow parameter, which Prefect
    records, and a scheduled run builds its own from the settings).
    """
    return BatchConfig.from_settings(
        settings,
        payers=payers_from_settings(settings),
        final=final,
        now=now,
        gate=PrefectPayerGate(),
    )


# --- steps -------------------------------------------------------------------------------------


async def check_batches(batches: Batches, now: datetime | None) -> list[BaseException]:
    """Run every payer's batch at once; returns the failures, as a failed batch stops no other.

    Each batch's slots of its payer's limits are taken here, before its task starts, and
    held until it ends: the task's own hold finds them (see `PrefectPayerGate`).
    """
    moment = None if now is None else practice_instant(now)
    logger = get_run_logger()
    logger.info("%d checks for %d payers", sum(map(len, batches.values())), len(batches))
    if not batches:
        return []
    limits = await asyncio.to_thread(_limits, list(batches))
    await sync_payer_limits(limits.values())
    gate = PrefectPayerGate()

    async def one(payer_id: int, check_ids: list[int]) -> dict[str, int]:
        limit = limits[payer_id]
        async with gate.hold(limit, limit.slots_for(len(check_ids))):
            return await check_payer_batch(payer_id, check_ids, moment)

    results = await asyncio.gather(
        *(one(payer_id, ids) for payer_id, ids in batches.items()), return_exceptions=True
    )
    return [r for r in results if isinstance(r, BaseException)]


async def publish_counts(
    batches: Batches, failures: list[BaseException], *, key: str
) -> dict[str, int]:
    """Count what was stored, publish the counts as a table artifact, and return them.

    Raises:
        EligibilityBatchesFailed: After publishing, when any payer batch failed.
    """
    ids = [check_id for group in batches.values() for check_id in group]
    counts = await asyncio.to_thread(_summarize, ids)
    counts["failed_batches"] = len(failures)
    table = [{"what": name, "count": value} for name, value in sorted(counts.items())]
    await acreate_table_artifact(
        table=table,
        key=key,
        description="Eligibility checks by outcome and work items by alert kind (counts only).",
    )
    get_run_logger().info("eligibility counts: %s", _inline(counts))
    if failures:
        kinds = sorted({type(f).__name__ for f in failures})
        raise EligibilityBatchesFailed(
            f"{len(failures)} of {len(batches)} payer batches failed ({', '.join(kinds)})"
        ) from failures[0]
    return dict(counts)


def _limits(payer_ids: list[int]) -> dict[int, PayerLimit]:
    app = office()
    with app.factory() as session:
        return payer_limits(
            session,
            concurrency=app.settings.payer_concurrency,
            rate=app.settings.payer_rate_per_second,
            payer_ids=payer_ids,
        )


def _summarize(check_ids: list[int]) -> Counter[str]:
    with office().factory() as session:
        return summarize(session, check_ids)


def _inline(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name}={value}" for name, value in sorted(counts.items()))


def _run_key() -> str:
    """Names this flow run on the check rows, so a retry of the run finds its own."""
    return f"{flow_run.get_flow_name()}:{flow_run.get_id()}"
