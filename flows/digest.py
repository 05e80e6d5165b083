"""The morning digest as a Prefect flow: a table of contents over `office.workqueue.digest`.

Three tasks: close what the night made moot (visits past or cancelled), record one digest
per role lead for the practice's day, send them through the general outbox sender. Tasks
take instants and return counts; the messages are built from the outbox rows, which hold
counts only, and nothing is cached or persisted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from flows.forms import AsOf, practice_instant
from flows.runtime import office, withhold_row_data
from integrations.mail import mailer_from_settings
from office.contracts.mail import MailRetryableError
from office.db import transaction
from office.ledgers.work import sweep_work
from office.mailing import send_outbox
from office.workqueue.digest import DigestPlan, digest_composers, queue_digests
from office.workqueue.views import counts

__all__ = ["daily_digest", "open_counts", "queue_digest_mail", "send_digest_mail", "sweep_queue"]


def _retryable(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only what the mail adapter called retryable, never bad settings."""
    return isinstance(state.data, MailRetryableError)


@task(name="sweep-work-queue", cache_policy=NO_CACHE, persist_result=False)
def sweep_queue(now: datetime) -> int:
    """Close the items whose visits are over or cancelled; returns how many closed."""
    with transaction(office().factory) as session:
        return len(sweep_work(session, now=now))


@task(name="queue-digests", cache_policy=NO_CACHE, persist_result=False)
def queue_digest_mail(now: datetime) -> int:
    """Record today's digest for each role lead (once per day and lead); returns the leads."""
    current = office()
    settings = current.settings
    plan = DigestPlan(
        now=now,
        zone=settings.practice_timezone,
        board_url=settings.public_url.rstrip("/") + "/staff",
        notes_as_tasks=tuple(settings.queue_note_kinds_as_tasks),
    )
    with transaction(current.factory) as session:
        return queue_digests(session, plan)


@task(
    name="send-digests",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_condition_fn=_retryable,
)
async def send_digest_mail(now: datetime) -> dict[str, int]:
    """Send the recorded digests, each exactly once; outcomes by kind."""
    current = office()
    settings = current.settings
    mailer = mailer_from_settings(settings)
    with withhold_row_data(MailRetryableError):
        tally = await send_outbox(
            current.factory,
            mailer,
            digest_composers(sender=settings.mail_from, now=now),
            now=now,
            resend_safe=settings.mailer == "file",
        )
    return tally.to_dict()


@task(name="count-open-items", cache_policy=NO_CACHE, persist_result=False)
def open_counts(now: datetime) -> list[dict[str, Any]]:
    """The practice's open items per kind, for the artifact: counts only."""
    current = office()
    with current.factory() as session:
        found = counts(
            session,
            viewer_role=None,
            notes_as_tasks=current.settings.queue_note_kinds_as_tasks,
            now=now,
        )
    return [
        {
            "kind": c.kind,
            "priority": c.priority.value,
            "role": c.role,
            "open": c.count,
            "overdue": c.overdue,
        }
        for c in found
    ]


@flow(name="daily-digest", persist_result=False)
async def daily_digest(now: AsOf = None) -> dict[str, int]:
    """Weekday mornings: close what is moot, then mail each role lead the queue's counts.

    Args:
        now: The instant to compute from; without an offset it is the practice's wall-clock
            time. Leave empty for the real clock.
    """
    moment = practice_instant(now)
    closed = sweep_queue(moment)
    leads = queue_digest_mail(moment)
    sent = await send_digest_mail(moment)
    rows = open_counts(moment) or [
        {"kind": "-", "priority": "-", "role": "-", "open": 0, "overdue": 0}
    ]
    await acreate_table_artifact(
        table=rows, key="work-queue-digest", description="Open work items by kind (counts only)"
    )
    result = {
        "closed_by_sweep": closed,
        "leads": leads,
        "open": sum(int(row["open"]) for row in rows),
        **{f"send_{key}": value for key, value in sent.items()},
    }
    get_run_logger().info(
        "digest: %d leads, %d open items, %d closed by the sweep", leads, result["open"], closed
    )
    return result
