"""The records flows through the Prefect engine: the import's table artifact holds counts
only, and nothing of a patient reaches the run's parameters, logs or result."""

from __future__ import annotations

import asyncio

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    LogFilter,
    LogFilterFlowRunId,
)
from sqlalchemy.orm import Session, sessionmaker

from flows import runtime
from flows.records import import_records
from tests.records.test_csv import HEADER, store_file

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


def test_import_records_counts_rows_in_an_artifact_with_no_patient_data(
    practice: sessionmaker[Session], office_app: runtime.Office
) -> None:
    body = (
        f"{HEADER}\n"
        "M1,Zelda,Quartz,1980-01-02,F,312-555-0123,zq@example.com,PRAIRIE,ZQ-77\n"
        "M2,Yorick,Umber,2199-01-01,M,,,PRAIRIE,YU-88\n"
    ).encode()
    inbox_id = store_file(practice, body)
    state = asyncio.run(import_records(inbox_id, return_state=True))
    result = state.result()
    assert (result["applied"], result["rejected"], result["rows"]) == (1, 1, 2)

    async def recorded() -> list[str]:
        async with get_client() as client:
            run = await client.read_flow_run(state.state_details.flow_run_id)  # type: ignore[arg-type]
            artifacts = await client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
            )
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id]))
            )
            assert [a.key for a in artifacts] == ["records-import"]
            return [repr(run.parameters), repr(artifacts[0].data)] + [log.message for log in logs]

    texts = " ".join(asyncio.run(recorded()))
    assert "'what': 'applied', 'count': 1" in texts.replace('"', "'")
    for secret in ("Zelda", "Quartz", "Yorick", "zq@example.com", "ZQ-77", "1980", "555"):
        assert secret not in texts
