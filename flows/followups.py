"""What runs after an inbound payload changed a record, by the name its handler gave.

The intake records each follow-up with its inbox item before anything runs
(`office.followups`); `run_recorded` runs them one by one, marking each done or failed, so
one failing (an eligibility check whose clearinghouse is down) never stops the next (the
booking's confirmation). `retry-followups` runs every few minutes: it retries failed ones
when their back-off is over and starts any a crashed run recorded but never ran; after
`MAX_ATTEMPTS` a follow-up becomes a `followup_failed` work item.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prefect import flow, get_run_logger

__all__ = ["FOLLOWUPS", "retry_followups", "run_recorded"]


async def _verify_appointment(appointment_id: int) -> Any:
    from flows.eligibility import verify_appointment

    return await verify_appointment(appointment_id)


async def _appointment_notices(appointment_id: int) -> Any:
    from flows.reminders import send_appointment_notices

    return await send_appointment_notices(appointment_id)


FOLLOWUPS: dict[str, Callable[[int], Awaitable[Any]]] = {
    "verify_appointment": _verify_appointment,
    "appointment_notices": _appointment_notices,
}


async def run_recorded(followup_ids: Iterable[int]) -> list[str]:
    """Run follow-ups the intake recorded, each on its own: one failing does not stop the
    others; a failure is marked for a retry (or, out of attempts, a work item) and the
    error's kind kept, never its message. Returns "name:id" of each that ran."""
    from flows.runtime import office
    from office.db import transaction
    from office.followups import mark_done, mark_failed, mark_started
    from office.models import Followup, utcnow

    factory = office().factory
    ran = []
    for followup_id in followup_ids:
        with transaction(factory) as session:
            row = session.get_one(Followup, followup_id)
            name, entity_id = row.name, row.entity_id
            mark_started(session, followup_id, None, now=utcnow())
        try:
            await FOLLOWUPS[name](entity_id)
        except Exception as exc:  # each follow-up stands alone; the ledger keeps the failure
            with transaction(factory) as session:
                mark_failed(session, followup_id, type(exc).__name__, now=utcnow())
            continue
        with transaction(factory) as session:
            mark_done(session, followup_id, now=utcnow())
        ran.append(f"{name}:{entity_id}")
    return ran


@flow(name="retry-followups", persist_result=False)
async def retry_followups() -> dict[str, int]:
    """Retry failed follow-ups whose wait is over, and start recorded ones nobody started."""
    from flows.runtime import office
    from office.followups import due_followups
    from office.models import utcnow

    with office().factory() as session:
        due = due_followups(session, now=utcnow())
    ran = await run_recorded(due)
    get_run_logger().info("follow-ups: %d due, %d ran", len(due), len(ran))
    return {"due": len(due), "ran": len(ran)}
