"""Follow-ups that survive failure, through the Prefect engine: a booking's eligibility
check failing (the default x12 adapter with no clearinghouse URL) neither fails the intake
run nor stops the confirmation notice; `retry-followups` retries it after its wait and,
out of attempts, a person gets a `followup_failed` work item."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from flows import runtime
from flows.followups import retry_followups
from flows.intake import process_inbox
from office.db import transaction
from office.followups import MAX_ATTEMPTS
from office.models import (
    Followup,
    FollowupStatus,
    OutboxItem,
    WorkItem,
    utcnow,
)
from tests.records.conftest import booked

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


def test_a_failing_check_is_retried_then_handed_to_a_person_and_the_notice_still_goes(
    practice: sessionmaker[Session], office_app: runtime.Office
) -> None:
    item_id = booked(practice)

    result = asyncio.run(process_inbox(item_id))
    assert result["status"] == "processed"
    assert [name.split(":")[0] for name in result["followups"]] == ["appointment_notices"]

    def states() -> dict[str, tuple[FollowupStatus, int]]:
        with practice() as session:
            rows = session.scalars(select(Followup)).all()
            return {r.name: (r.status, r.attempts) for r in rows}

    assert states() == {
        "verify_appointment": (FollowupStatus.FAILED, 1),
        "appointment_notices": (FollowupStatus.DONE, 1),
    }
    with practice() as session:
        assert session.scalars(select(OutboxItem)).all() != []  # the confirmation is queued
        error = session.scalars(
            select(Followup.error).where(Followup.name == "verify_appointment")
        ).one()
    assert error
    assert "M1" not in error

    # Not due yet: nothing runs.
    assert asyncio.run(retry_followups())["due"] == 0
    for attempt in range(2, MAX_ATTEMPTS + 1):
        with transaction(practice) as session:  # its wait is over
            session.execute(
                update(Followup)
                .where(Followup.status == FollowupStatus.FAILED)
                .values(next_attempt_at=utcnow() - timedelta(seconds=1))
            )
        retried = asyncio.run(retry_followups())
        assert (retried["due"], retried["started"]) == (1, 0)
        assert states()["verify_appointment"][1] == attempt
    assert states()["verify_appointment"][0] is FollowupStatus.GAVE_UP
    with practice() as session:
        item = session.scalars(select(WorkItem).where(WorkItem.kind == "followup_failed")).one()
    assert item.detail["followup"] == "verify_appointment"
