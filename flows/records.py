"""Records in: one stored message or form (`apply-record-update`), or a file (`import-records`).

Both run the intake's handler for the stored item, which validates, matches and applies
it (or rejects it with reasons, keeping it in the inbox), then run the follow-ups the
change recorded (eligibility re-checks after a coverage change). Only ids and counts cross
into Prefect: parameters, logs, results and the artifact.
"""

from __future__ import annotations

from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact

from flows.followups import start_recorded
from flows.forms import titled
from flows.intake import handle_item

__all__ = ["apply_record_update", "import_records"]

# The rows of the import's artifact, in this order; a count the import did not report is 0.
IMPORT_COUNTS = (
    "rows",
    "applied",
    "unchanged",
    "for_review",
    "possible_duplicate",
    "rejected",
)


@flow(name="apply-record-update", flow_run_name="record-{inbox_id}", persist_result=False)
async def apply_record_update(
    inbox_id: Annotated[int, titled("Inbox item id", ge=1)],
) -> dict[str, Any]:
    """Apply one stored HL7 message, FHIR resource or intake form to the patient's record.

    Args:
        inbox_id: The stored payload. Only the id crosses into Prefect.
    """
    result = handle_item(inbox_id)
    followed = await start_recorded(result.followup_ids)
    outcome = result.outcome
    return {
        "inbox_id": inbox_id,
        "status": result.status.value,
        "patient_id": outcome.entity_id if outcome and outcome.entity == "patients" else None,
        "followups": followed,
    }


@flow(name="import-records", flow_run_name="import-{inbox_id}", persist_result=False)
async def import_records(
    inbox_id: Annotated[int, titled("Inbox item id of the stored file", ge=1)],
) -> dict[str, Any]:
    """Import a stored file of patients (CSV or FHIR Bundle): each row applied, held for
    review, or rejected with its reasons; a table artifact of the counts.

    Args:
        inbox_id: The stored file. Only the id crosses into Prefect.
    """
    result = handle_item(inbox_id)
    counts = dict(result.outcome.counts) if result.outcome else {}
    rows = [{"what": name, "count": int(counts.get(name, 0))} for name in IMPORT_COUNTS]
    await acreate_table_artifact(
        table=rows,
        key="records-import",
        description=f"Inbox item {inbox_id}: rows by what became of them (counts only)",
    )
    followed = await start_recorded(result.followup_ids)
    get_run_logger().info(
        "import %s: %s; %d follow-ups",
        inbox_id,
        result.status.value,
        len(followed),
    )
    return {
        "inbox_id": inbox_id,
        "status": result.status.value,
        **{name: int(counts.get(name, 0)) for name in IMPORT_COUNTS},
        "followups": len(followed),
    }
