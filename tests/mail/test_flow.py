"""The route-mail flow through the Prefect engine (one run on the session's harness), its
PHI-free artifact, the retry rule, `office mail route`, and the demo's mailbox fill."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli_mail import mail_app
from app.demo_mail import CATEGORIES, fill_demo_mailbox, synthetic_mail
from flows import mail as mail_flow
from flows.mail import route_mail
from flows.runtime import use_office
from office.contracts.mail import MailAmbiguousError
from office.contracts.mailbox import MailboxFinalError, MailboxRetryableError
from office.db import transaction
from office.models import MailStatus
from tests.mail.conftest import ADDRESS, NOW, PEOPLE, Office


async def _artifact(key: str) -> list[dict[str, Any]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), limit=1
        )
    data = found[0].data
    rows: list[dict[str, Any]] = json.loads(data) if isinstance(data, str) else list(data or [])
    return rows


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_the_flow_routes_and_publishes_counts_without_patient_data(practice: Office) -> None:
    practice.deliver(synthetic_mail(24, people=PEOPLE, mailbox_address=ADDRESS, now=NOW))
    use_office(practice.settings, practice.engine)

    counts = asyncio.run(route_mail(now=NOW))
    rows = asyncio.run(_artifact("mail-routing"))

    assert counts["stored_stored"] == 24
    assert counts["finished_on_server"] == 24
    assert counts["lab_result:route"] == 4
    assert rows
    assert all(set(row) == {"category", "action", "count"} for row in rows)
    dumped = json.dumps(rows).lower()
    for person in PEOPLE:
        assert person.last.lower() not in dumped
        assert person.mrn.lower() not in dumped
    assert "example.org" not in dumped


class _State:
    def __init__(self, data: object) -> None:
        self.data = data


def test_only_a_dropped_server_is_retried() -> None:
    assert mail_flow._retryable(None, None, _State(MailboxRetryableError("x")))
    assert not mail_flow._retryable(None, None, _State(MailboxFinalError("x")))
    assert not mail_flow._retryable(None, None, _State(MailAmbiguousError("x")))


def test_an_unknown_mailbox_is_refused_by_name(practice: Office) -> None:
    result = CliRunner().invoke(mail_app, ["route", "--mailbox", "nope"], env=_env(practice))
    assert result.exit_code == 1
    assert "no mailbox named 'nope'" in result.output


def test_the_demo_fill_delivers_every_category_naming_the_practices_patients(
    practice: Office,
) -> None:
    with transaction(practice.factory) as session:
        counts = fill_demo_mailbox(practice.settings, session, count=24)
    assert set(counts) == set(CATEGORIES)
    practice.run()
    rows = practice.mail()
    assert len(rows) == 24
    assert {row.status for row in rows} == {MailStatus.ROUTED}
    assert any(row.patient_id is not None for row in rows)


def _env(practice: Office) -> dict[str, str]:
    return {
        "OFFICE_HOME": str(practice.settings.home),
        "OFFICE_DATABASE_URL": practice.settings.db_url,
        "OFFICE_MAIL_FROM": practice.settings.mail_from,
    }
