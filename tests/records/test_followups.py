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
from office.ledgers import replay
from office.models import (
    Followup,
    FollowupStatus,
    OutboxItem,
    WorkItem,
    utcnow,
)
from tests.records.conftest import booked, ledger

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


def test_a_failing_check_is_retried_then_handed_to_a_person_and_the_notice_still_goes(
    practice: sessionmaker[Session], office_app: runtime.Office
) -> None:
    item_id = booked(practice)

    result = asyncio.run(process_inbox(item_id))
    assert result["status"] == "processed"
    assert [name.split(":")[0] for name in result["followups"]] == ["appointment_notices"]

    def states() -> dict[str, tuple[FollowupStatus, int]]:
        return {name: (row.status, row.attempts) for name, row in ledger(practice).items()}

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
    retry_until_given_up(practice, range(2, MAX_ATTEMPTS + 1))
    assert states()["verify_appointment"][0] is FollowupStatus.GAVE_UP
    with practice() as session:
        item = session.scalars(select(WorkItem).where(WorkItem.kind == "followup_failed")).one()
    assert item.detail["followup"] == "verify_appointment"
    assert item.summary.endswith(f"({MAX_ATTEMPTS} attempts)")


def test_a_replay_gives_a_followup_that_gave_up_a_fresh_budget_of_attempts(
    practice: sessionmaker[Session], office_app: runtime.Office
) -> None:
    item_id = booked(practice)
    asyncio.run(process_inbox(item_id))
    retry_until_given_up(practice, range(2, MAX_ATTEMPTS + 1))

    with transaction(practice) as session:
        replay(session, item_id)
    asyncio.run(process_inbox(item_id))

    # Its first failure after the replay is attempt 5, a new run's key, and not the last.
    check = ledger(practice)["verify_appointment"]
    assert (check.status, check.attempts) == (FollowupStatus.FAILED, MAX_ATTEMPTS + 1)
    retry_until_given_up(practice, range(MAX_ATTEMPTS + 2, 2 * MAX_ATTEMPTS + 1))
    assert ledger(practice)["verify_appointment"].status is FollowupStatus.GAVE_UP
    with practice() as session:
        # The person's item, still open, is refreshed rather than doubled.
        summary = session.scalars(
            select(WorkItem.summary).where(WorkItem.kind == "followup_failed")
        ).one()
    assert summary.endswith(f"({MAX_ATTEMPTS} attempts)")


def retry_until_given_up(practice: sessionmaker[Session], attempts: range) -> None:
    """Make the failing check's next attempt due and run `retry-followups`, once per
    attempt in `attempts`, each one failing again."""
    for attempt in attempts:
        with transaction(practice) as session:  # its wait is over
            session.execute(
                update(Followup)
                .where(Followup.status == FollowupStatus.FAILED)
                .values(next_attempt_at=utcnow() - timedelta(seconds=1))
            )
        retried = asyncio.run(retry_followups())
        assert (retried["due"], retried["started"]) == (1, 0)
        assert ledger(practice)["verify_appointment"].attempts == attempt
