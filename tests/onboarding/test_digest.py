"""The morning digest counts overdue onboarding items: every owner's for the office manager,
the lead's own role's for the others; a number, never a name."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.models import OutboxItem
from office.onboarding.views import overdue_by_owner
from office.workqueue.digest import DIGEST_KIND, DigestPlan, compose_digest, queue_digests
from tests.onboarding.practice import ZONE, add_hires, seed_team

NOW = datetime(2026, 12, 8, 14, 0, tzinfo=UTC)  # Tuesday 8 December, 08:00 in Chicago


def test_overdue_onboarding_items_count_in_each_leads_digest(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        team = seed_team(session)
        add_hires(session, team, 2, roles=("medical_assistant", "billing"))
        plan = DigestPlan(now=NOW, zone=ZONE, board_url="https://office.example.test/staff")
        assert queue_digests(session, plan) == 5
    with factory() as session:
        overdue = overdue_by_owner(session, date(2026, 12, 8))
        rows = {
            row.detail["role"]: row
            for row in session.scalars(select(OutboxItem).where(OutboxItem.kind == DIGEST_KIND))
        }
        assert rows["office_manager"].detail["onboarding_overdue"] == sum(overdue.values())
        assert rows["it"].detail["onboarding_overdue"] == overdue["it"] > 0
        message = compose_digest(session, rows["it"], "digest@practice.test", NOW).message
        text = message.get_body(preferencelist=("plain",))
        assert text is not None
        body = text.get_content()
    assert f"{overdue['it']} checklist items overdue" in body
    assert "Peregrine" not in body
