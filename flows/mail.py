"""Inbound mail routing as a Prefect flow: a table of contents over `office.mail`.

Per mailbox, three tasks: store what the server holds (committed batch by batch
before the server is told anything), route what is stored, then move or flag
what was routed. One more task sends the acknowledgements and forwards routing
queued. Tasks take mailbox names and instants, return counts, and never cache or
persist results: the messages carry PHI. A batch is a task, never a message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import acreate_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from flows.forms import AsOf, practice_instant, titled
from flows.runtime import office, withhold_row_data
from integrations.mail import mailer_from_settings
from integrations.mailbox import open_mailbox
from office.contracts.mail import MailRetryableError
from office.contracts.mailbox import MailboxRetryableError, MailboxSettings
from office.mail import (
    MailIdentity,
    MailTally,
    RouteConfig,
    finish_on_server,
    ingest,
    load_rules,
    mail_composers,
    route_pending,
)
from office.mailing import send_outbox
from office.render import TEMPLATES_DIR
from office.settings import Settings

__all__ = [
    "MAX_PER_RUN",
    "MailSteps",
    "finish_mail",
    "route_mail",
    "route_stored",
    "run_steps",
    "send_mail",
    "store_mail",
]

MAILBOX_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
"""A mailbox name as OFFICE_MAILBOXES allows it ("all" fits too)."""

MAX_PER_RUN = 5000
"""Messages one run stores per mailbox; the next run, five minutes later, takes the rest."""


def _retryable(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only what the adapter called retryable: a dropped server, never bad settings."""
    return isinstance(state.data, MailboxRetryableError | MailRetryableError)


def _mailbox(settings: Settings, name: str) -> MailboxSettings:
    for box in settings.inbound_mailboxes:
        if box.name == name:
            return box
    raise ValueError(f"no mailbox named {name!r} in OFFICE_MAILBOXES")


def route_config(settings: Settings) -> RouteConfig:
    """The rules and the practice's own addresses, as settings name them."""
    return RouteConfig(
        rules=load_rules(settings.mail_rules or TEMPLATES_DIR / "mail-rules.yaml"),
        own_addresses=settings.practice_addresses,
        ack_period=timedelta(hours=settings.mail_ack_period_hours),
    )


@task(
    name="store-mail",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_condition_fn=_retryable,
)
def store_mail(mailbox: str, now: datetime, backlog: bool = False) -> dict[str, int]:
    """Store everything new in one mailbox: raw bytes and a row, committed before anything else."""
    current = office()
    box = _mailbox(current.settings, mailbox)
    with open_mailbox(box, current.settings) as opened:
        result = ingest(
            current.factory,
            opened,
            now=now,
            may_acknowledge=not backlog,
            max_messages=MAX_PER_RUN,
        )
    return {
        "fetched": result.fetched,
        "stored": result.stored,
        "known": result.known,
        "duplicates_finished": result.finished_duplicates,
    }


@task(name="route-stored-mail", cache_policy=NO_CACHE, persist_result=False)
def route_stored(mailbox: str, now: datetime) -> dict[str, int]:
    """Parse, classify and act on one mailbox's stored mail; counts per category and action."""
    current = office()
    return route_pending(
        current.factory, route_config(current.settings), now=now, mailbox=mailbox
    ).to_dict()


@task(
    name="finish-mail-on-server",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_condition_fn=_retryable,
)
def finish_mail(mailbox: str) -> int:
    """Move or flag routed mail on the server; returns how many."""
    current = office()
    box = _mailbox(current.settings, mailbox)
    with open_mailbox(box, current.settings) as opened:
        return finish_on_server(current.factory, opened)


@task(
    name="send-mail-replies",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=10),
    retry_condition_fn=_retryable,
)
async def send_mail(now: datetime) -> dict[str, int]:
    """Send queued acknowledgements and forwards, each exactly once."""
    current = office()
    settings = current.settings
    mailer = mailer_from_settings(settings)
    identity = MailIdentity(
        mailbox_addresses={box.name: box.address for box in settings.inbound_mailboxes},
        now=now,
    )
    with withhold_row_data(MailRetryableError):
        tally = await send_outbox(
            current.factory,
            mailer,
            mail_composers(identity),
            now=now,
            resend_safe=settings.mailer == "file",
        )
    return tally.to_dict()


@dataclass
class MailSteps:
    """What one routing run did, per step: the flow's return value and artifact."""

    stored: dict[str, int] = field(default_factory=dict)
    routed: MailTally = field(default_factory=MailTally)
    finished: int = 0
    sent: dict[str, int] = field(default_factory=dict)

    def flat(self) -> dict[str, int]:
        return {
            **{f"stored_{k}": v for k, v in self.stored.items()},
            **self.routed.to_dict(),
            "finished_on_server": self.finished,
            **{f"send_{k}": v for k, v in self.sent.items()},
        }


async def run_steps(
    mailboxes: Sequence[str],
    now: datetime,
    *,
    backlog: bool,
    store: Callable[[str, datetime, bool], dict[str, int]],
    route: Callable[[str, datetime], dict[str, int]],
    finish: Callable[[str], int],
    send: Callable[[datetime], Awaitable[dict[str, int]]],
) -> MailSteps:
    """One routing run's steps, in order: the flow passes its tasks, tests their `.fn`."""
    steps = MailSteps()
    for name in mailboxes:
        for key, count in store(name, now, backlog).items():
            steps.stored[key] = steps.stored.get(key, 0) + count
        steps.routed.merge(MailTally.from_dict(route(name, now)))
        steps.finished += finish(name)
    steps.sent = await send(now)
    return steps


@flow(name="route-mail", flow_run_name="route-mail-{mailbox}", persist_result=False)
async def route_mail(
    mailbox: Annotated[str, titled("Mailbox", pattern=MAILBOX_PATTERN, max_length=40)] = "all",
    backlog: Annotated[bool, titled("Backlog import")] = False,
    now: AsOf = None,
) -> dict[str, int]:
    """Store, route and file every mailbox's new mail, then send acknowledgements; every 5 min.

    Args:
        mailbox: One mailbox's name (as OFFICE_MAILBOXES names it), or "all".
        backlog: An import of old mail: stored and routed, never acknowledged.
        now: The instant to compute from; without an offset it is the practice's wall-clock
            time. Leave empty for the real clock.
    """
    moment = practice_instant(now)
    settings = office().settings
    names = (
        [box.name for box in settings.inbound_mailboxes]
        if mailbox == "all"
        else [_mailbox(settings, mailbox).name]
    )
    steps = await run_steps(
        names,
        moment,
        backlog=backlog,
        store=store_mail,
        route=route_stored,
        finish=finish_mail,
        send=send_mail,
    )
    rows = steps.routed.rows() or [{"category": "-", "action": "nothing new", "count": 0}]
    await acreate_table_artifact(
        table=rows, key="mail-routing", description="Routed mail by category and action"
    )
    get_run_logger().info(
        "mail: %d stored, %d routed, %d sent",
        steps.stored.get("stored", 0),
        steps.routed.messages,
        sum(v for k, v in steps.sent.items() if k.endswith(":sent")),
    )
    return steps.flat()
