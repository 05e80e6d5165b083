"""What runs after an inbound payload changed a record, by the name its handler gave."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

__all__ = ["FOLLOWUPS", "run_followups"]


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


async def run_followups(names: Iterable[str], entity_id: int) -> list[str]:
    """Run each named follow-up as a subflow; returns the names that ran."""
    done = []
    for name in names:
        await FOLLOWUPS[name](entity_id)
        done.append(name)
    return done
