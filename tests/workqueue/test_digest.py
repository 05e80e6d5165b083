"""The morning digest: counts per role lead, once a day, the chart inline, no patient data."""

from __future__ import annotations

import asyncio
import email
from datetime import datetime
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from flows import runtime
from flows.digest import daily_digest, open_counts, queue_digest_mail, send_digest_mail, sweep_queue
from office.db import transaction
from office.ledgers.work import WorkNeeded, open_work_items
from office.models import OutboxItem, OutboxStatus, Patient, WorkItem, WorkStatus
from office.render import render
from office.settings import Settings
from office.workqueue.digest import DIGEST_KIND
from tests.workqueue.conftest import NOW, Clinic, add_patient, add_visit, days


@pytest.fixture
def office_app(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> runtime.Office:
    monkeypatch.setattr(runtime, "_override", None)
    settings.public_url = "https://office.example.test"
    return runtime.use_office(settings, engine)


@pytest.fixture
def queue(factory: sessionmaker[Session], clinic: Clinic) -> dict[str, int]:
    """A past visit's item, two front-desk items (one overdue), a billing item, a note."""
    with transaction(factory) as session:
        patients = [add_patient(session, n) for n in range(4)]
        for patient in session.scalars(select(Patient)):
            patient.email = f"{patient.first_name.lower()}@patients.test"
        past = add_visit(session, clinic, patients[0], NOW - days(1))
        soon = add_visit(session, clinic, patients[1], NOW + days(0.5))
        later = add_visit(session, clinic, patients[2], NOW + days(10))
        other = add_visit(session, clinic, patients[3], NOW + days(4))
        found = open_work_items(
            session,
            [
                WorkNeeded("copay_changed", "appointment", past, "s", "front_desk"),
                WorkNeeded("not_active", "appointment", soon, "s", "front_desk"),
                WorkNeeded("copay_changed", "appointment", later, "s", "front_desk"),
                WorkNeeded("coordination_of_benefits", "appointment", other, "s", "billing"),
                WorkNeeded("plan_ending", "appointment", other, "s", "front_desk"),
            ],
            now=NOW - days(2),
        )
    return {"past": found[f"copay_changed:appointment:{past}"][0]}


def _messages(settings: Settings) -> dict[str, EmailMessage]:
    found = {}
    for path in Path(settings.outbox_dir).glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=default)
        assert isinstance(message, EmailMessage)
        found[str(message["To"])] = message
    return found


def test_each_lead_gets_one_digest_a_day_with_counts_and_the_chart(
    office_app: runtime.Office, clinic: Clinic, queue: dict[str, int]
) -> None:
    factory, settings = office_app.factory, office_app.settings
    assert sweep_queue.fn(NOW) == 1  # the past visit's item
    assert queue_digest_mail.fn(NOW) == 3
    assert queue_digest_mail.fn(NOW + days(0.1)) == 3  # a second run the same day adds nothing
    sent = asyncio.run(send_digest_mail.fn(NOW))
    assert sent == {f"{DIGEST_KIND}:sent": 3}
    with factory() as session:
        rows = session.scalars(
            select(OutboxItem).where(OutboxItem.kind == DIGEST_KIND).order_by(OutboxItem.id)
        ).all()
        # In the order they were queued (an unordered read of updated rows has no order on
        # PostgreSQL: each UPDATE writes the row anew).
        assert [(r.status, r.idempotency_key) for r in rows] == [
            (OutboxStatus.SENT, f"{DIGEST_KIND}:2026-12-01:{staff}")
            for staff in (clinic.manager, clinic.front_desk, clinic.billing)
        ]
    messages = _messages(settings)
    assert set(messages) == {
        "morgan@practice.test",
        "frankie@practice.test",
        "billie@practice.test",
    }
    manager = messages["morgan@practice.test"]
    assert manager["Subject"] == "Test Practice work queue, Tue Dec 01: 3 open, 1 overdue"
    text = manager.get_body(preferencelist=("plain",))
    html = manager.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    body = text.get_content()
    assert "Coverage not active on the visit date: 1 (1 overdue)" in body
    assert "Another payer reported: 1" in body
    assert "https://office.example.test/staff" in body
    assert "Plan ends" not in body  # a note, not a task
    [image] = [part for part in manager.walk() if part.get_content_type() == "image/png"]
    cid = str(image["Content-ID"]).strip("<>")
    assert f'src="cid:{cid}"' in html.get_content()
    assert image.get_content().startswith(b"\x89PNG")
    billing = messages["billie@practice.test"]
    billing_text = billing.get_body(preferencelist=("plain",))
    assert billing_text is not None
    assert "1 open item, 0 overdue" in billing_text.get_content()
    assert "Coverage not active" not in billing_text.get_content()


def test_the_digest_holds_no_patient_data(
    office_app: runtime.Office, factory: sessionmaker[Session], queue: dict[str, int]
) -> None:
    queue_digest_mail.fn(NOW)
    asyncio.run(send_digest_mail.fn(NOW))
    with factory() as session:
        patients = session.scalars(select(Patient)).all()
        phi = [p.first_name for p in patients] + [p.mrn for p in patients]
        phi += [p.email for p in patients if p.email]
        phi += [p.date_of_birth.isoformat() for p in patients]
        stored = [repr(r.detail) for r in session.scalars(select(OutboxItem))]
    assert len(phi) == 16
    raw = [path.read_bytes() for path in Path(office_app.settings.outbox_dir).glob("*.eml")]
    assert len(raw) == 3
    decoded = [
        str(part.get_content())
        for message in _messages(office_app.settings).values()
        for part in message.walk()
        if part.get_content_maintype() == "text"
    ]
    for secret in phi:
        for text in decoded + stored:
            assert secret not in text
        for data in raw:
            assert secret.encode() not in data


def test_a_new_day_brings_a_new_digest(
    office_app: runtime.Office, factory: sessionmaker[Session], queue: dict[str, int]
) -> None:
    queue_digest_mail.fn(NOW)
    queue_digest_mail.fn(NOW + days(1))
    with factory() as session:
        count = session.scalar(
            select(func.count()).select_from(OutboxItem).where(OutboxItem.kind == DIGEST_KIND)
        )
    assert count == 6


def test_no_leads_no_digest(
    office_app: runtime.Office, factory: sessionmaker[Session], clinic: Clinic
) -> None:
    from office.models import Staff

    with transaction(factory) as session:
        for staff in session.scalars(select(Staff)):
            staff.role_lead = False
    assert queue_digest_mail.fn(NOW) == 0


def test_every_digest_template_renders() -> None:
    context = {
        "practice": "P",
        "day": datetime(2026, 12, 1).date(),
        "scope": "Front desk",
        "total": 0,
        "overdue": 0,
        "overdue_kinds": [],
        "groups": [],
        "opened_yesterday": 0,
        "closed_yesterday": 0,
        "median_hours": None,
        "open_now": 0,
        "board_url": "https://x.test/staff",
        "trend_days": 30,
        "onboarding_overdue": 0,
    }
    assert render("digest/digest.subject.txt.j2", **context).strip() == (
        "P work queue, Tue Dec 01: 0 open"
    )
    assert "0 open items, 0 overdue." in render("digest/digest.txt.j2", **context)
    html = render("digest/digest.html.j2", chart_cid="c@x", **context)
    assert 'src="cid:c@x"' in html
    assert "Onboarding" not in html
    context["onboarding_overdue"] = 2
    assert "2 checklist items overdue" in render("digest/digest.txt.j2", **context)
    assert 'id="onboarding"' in render("digest/digest.html.j2", chart_cid="c@x", **context)


@pytest.mark.prefect
@pytest.mark.usefixtures("prefect_harness")
def test_the_flow_runs_its_steps_in_order(
    office_app: runtime.Office, factory: sessionmaker[Session], queue: dict[str, int]
) -> None:
    result = asyncio.run(daily_digest(now=NOW))
    assert result == {
        "closed_by_sweep": 1,
        "leads": 3,
        "open": 3,
        f"send_{DIGEST_KIND}:sent": 3,
    }
    assert [row["open"] for row in open_counts.fn(NOW)] == [1, 1, 1]
    with factory() as session:
        closed = session.get_one(WorkItem, queue["past"])
    assert (closed.status, closed.close_reason) == (WorkStatus.DONE, "visit_past")
