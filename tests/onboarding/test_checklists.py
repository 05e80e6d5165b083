"""Checklists on a controlled clock: built from the role template in business days, the
escalation ladder at each step, dependencies blocking and releasing, renewals spawned
ahead of expiry, completion audited once with its evidence, and offboarding that mirrors
exactly what onboarding granted (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.models import (
    AuditEntry,
    Checklist,
    ChecklistItem,
    ChecklistKind,
    ChecklistStatus,
    ItemStatus,
    OutboxItem,
    Staff,
)
from office.onboarding import (
    BusinessCalendar,
    CompletionError,
    Evidence,
    FollowupPlan,
    complete_item,
    follow_up,
    offboard,
    skip_item,
)
from office.onboarding.directory import load_directory
from office.onboarding.offboard import access_held, granted_access
from tests.onboarding.practice import NOW, START, ZONE, Team, add_hires, seed_team

CAL = BusinessCalendar()


@pytest.fixture
def team(factory: sessionmaker[Session]) -> Team:
    with transaction(factory) as session:
        found = seed_team(session)
        add_hires(session, found, 1, roles=("medical_assistant",))
    return found


def at(day: date) -> datetime:
    return datetime.combine(day, time(15, 0), tzinfo=UTC)


def item(session: Session, team: Team, key: str, occurrence: int = 1) -> ChecklistItem:
    return session.scalars(
        select(ChecklistItem).where(
            ChecklistItem.staff_id == team.hires[0],
            ChecklistItem.key == key,
            ChecklistItem.occurrence == occurrence,
        )
    ).one()


def run(factory: sessionmaker[Session], day: date) -> dict[str, int]:
    with transaction(factory) as session:
        tally = follow_up(session, FollowupPlan(day, at(day)), CAL, load_directory(session))
    return tally.to_dict()


def mail(session: Session, kind: str) -> list[tuple[int, list[int], int]]:
    """(recipient staff id, item ids, step) of each queued message of `kind`."""
    rows = session.scalars(
        select(OutboxItem).where(OutboxItem.kind == kind).order_by(OutboxItem.id)
    )
    return [(r.detail["staff_id"], r.detail["item_ids"], r.detail["level"]) for r in rows]


def done(
    factory: sessionmaker[Session], item_id: int, day: date, tmp_path: Path, **given: object
) -> None:
    evidence = Evidence(
        completed_on=day,
        file_bytes=b"%PDF-1.4 certificate",
        file_name="cert.pdf",
        course_version="2026.1",
        signature="P. Fairweather",
    )
    for name, value in given.items():
        object.__setattr__(evidence, name, value)
    with transaction(factory) as session:
        complete_item(
            session,
            item_id,
            evidence,
            by="test",
            via="cli",
            now=at(day),
            evidence_dir=tmp_path / "evidence",
        )


def test_the_checklist_is_the_role_template_dated_in_business_days(
    factory: sessionmaker[Session], team: Team
) -> None:
    with factory() as session:
        checklist = session.scalars(select(Checklist)).one()
        assert checklist.kind is ChecklistKind.ONBOARDING
        assert checklist.template == "medical_assistant"
        assert checklist.template_version.startswith("1+")
        assert checklist.anchor_on == START
        assert item(session, team, "confidentiality_agreement_sent").due_on == date(2026, 11, 30)
        assert item(session, team, "cpr_certification").due_on == date(2026, 12, 4)
        assert item(session, team, "w4_form").due_on == START
        assert item(session, team, "osha_training").due_on == date(2026, 12, 14)
        # Owners: the person, their manager, the role leads.
        assert item(session, team, "w4_form").owner_staff_id == team.hires[0]
        assert item(session, team, "i9_form").owner_staff_id == team.clinical
        assert item(session, team, "email_account").owner_staff_id == team.it
        assert item(session, team, "training_recorded").owner_staff_id == team.compliance
        assert mail(session, "onboarding_welcome")[0][0] == team.hires[0]
        assigned = {to for to, _, _ in mail(session, "onboarding_assigned")}
        assert assigned == {team.clinical, team.it, team.compliance, team.manager}


def test_the_escalation_ladder_one_step_at_a_time(
    factory: sessionmaker[Session], team: Team
) -> None:
    with factory() as session:
        w4 = item(session, team, "w4_form").id  # due Monday 7 December, required by law
    run(factory, date(2026, 12, 3))  # Thursday: two business days ahead
    with factory() as session:
        assert any(
            w4 in ids and to == team.hires[0] for to, ids, _ in mail(session, "onboarding_reminder")
        )
        assert not any(w4 in ids for _, ids, _ in mail(session, "onboarding_overdue"))
    run(factory, date(2026, 12, 7))  # due today: reminded once already, nothing new
    with factory() as session:
        assert sum(w4 in ids for _, ids, _ in mail(session, "onboarding_reminder")) == 1
    steps = {
        date(2026, 12, 8): (1, team.hires[0]),  # first day overdue: the owner
        date(2026, 12, 9): (2, team.clinical),  # 2 business days: the owner's manager
        date(2026, 12, 14): (3, team.compliance),  # 5 (a weekend between): compliance
    }
    for day in (
        date(2026, 12, 8),
        date(2026, 12, 9),
        date(2026, 12, 10),
        date(2026, 12, 11),
        date(2026, 12, 14),
        date(2026, 12, 14),
        date(2026, 12, 15),
    ):
        run(factory, day)
        with factory() as session:
            sent = [
                (to, step) for to, ids, step in mail(session, "onboarding_overdue") if w4 in ids
            ]
            level = item(session, team, "w4_form").escalation_level
        expected = [steps[d] for d in sorted(steps) if d <= day]
        assert [(to, step) for step, to in expected] == sent, day
        assert level == (expected[-1][0] if expected else 0)
    with factory() as session:
        history = session.scalars(
            select(AuditEntry.after)
            .where(
                AuditEntry.entity == "checklist_items",
                AuditEntry.entity_id == w4,
                AuditEntry.field == "escalation_level",
            )
            .order_by(AuditEntry.id)
        ).all()
    assert history == ["1", "2", "3"]


def test_an_item_waits_on_its_dependency_then_is_released(
    factory: sessionmaker[Session], team: Team, tmp_path: Path
) -> None:
    with factory() as session:
        ehr = item(session, team, "ehr_account").id  # due Wednesday 9 December, after HIPAA
        hipaa = item(session, team, "hipaa_training").id
    tally = run(factory, date(2026, 12, 10))
    assert tally["blocked"] >= 1
    with factory() as session:
        assert item(session, team, "ehr_account").escalation_level == 0
        assert not any(ehr in ids for _, ids, _ in mail(session, "onboarding_overdue"))
        with pytest.raises(CompletionError, match="waits on: HIPAA privacy"):
            complete_item(
                session,
                ehr,
                Evidence(date(2026, 12, 10)),
                by="t",
                via="cli",
                now=NOW,
                evidence_dir=tmp_path,
            )
    done(factory, hipaa, date(2026, 12, 10), tmp_path)
    tally = run(factory, date(2026, 12, 11))
    assert tally["released"] >= 1
    with factory() as session:
        released = item(session, team, "ehr_account")
        assert released.released_on == date(2026, 12, 10)
        assert released.due_on == date(2026, 12, 11)  # a business day after the release
        assert released.escalation_level == 0
    run(factory, date(2026, 12, 14))
    with factory() as session:
        assert item(session, team, "ehr_account").escalation_level == 1


def test_a_renewal_is_spawned_ahead_of_expiry_and_escalates_once_expired(
    factory: sessionmaker[Session], team: Team, tmp_path: Path
) -> None:
    with factory() as session:
        hipaa = item(session, team, "hipaa_training").id
    done(factory, hipaa, date(2026, 12, 10), tmp_path)
    with factory() as session:
        assert item(session, team, "hipaa_training").expires_on == date(2027, 12, 10)
    assert run(factory, date(2027, 11, 9)).get("renewals", 0) == 0
    assert run(factory, date(2027, 11, 10))["renewals"] == 1
    assert run(factory, date(2027, 11, 11)).get("renewals", 0) == 0
    with factory() as session:
        renewal = item(session, team, "hipaa_training", occurrence=2)
        assert renewal.renewal_of_id == hipaa
        assert renewal.due_on == date(2027, 12, 9)
        assert renewal.required_by_law
        assert renewal.status is ItemStatus.OPEN
    run(factory, date(2027, 12, 13))  # expired on Friday the 10th; overdue since the 9th
    with factory() as session:
        assert item(session, team, "hipaa_training", occurrence=2).escalation_level == 2
    done(factory, renewal.id, date(2027, 12, 13), tmp_path)
    with factory() as session:
        assert item(session, team, "hipaa_training", 2).expires_on == date(2028, 12, 13)


def test_a_completion_is_audited_once_with_the_files_hash(
    factory: sessionmaker[Session], team: Team, tmp_path: Path
) -> None:
    with factory() as session:
        cpr = item(session, team, "cpr_certification").id
        with pytest.raises(CompletionError, match="needs its certificate"):
            complete_item(
                session,
                cpr,
                Evidence(date(2026, 12, 3)),
                by="t",
                via="cli",
                now=NOW,
                evidence_dir=tmp_path,
            )
    done(factory, cpr, date(2026, 12, 3), tmp_path)
    with factory() as session:
        completed = item(session, team, "cpr_certification")
        entries = session.scalars(
            select(AuditEntry).where(
                AuditEntry.entity == "checklist_items", AuditEntry.entity_id == cpr
            )
        ).all()
        with pytest.raises(CompletionError, match="already done"):
            complete_item(
                session,
                cpr,
                Evidence(date(2026, 12, 3)),
                by="t",
                via="cli",
                now=NOW,
                evidence_dir=tmp_path,
            )
    assert len(entries) == 1
    assert entries[0].field == "completed"
    digest = completed.evidence["sha256"]
    assert digest in (entries[0].after or "")
    assert '"via": "cli"' in (entries[0].after or "")
    stored = Path(completed.evidence["path"])
    assert stored.read_bytes() == b"%PDF-1.4 certificate"
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o600
    assert str(tmp_path / "evidence") in str(stored)
    assert "cert" not in stored.name


def test_an_item_required_by_law_cannot_be_skipped(
    factory: sessionmaker[Session], team: Team
) -> None:
    with transaction(factory) as session:
        with pytest.raises(CompletionError, match="required by law"):
            skip_item(
                session, item(session, team, "i9_form").id, reason="x", by="t", via="cli", now=NOW
            )
        skipped = skip_item(
            session,
            item(session, team, "ma_certification").id,
            reason="registered nurse",
            by="t",
            via="cli",
            now=NOW,
        )
        assert skipped.status is ItemStatus.SKIPPED


def test_offboarding_revokes_exactly_what_onboarding_granted(
    factory: sessionmaker[Session], team: Team, tmp_path: Path
) -> None:
    with factory() as session:
        email = item(session, team, "email_account").id
        badge = item(session, team, "badge").id
    done(factory, email, date(2026, 12, 4), tmp_path)
    done(factory, badge, date(2026, 12, 7), tmp_path)
    last_day = date(2026, 12, 18)
    with transaction(factory) as session:
        built = offboard(
            session, team.hires[0], last_day, now=at(date(2026, 12, 9)), zone=ZONE, actor="test"
        )
    with factory() as session:
        revokes = session.scalars(
            select(ChecklistItem).where(ChecklistItem.checklist_id == built.checklist_id)
        ).all()
        granted = granted_access(session, team.hires[0])
        assert sorted(i.access for i in revokes) == sorted(g.access for g in granted)
        assert sorted(i.access for i in revokes) == ["building", "email"]
        assert {i.revokes_item_id for i in revokes} == {email, badge}
        assert all(i.due_on == last_day and i.required_by_law for i in revokes)
        owners = {i.access: i.owner_staff_id for i in revokes}
        assert owners == {"email": team.it, "building": team.manager}
        # Still held until each owner confirms.
        assert access_held(session, team.hires[0]) == ["building", "email"]
        onboarding = session.scalars(
            select(Checklist).where(Checklist.kind == ChecklistKind.ONBOARDING)
        ).one()
        assert onboarding.status is ChecklistStatus.WITHDRAWN
        assert item(session, team, "ehr_account").status is ItemStatus.WITHDRAWN
        assert session.get_one(Staff, team.hires[0]).end_date == last_day
        revoke_email = next(i.id for i in revokes if i.access == "email")
    done(factory, revoke_email, last_day, tmp_path)
    with factory() as session:
        assert access_held(session, team.hires[0]) == ["building"]
    with transaction(factory) as session:  # again: nothing new
        again = offboard(session, team.hires[0], last_day, now=NOW, zone=ZONE, actor="test")
    assert not again.created
    assert again.checklist_id == built.checklist_id


def test_status_per_person_counts_done_overdue_blocked_and_expiring(
    factory: sessionmaker[Session], team: Team, tmp_path: Path
) -> None:
    from office.onboarding.views import overdue_by_owner, owner_items, progress

    with factory() as session:
        cpr = item(session, team, "cpr_certification").id
        sent = item(session, team, "confidentiality_agreement_sent").id
    done(factory, sent, date(2026, 11, 30), tmp_path)
    # A CPR card completed two years ago less a month: it expires within 60 days.
    done(factory, cpr, date(2024, 12, 20), tmp_path)
    with factory() as session:
        found = progress(session, date(2026, 12, 8))
        person = next(p for p in found if p.staff_id == team.hires[0])
        assert (person.done, person.total) == (2, 15)
        assert person.percent == 13
        # Due before 8 Dec and not blocked: the workstation (its dependency done) and email
        # accounts (3rd); the W-4, the agreement, the badge and the MA card (7th).
        assert person.overdue == 6
        assert person.blocked == 3  # EHR account, training records filed, shadowing
        assert person.next_due == date(2026, 12, 3)
        assert person.expiring == 1
        assert person.expired == 0
        mine = owner_items(session, date(2026, 12, 8), staff_id=team.it, role="it")
        assert [g.label for g in mine] == ["Ignatius Thistlewood (IT)"]
        assert {row.title for row in mine[0].items} >= {"Practice email account"}
        counts = overdue_by_owner(session, date(2026, 12, 8))
        assert counts == {"it": 2, "medical_assistant": 3, "office_manager": 1}
