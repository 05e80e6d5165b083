"""Process one stored inbound payload: the handler for its source, then what follows."""

from __future__ import annotations

from typing import Annotated

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.forms import titled
from flows.runtime import office
from office.intake import ProcessResult, process_item

__all__ = ["process_inbox"]


@task(cache_policy=NO_CACHE, persist_result=False)
def handle_item(inbox_id: int) -> ProcessResult:
    """Apply the source's handler; a rejection is recorded on the item, not raised."""
    return process_item(office().factory, inbox_id)


@flow(name="process-inbox", flow_run_name="inbox-{inbox_id}", persist_result=False)
async def process_inbox(
    inbox_id: Annotated[int, titled("Inbox item id", ge=1)],
) -> dict[str, object]:
    """Act on one stored webhook, file row or message by its inbox id.

    Args:
        inbox_id: The inbox row to process. Only the id crosses into Prefect.
    """
    from flows.followups import start_recorded

    result = handle_item(inbox_id)
    # Recorded with the change before it committed; each starts as its own run and this one
    # does not wait: `retry-followups` learns how they ended and retries a failure.
    followed = await start_recorded(result.followup_ids)
    return {"inbox_id": inbox_id, "status": result.status.value, "followups": followed}
