"""What officeflows keeps on its Prefect server besides the deployments.

- One pair of global concurrency limits per payer (`flows.payer_limits`), from the payers
  table, so that every run on every worker together stays within each payer's limits.
- The zombie-run automation: a flow run whose heartbeats stop (its worker or machine died
  mid-run) is marked Crashed after `ZOMBIE_AFTER_BEATS` missed beats, instead of staying
  Running forever. Flow runs send `prefect.flow-run.heartbeat` every
  PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds (180 by default, at least 30); Prefect's server
  ships no such automation (Cloud's "unresponsive run detection" is Cloud-only), so this is
  the one from Prefect's "detect zombie flows" guide.

`office serve` applies both when it starts; with several machines, `office prefect setup`
does, after `prefect deploy --all` and whenever the payers table changes (each eligibility
run also brings its own payers' limits up to date).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.events.schemas.automations import AutomationCore
    from sqlalchemy.orm import Session, sessionmaker

    from office.eligibility import PayerLimit
    from office.settings import Settings

__all__ = ["ZOMBIE_AFTER_BEATS", "ZOMBIE_AUTOMATION", "Applied", "apply", "zombie_automation"]

ZOMBIE_AUTOMATION = "officeflows: crash flow runs whose heartbeats stopped"
ZOMBIE_AFTER_BEATS = 3
"""Missed heartbeats before a run counts as dead: one late beat on a busy machine is not."""


@dataclass(frozen=True)
class Applied:
    """What `apply` set up, for the one line the commands print."""

    limits: list[str]
    automation: str
    heartbeat_seconds: int


def zombie_automation(heartbeat_seconds: int) -> AutomationCore:
    """Marks a flow run Crashed when no heartbeat or final state follows its last heartbeat."""
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description=(
            f"A flow run that sent no heartbeat for {ZOMBIE_AFTER_BEATS} x "
            f"{heartbeat_seconds} s lost its worker: mark it Crashed. Created by office."
        ),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=ZOMBIE_AFTER_BEATS * heartbeat_seconds),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=(
                    f"No heartbeat for {ZOMBIE_AFTER_BEATS * heartbeat_seconds} s: "
                    "its worker stopped mid-run (marked by officeflows' zombie automation)."
                ),
            )
        ],
    )


async def apply(settings: Settings, factory: sessionmaker[Session]) -> Applied:
    """Create or update every payer's limits and the zombie-run automation on the server."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings

    from flows.payer_limits import sync_payer_limits
    from office.eligibility import payer_limits

    def read_limits() -> list[PayerLimit]:
        with factory() as session:
            return list(
                payer_limits(
                    session,
                    concurrency=settings.payer_concurrency,
                    rate=settings.payer_rate_per_second,
                ).values()
            )

    names = await sync_payer_limits(await asyncio.to_thread(read_limits))
    beat = int(get_current_settings().flows.heartbeat_frequency or 180)
    wanted = zombie_automation(beat)
    async with get_client() as client:
        found = await client.read_automations_by_name(ZOMBIE_AUTOMATION)
        if found:
            await client.update_automation(found[0].id, wanted)
            for extra in found[1:]:
                await client.delete_automation(extra.id)
        else:
            await client.create_automation(wanted)
    return Applied(limits=names, automation=ZOMBIE_AUTOMATION, heartbeat_seconds=beat)
