"""Run every flow once for `office demo`, timing each one."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select

from flows.eligibility import verify_eligibility
from flows.intake import process_inbox
from flows.mail import route_mail
from flows.onboarding import onboarding_followup
from flows.reminders import send_reminders
from flows.runtime import office
from office.models import InboxItem, InboxStatus

if TYPE_CHECKING:
    from rich.console import Console

    from app.demo import FlowReport, Timings

__all__ = ["run_all"]

# The demo checks every visit it booked, not only the next three days.
DEMO_DAYS_AHEAD = 14


async def run_all(*, now: datetime, console: Console, timings: Timings) -> list[FlowReport]:
    """Each flow in the order an office day runs them (the Prefect API is up already)."""
    steps: list[tuple[str, Callable[[], Awaitable[dict[str, int]]]]] = [
        ("process-inbox", _process_pending_inbox),
        ("verify-eligibility", lambda: verify_eligibility(days_ahead=DEMO_DAYS_AHEAD, now=now)),
        ("send-reminders", lambda: send_reminders(now=now)),
        ("route-mail", lambda: _route_demo_mail(now)),
        ("onboarding-followup", lambda: onboarding_followup(now=now)),
    ]
    reports = []
    for name, step in steps:
        with console.status(f"running {name}"):
            started = time.perf_counter()
            counts = await step()
            seconds = time.perf_counter() - started
        timings.add(f"flow {name}", seconds)
        reports.append(_report(name, seconds, counts))
        console.print(f"[green]✓[/green] {name} ({seconds:.1f} s)")
    return reports


async def _process_pending_inbox() -> dict[str, int]:
    """The demo's stored webhooks, one intake flow run each, as `office serve` would."""
    with office().factory() as session:
        pending = session.scalars(
            select(InboxItem.id)
            .where(InboxItem.status == InboxStatus.PENDING)
            .order_by(InboxItem.id)
        ).all()
    counts: dict[str, int] = {}
    for inbox_id in pending:
        outcome = await process_inbox(inbox_id)
        key = str(outcome["status"])
        counts[key] = counts.get(key, 0) + 1
    return counts


async def _route_demo_mail(now: datetime) -> dict[str, int]:
    """The demo's mailbox filled after the reminders went out (so some bounce), then routed."""
    from app.demo_mail import fill_demo_mailbox
    from office.db import transaction

    runtime = office()
    with transaction(runtime.factory) as session:
        fill_demo_mailbox(runtime.settings, session)
    return await route_mail(now=now)


def _report(name: str, seconds: float, counts: dict[str, int]) -> FlowReport:
    from app.demo import FlowReport

    return FlowReport(name, seconds, {k: v for k, v in counts.items() if v})
