"""What runs after an inbound payload changed a record, by the name its handler gave.

The intake records each follow-up with its inbox item before anything runs
(`office.followups`). `start_recorded` then starts each as its own deployment run
(`verify-appointment/on-booking`, `send-appointment-notices/on-change`) and returns without
waiting, so one failing (an eligibility check whose clearinghouse is down) never stops the
next (the booking's confirmation). The idempotency key is the ledger id and attempt
(`Claim.run_key`): a double dispatch of one attempt is one run, a retry a new one.

Where nothing serves such a deployment (a CLI command with no `office serve` behind it,
the tests), the follow-up runs here, in this process, as a subflow, and is marked done or
failed when it ends. That choice is made in one place, `_served`: the deployment when
Prefect knows it and a runner or worker polled it lately, else in process, rather than a
run that would wait for the next `office serve`.

`retry-followups` runs every two minutes. It first learns how the started runs ended
(`settle_started`: Completed → done; Failed, Crashed or Cancelled → a failed attempt; still
scheduled or running → left alone), then starts what is due: failed ones whose back-off is
over, recorded ones nobody started, and claims whose dispatcher died before naming a run.
After `MAX_ATTEMPTS` a follow-up becomes a `followup_failed` work item.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

from prefect import flow, get_run_logger

if TYPE_CHECKING:
    from office.followups import Claim

__all__ = ["FOLLOWUPS", "Route", "retry_followups", "settle_started", "start_recorded"]


async def _verify_appointment(appointment_id: int) -> Any:
    from flows.eligibility import verify_appointment

    return await verify_appointment(appointment_id)


async def _appointment_notices(appointment_id: int) -> Any:
    from flows.reminders import send_appointment_notices

    return await send_appointment_notices(appointment_id)


@dataclass(frozen=True, slots=True)
class Route:
    """Where a follow-up runs: its deployment, and the same flow called in process."""

    deployment: str
    in_process: Callable[[int], Awaitable[Any]]


# A deployment nobody has polled for this long has no one to run its runs.
SERVED_WITHIN: Final = timedelta(minutes=2)

FOLLOWUPS: dict[str, Route] = {
    "verify_appointment": Route("verify-appointment/on-booking", _verify_appointment),
    "appointment_notices": Route("send-appointment-notices/on-change", _appointment_notices),
}


async def start_recorded(followup_ids: Iterable[int]) -> list[str]:
    """Start follow-ups the ledger holds, each on its own: one failing to start (or, in
    process, to run) does not stop the others, and is marked for a retry with its error's
    kind, never its message. Returns "name:id" of each that was started or ran."""
    from flows.runtime import office
    from office.db import transaction
    from office.followups import claim, mark_done, mark_failed
    from office.models import utcnow

    factory = office().factory
    started = []
    for followup_id in followup_ids:
        with transaction(factory) as session:
            held = claim(session, followup_id, now=utcnow())
        if held is None:  # another dispatcher has it, or it is over
            continue
        try:
            ran_here = await _start(held)
        except Exception as exc:  # each follow-up stands alone; the ledger keeps the failure
            with transaction(factory) as session:
                mark_failed(session, followup_id, type(exc).__name__, now=utcnow())
            continue
        if ran_here:
            with transaction(factory) as session:
                mark_done(session, followup_id, now=utcnow())
        started.append(f"{held.name}:{held.entity_id}")
    return started


async def _start(held: Claim) -> bool:
    """Start one claimed attempt as its deployment's run, named in the ledger; with no one
    serving that deployment, run it here. Returns True when it ran here (and so has ended)."""
    from prefect.deployments import arun_deployment

    from flows.runtime import office
    from office.db import transaction
    from office.followups import record_run

    route = FOLLOWUPS[held.name]
    deployment_id = await _served(route.deployment)
    if deployment_id is None:
        await route.in_process(held.entity_id)
        return True
    run = await arun_deployment(
        deployment_id,
        parameters={"appointment_id": held.entity_id},
        idempotency_key=held.run_key,
        timeout=0,
        as_subflow=False,  # its own run: neither waits on nor dies with the one starting it
    )
    with transaction(office().factory) as session:
        record_run(session, held, str(run.id))
    return False


async def _served(name: str) -> UUID | None:
    """The deployment's id when something runs its runs: registered, and polled for them
    (by `office serve` or a worker, every 10 s or so) within `SERVED_WITHIN`. None for one
    never registered, or left behind by an `office serve` no longer running on this home,
    whose runs would wait for the next one."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    async with get_client() as client:
        try:
            deployment = await client.read_deployment_by_name(name)
        except ObjectNotFound:
            return None
    polled = deployment.last_polled
    if polled is None or polled < datetime.now(UTC) - SERVED_WITHIN:
        return None
    return deployment.id


async def settle_started() -> dict[str, int]:
    """Learn how each started follow-up's run ended, from the Prefect API, and mark it done
    or failed; returns how many were done, failed and still waiting."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    from flows.runtime import office
    from office.db import transaction
    from office.followups import run_ended, started_followups
    from office.models import utcnow

    factory = office().factory
    with factory() as session:
        started = started_followups(session)
    counts = {"done": 0, "failed": 0, "waiting": 0}
    async with get_client() as client:
        for followup_id, run_id in started:
            try:
                state = (await client.read_flow_run(UUID(run_id))).state
            except ObjectNotFound:
                error: str | None = "run not found"  # the server lost it: start it again
            else:
                if state is None or not state.is_final():
                    counts["waiting"] += 1
                    continue
                error = None if state.is_completed() else f"run {state.type.value.lower()}"
            with transaction(factory) as session:
                if run_ended(session, followup_id, run_id, error, now=utcnow()):
                    counts["done" if error is None else "failed"] += 1
    return counts


@flow(name="retry-followups", persist_result=False)
async def retry_followups() -> dict[str, int]:
    """Mark follow-ups whose runs ended, then start the ones due: retries after their wait,
    recorded ones nobody started, and claims whose dispatcher died."""
    from flows.runtime import office
    from office.followups import due_followups
    from office.models import utcnow

    settled = await settle_started()
    with office().factory() as session:
        due = due_followups(session, now=utcnow())
    started = await start_recorded(due)
    get_run_logger().info(
        "follow-ups: %d done, %d failed, %d still running; %d due, %d started",
        settled["done"],
        settled["failed"],
        settled["waiting"],
        len(due),
        len(started),
    )
    return {**settled, "due": len(due), "started": len(started)}
