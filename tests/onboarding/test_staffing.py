"""A hire becomes active on their start date, by the daily follow-up, audited; not before."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.models import AuditEntry, Staff, StaffStatus
from office.onboarding.staffing import ACTOR, start_arrivals
from tests.onboarding.practice import START, add_hires, seed_team


def test_hires_start_on_their_first_day_and_not_before(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        team = seed_team(session)
        early = add_hires(session, team, 1, start=START)
        later = add_hires(session, team, 1, start=START + timedelta(days=7))

    with transaction(factory) as session:
        assert start_arrivals(session, today=START - timedelta(days=1)) == 0
    with transaction(factory) as session:
        assert start_arrivals(session, today=START) == 1
    with transaction(factory) as session:
        assert start_arrivals(session, today=START) == 0  # once

    with factory() as session:
        status = dict(session.execute(select(Staff.id, Staff.status)).tuples().all())
        audited = session.scalars(
            select(AuditEntry.entity_id).where(
                AuditEntry.entity == "staff",
                AuditEntry.field == "status",
                AuditEntry.actor == ACTOR,
            )
        ).all()
    assert status[early[0]] is StaffStatus.ACTIVE
    assert status[later[0]] is StaffStatus.PENDING
    assert audited == early
