"""Onboarding mail built from its outbox rows: every kind renders, each item carries a
signed link that names it (verifiable under a rotated key) or, when it needs a file, the
board's page; the row itself holds ids only."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.models import OutboxItem
from office.onboarding import BusinessCalendar, FollowupPlan, follow_up
from office.onboarding.directory import load_directory
from office.onboarding.links import LinkError, item_link, read_item_link
from office.onboarding.mailing import KINDS, compose
from tests.onboarding.practice import NOW, Team, add_hires, seed_team

KEY = "test-link-secret-32-bytes-or-longer"
OLD_KEY = "the-previous-link-secret-32-bytes-long"
LINK = re.compile(r"http://127\.0\.0\.1:8400/o/([A-Za-z0-9_-]+)")


@pytest.fixture
def team(factory: sessionmaker[Session]) -> Team:
    with transaction(factory) as session:
        found = seed_team(session)
        add_hires(session, found, 1, roles=("nurse",))
        day = date(2026, 12, 10)
        plan = FollowupPlan(day, NOW + timedelta(days=9))
        follow_up(session, plan, BusinessCalendar(), load_directory(session))
    return found


def test_every_kind_is_composed_from_ids_only(factory: sessionmaker[Session], team: Team) -> None:
    with factory() as session:
        rows = session.scalars(select(OutboxItem).order_by(OutboxItem.id)).all()
        assert {row.kind for row in rows} == set(KINDS)
        for row in rows:
            assert set(row.detail) == {"staff_id", "item_ids", "checklist_id", "level", "date"}
            message = compose(
                session,
                row,
                sender="onboarding@practice.test",
                public_url="http://127.0.0.1:8400",
                key=KEY,
                now=NOW,
            ).message
            body = message.get_content()
            assert message["To"] == row.recipient
            assert "http://127.0.0.1:8400/staff/onboarding" in body
            for token in LINK.findall(body):
                assert read_item_link((KEY,), token, now=NOW) in row.detail["item_ids"]
        welcome = next(r for r in rows if r.kind == "onboarding_welcome")
        text = compose(
            session,
            welcome,
            sender="o@practice.test",
            public_url="http://127.0.0.1:8400",
            key=KEY,
            now=NOW,
        ).message.get_content()
        assert "Welcome to Onboarding Test Practice, Peregrine00000" in text
        assert "Upload the certificate on the board" in text  # CPR card


def test_links_survive_a_key_rotation_and_expire() -> None:
    token = item_link(OLD_KEY, 42, now=NOW)
    assert read_item_link((KEY, OLD_KEY), token, now=NOW) == 42
    with pytest.raises(LinkError, match="not valid"):
        read_item_link((KEY,), token, now=NOW)
    with pytest.raises(LinkError, match="expired"):
        read_item_link((OLD_KEY,), token, now=NOW + timedelta(days=61))
    with pytest.raises(LinkError, match="not valid"):
        read_item_link((OLD_KEY,), token[:-2] + "AA", now=NOW)
