"""Mail routing fixtures: a practice with patients and staff, a Maildir, and one routing run
driven through the route-mail flow's task functions (`run_steps` with each task's `.fn`)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from prefect.logging import disable_run_logger
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from app.demo_mail import Person
from flows import mail as mail_flow
from flows.runtime import use_office
from integrations.mailbox import deliver
from office.db import transaction
from office.models import MailMessage, OutboxItem, Patient, Practice, Staff, WorkItem
from office.settings import Settings
from testkit.dovecot import DovecotServer, dovecot_available, dovecot_server

NOW = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
MAILBOX = "front-desk"
ADDRESS = "frontdesk@riverbend.test"


@dataclass
class Office:
    """The practice under test: settings, database and its Maildir."""

    settings: Settings
    engine: Engine
    factory: sessionmaker[Session]
    maildir: Path

    def deliver(self, messages: list[tuple[str, bytes]]) -> None:
        for key, raw in messages:
            deliver(self.maildir, key, raw)

    def run(self, now: datetime = NOW, *, backlog: bool = False) -> mail_flow.MailSteps:
        use_office(self.settings, self.engine)
        with disable_run_logger():
            return asyncio.run(
                mail_flow.run_steps(
                    [MAILBOX],
                    now,
                    backlog=backlog,
                    store=mail_flow.store_mail.fn,
                    route=mail_flow.route_stored.fn,
                    finish=mail_flow.finish_mail.fn,
                    send=mail_flow.send_mail.fn,
                )
            )

    def mail(self) -> list[MailMessage]:
        with self.factory() as session:
            return list(session.scalars(select(MailMessage).order_by(MailMessage.id)))

    def outbox(self) -> list[OutboxItem]:
        with self.factory() as session:
            return list(session.scalars(select(OutboxItem).order_by(OutboxItem.id)))

    def work(self) -> list[WorkItem]:
        with self.factory() as session:
            return list(session.scalars(select(WorkItem).order_by(WorkItem.id)))

    def left_in_inbox(self) -> list[str]:
        return sorted(
            path.name for sub in ("new", "cur") for path in (self.maildir / sub).glob("*")
        )

    def routed_on_server(self) -> list[str]:
        return sorted(path.name for path in (self.maildir / ".Routed" / "cur").glob("*"))


PEOPLE = [
    Person("MRN100001", "Maria", "Garcia", date(1980, 3, 14), "maria.garcia@example.org"),
    Person("MRN100002", "James", "Smith", date(1975, 7, 2), "james.smith@example.org"),
]


@pytest.fixture
def practice(
    engine: Engine, factory: sessionmaker[Session], settings: Settings
) -> Iterator[Office]:
    with transaction(factory) as session:
        session.add(
            Practice(
                name="Riverbend Family Medicine",
                phone="+13125550100",
                email_domain="riverbend.test",
            )
        )
        for person in PEOPLE:
            session.add(
                Patient(
                    mrn=person.mrn,
                    first_name=person.first,
                    last_name=person.last,
                    date_of_birth=person.birth,
                    sex="F",
                    email=person.email,
                )
            )
        session.add(
            Staff(
                first_name="Dana",
                last_name="Lee",
                email="dana.lee@riverbend.test",
                role="billing",
                start_date=date(2020, 1, 1),
            )
        )
    mail_settings = settings.model_copy(
        update={"mail_from": "reminders@riverbend.test", "mailer": "file"}
    )
    office = Office(mail_settings, engine, factory, mail_settings.home / "mail" / MAILBOX)
    yield office
    use_office(settings, engine)


@pytest.fixture
def dovecot() -> Iterator[DovecotServer]:
    """A real Dovecot on loopback, configured from scratch for this test."""
    if not dovecot_available():
        pytest.skip("dovecot is not installed (.ci/run installs dovecot-imapd)")
    with dovecot_server() as server:
        yield server
