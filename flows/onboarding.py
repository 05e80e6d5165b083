"""Onboarding as Prefect flows: a table of contents over `office.onboarding`.

- `start-onboarding(staff_id)`: build the person's checklist, then send its welcome and
  assignment mail. Runs when a staff member is added (`office staff add`, the practice
  import, a webhook).
- `start-offboarding(staff_id, last_day)`: a departure's checklist (revoking what the
  onboarding granted) and its assignment mail.
- `onboarding-followup`: daily, practice time: reminders, escalations, releases and
  renewals for every open item, the mail they call for, and a progress artifact.

Parameters are a staff id and an instant; results, logs and artifacts are counts.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from flows.forms import AsOf, PracticeDay, practice_instant, titled
from flows.runtime import office
from integrations.mail import mailer_from_settings
from office.contracts.mail import MailRetryableError
from office.db import transaction
from office.mailing import send_outbox
from office.onboarding import (
    FollowupPlan,
    follow_up,
    load_calendar,
    offboard,
    start_onboarding,
)
from office.onboarding.directory import load_directory
from office.onboarding.mailing import composers
from office.onboarding.staffing import start_arrivals
from office.onboarding.views import progress

__all__ = [
    "build_checklist",
    "build_offboarding",
    "follow_up_checklists",
    "onboarding_followup",
    "progress_counts",
    "send_onboarding_mail",
    "start_offboarding_flow",
    "start_onboarding_flow",
]


def _retryable(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only what the mail adapter called retryable, never bad settings."""
    return isinstance(state.data, MailRetryableError)


def _today(now: datetime) -> Any:
    return now.astimezone(ZoneInfo(office().settings.practice_timezone)).date()


@task(name="build-checklist", cache_policy=NO_CACHE, persist_result=False)
def build_checklist(staff_id: int, now: datetime) -> dict[str, int]:
    """Build one person's checklist from their role's template; ids and counts."""
    current = office()
    with transaction(current.factory) as session:
        built = start_onboarding(
            session,
            staff_id,
            now=now,
            zone=current.settings.practice_timezone,
            actor="flow:start-onboarding",
        )
    return {
        "checklist_id": built.checklist_id,
        "items": built.items,
        "created": int(built.created),
        "messages": built.messages,
    }


@task(name="build-offboarding", cache_policy=NO_CACHE, persist_result=False)
def build_offboarding(staff_id: int, last_day: date, now: datetime) -> dict[str, int]:
    """Build one departure's checklist: a revoke item per access granted; ids and counts."""
    current = office()
    with transaction(current.factory) as session:
        built = offboard(
            session,
            staff_id,
            last_day,
            now=now,
            zone=current.settings.practice_timezone,
            actor="flow:start-offboarding",
        )
    return {
        "checklist_id": built.checklist_id,
        "items": built.items,
        "created": int(built.created),
        "messages": built.messages,
    }


@task(
    name="send-onboarding-mail",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_condition_fn=_retryable,
)
async def send_onboarding_mail(now: datetime) -> dict[str, int]:
    """Send the queued onboarding mail, each message exactly once; outcomes by kind."""
    current = office()
    settings = current.settings
    mailer = mailer_from_settings(settings)
    tally = await send_outbox(
        current.factory,
        mailer,
        composers(
            sender=settings.mail_from,
            public_url=settings.public_url,
            link_key=settings.link_keys()[0],
            now=now,
        ),
        now=now,
        resend_safe=settings.mailer == "file",
    )
    return tally.to_dict()


@task(name="follow-up-checklists", cache_policy=NO_CACHE, persist_result=False)
def follow_up_checklists(now: datetime) -> dict[str, int]:
    """Start the hires whose first day has come, then decide every open item's reminder,
    escalation, release or renewal; counts."""
    current = office()
    with transaction(current.factory) as session:
        started = start_arrivals(session, today=_today(now))
        tally = follow_up(
            session,
            FollowupPlan(today=_today(now), now=now),
            load_calendar(session),
            load_directory(session),
        )
    return {**tally.to_dict(), "staff_started": started}


@task(name="count-checklist-progress", cache_policy=NO_CACHE, persist_result=False)
def progress_counts(now: datetime) -> list[dict[str, Any]]:
    """People, items done, overdue, blocked and expiring per checklist kind: counts only."""
    with office().factory() as session:
        found = progress(session, _today(now))
    rows: dict[str, Counter[str]] = {}
    for person in found:
        row = rows.setdefault(person.kind if person.kind != "-" else "certifications", Counter())
        row["people"] += 1
        row["items"] += person.total
        row["done"] += person.done
        row["overdue"] += person.overdue
        row["blocked"] += person.blocked
        row["expiring_60_days"] += person.expiring
        row["expired"] += person.expired
    columns = ("people", "items", "done", "overdue", "blocked", "expiring_60_days", "expired")
    return [
        {"checklists": kind, **{name: counts[name] for name in columns}}
        for kind, counts in sorted(rows.items())
    ]


@flow(name="start-onboarding", persist_result=False)
async def start_onboarding_flow(
    staff_id: Annotated[int, titled("Staff id", ge=1)], now: AsOf = None
) -> dict[str, int]:
    """Build a new staff member's checklist and send its welcome and assignment mail.

    Args:
        staff_id: The new staff member's record id (office staff add prints it).
        now: The instant the checklist is built at; leave empty for the real clock.
    """
    moment = practice_instant(now)
    built = build_checklist(staff_id, moment)
    sent = await send_onboarding_mail(moment)
    get_run_logger().info(
        "checklist %s: %d items, %d messages queued",
        built["checklist_id"],
        built["items"],
        built["messages"],
    )
    return {**built, **{f"send_{key}": value for key, value in sent.items()}}


@flow(name="start-offboarding", persist_result=False)
async def start_offboarding_flow(
    staff_id: Annotated[int, titled("Staff id", ge=1)],
    last_day: Annotated[PracticeDay, titled("Last day")],
    now: AsOf = None,
) -> dict[str, int]:
    """A departure: revoke every access the onboarding granted, due on the last day.

    Args:
        staff_id: The departing staff member's record id.
        last_day: Their last working day (YYYY-MM-DD); each revoke item is due then.
        now: The instant the checklist is built at; leave empty for the real clock.
    """
    moment = practice_instant(now)
    built = build_offboarding(staff_id, last_day, moment)
    sent = await send_onboarding_mail(moment)
    get_run_logger().info(
        "offboarding checklist %s: %d items", built["checklist_id"], built["items"]
    )
    return {**built, **{f"send_{key}": value for key, value in sent.items()}}


@flow(name="onboarding-followup", persist_result=False)
async def onboarding_followup(now: AsOf = None) -> dict[str, int]:
    """Daily: reminders, the escalation ladder, releases and renewals, then their mail.

    Args:
        now: The instant to decide for (its practice day counts); empty for the real clock.
    """
    moment = practice_instant(now)
    decided = follow_up_checklists(moment)
    sent = await send_onboarding_mail(moment)
    rows = progress_counts(moment) or [
        {
            "checklists": "-",
            "people": 0,
            "items": 0,
            "done": 0,
            "overdue": 0,
            "blocked": 0,
            "expiring_60_days": 0,
            "expired": 0,
        }
    ]
    await acreate_table_artifact(
        table=rows,
        key="onboarding-progress",
        description="Onboarding and offboarding checklists (counts only)",
    )
    get_run_logger().info(
        "follow-up: %d items, %d overdue, %d blocked, %d messages",
        decided.get("items", 0),
        decided.get("overdue", 0),
        decided.get("blocked", 0),
        decided.get("messages", 0),
    )
    return {**decided, **{f"send_{key}": value for key, value in sent.items()}}
