"""The board's "re-check eligibility" button: one `verify-appointment` run through Prefect."""

from __future__ import annotations

__all__ = ["RECHECK_DEPLOYMENT", "dispatch_recheck"]

RECHECK_DEPLOYMENT = "verify-appointment/on-booking"


async def dispatch_recheck(appointment_id: int, key: str) -> str | None:
    """Start the check and return at once; the key makes a double click one run."""
    from prefect.deployments import arun_deployment

    run = await arun_deployment(
        RECHECK_DEPLOYMENT,
        parameters={"appointment_id": appointment_id},
        idempotency_key=key,
        timeout=0,
    )
    return str(run.id)
