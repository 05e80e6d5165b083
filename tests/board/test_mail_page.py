"""The board's Mail page: each person sees their role's queue and mail routed to them, the
office manager every queue, spam only by name, the rule behind each message, and an access
record for every linked patient shown."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.models import MailMessage, MailStatus, PatientAccess, StaffLogin
from tests.board.conftest import sign_in
from tests.board.practice import NOW, Seeded, add_board_login, seed_practice

pytestmark = pytest.mark.anyio


def _mail(
    session: Session,
    n: int,
    queue: str,
    *,
    category: str,
    rule: str,
    patient_id: int | None = None,
    status: MailStatus = MailStatus.ROUTED,
) -> None:
    raw = f"Subject: message {n}\r\n\r\nbody {n}\r\n".encode()
    session.add(
        MailMessage(
            mailbox="front-desk",
            dedupe_key=hashlib.sha256(raw).hexdigest(),
            raw=raw,
            size=len(raw),
            status=status,
            reason="unreadable MIME structure" if status == MailStatus.QUARANTINED else None,
            sender=f"sender{n}@lab.test",
            subject=f"Subject number {n:03d}",
            category=category,
            queue=queue,
            rule=rule,
            decision={"matched": [rule], "actions": ["route"]},
            patient_id=patient_id,
            routed_at=NOW - timedelta(minutes=n),
        )
    )


@pytest.fixture
def routed(factory: sessionmaker[Session]) -> tuple[Seeded, int]:
    with transaction(factory) as session:
        practice = seed_practice(session, 2)
        add_board_login(session, "desk@clinic.test", "front_desk")
        add_board_login(session, "bill@clinic.test", "billing")
        add_board_login(session, "boss@clinic.test", "office_manager")
        billing_staff = session.scalars(
            select(StaffLogin.staff_id).where(StaffLogin.email == "bill@clinic.test")
        ).one()
        _mail(
            session,
            1,
            "front_desk",
            category="referral",
            rule="referrals",
            patient_id=practice.patient_ids[0],
        )
        _mail(session, 2, "billing", category="billing", rule="billing-questions")
        _mail(
            session,
            3,
            f"staff:{billing_staff}",
            category="records_request",
            rule="records-to-person",
        )
        _mail(session, 4, "spam", category="spam", rule="marketing")
        _mail(session, 5, "front_desk", category="triage", rule="", status=MailStatus.QUARANTINED)
    return practice, billing_staff


async def test_each_role_sees_its_queue_and_its_own_mail(
    client: httpx.AsyncClient, routed: tuple[Seeded, int]
) -> None:
    await sign_in(client, "bill@clinic.test")
    page = await client.get("/staff/mail")
    assert page.status_code == 200
    assert "Subject number 002" in page.text
    assert "rule billing-questions" in page.text
    assert "Subject number 003" in page.text  # routed to this person
    assert "Subject number 001" not in page.text
    assert "Subject number 004" not in page.text  # spam only when asked for

    await sign_in(client, "desk@clinic.test")
    page = await client.get("/staff/mail")
    assert "Subject number 001" in page.text
    assert "rule referrals" in page.text
    assert "quarantined: unreadable MIME structure" in page.text
    assert "Subject number 002" not in page.text


async def test_the_manager_sees_every_queue_and_spam_by_name(
    client: httpx.AsyncClient, routed: tuple[Seeded, int]
) -> None:
    await sign_in(client, "boss@clinic.test")
    page = await client.get("/staff/mail")
    for n in (1, 2, 3, 5):
        assert f"Subject number {n:03d}" in page.text
    assert "Subject number 004" not in page.text
    spam = await client.get("/staff/mail", params={"queue": "spam"})
    assert "Subject number 004" in spam.text
    assert "Subject number 001" not in spam.text


async def test_linked_patients_shown_get_an_access_record(
    client: httpx.AsyncClient, routed: tuple[Seeded, int], factory: sessionmaker[Session]
) -> None:
    practice, _ = routed
    await sign_in(client, "desk@clinic.test")
    await client.get("/staff/mail")
    with factory() as session:
        records = session.execute(select(PatientAccess.patient_id, PatientAccess.page)).all()
    assert (practice.patient_ids[0], "mail") in records


async def test_the_mail_page_needs_a_login(
    client: httpx.AsyncClient, routed: tuple[Seeded, int]
) -> None:
    page = await client.get("/staff/mail")
    assert page.status_code == 303
    assert page.headers["location"].startswith("/staff/login")
