"""Run every flow once for `office demo`, timing each one."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING

from prefect.client.orchestration import get_client
from sqlalchemy import select

from flows.intake import process_inbox
from flows.runtime import office
from office.models import InboxItem, InboxStatus

if TYPE_CHECKING:
    from rich.console import Console

    from office.demo import FlowReport, Timings

__all__ = ["run_all"]


async def run_all(*, now: datetime, console: Console, timings: Timings) -> list[FlowReport]:
    from office.demo import FlowReport

    with console.status("starting the Prefect API"), timings.step("Prefect API start"):
        async with get_client() as client:
            await client.api_healthcheck()

    reports = []
    with office().factory() as session:
        pending = list(
            session.scalars(
                select(InboxItem.id)
                .where(InboxItem.status == InboxStatus.PENDING)
                .order_by(InboxItem.id)
            )
        )
    started = time.perf_counter()
    counts: dict[str, int] = {}
    with console.status("process-inbox: stored webhooks"):
        for inbox_id in pending:
            outcome = await process_inbox(inbox_id)
            key = str(outcome["status"])
            counts[key] = counts.get(key, 0) + 1
    reports.append(FlowReport("process-inbox", time.perf_counter() - started, counts))
    timings.add("flow process-inbox", reports[-1].seconds)
    del now
    return reports
