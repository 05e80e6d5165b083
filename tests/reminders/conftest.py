"""A small clinic to remind, the outboxes to read back, and an SMTP sink in its own process.

The database fixtures (`factory`, `settings`, SQLite always and PostgreSQL when
OFFICE_TEST_DATABASE_URL is set, each a freshly upgraded schema) and the one
session-wide Prefect harness come from tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from prefect.logging import disable_run_logger
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from flows.reminders import find_due, record_due, run_steps, send_messages, settle_interrupted
from flows.runtime import use_office
from office.db import transaction
from office.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Channel,
    Consent,
    Location,
    OutboxItem,
    Patient,
    Practice,
    Provider,
    WorkItem,
)
from office.reminders import RETRY_DELAYS, Tally
from office.settings import Settings
from testkit.smtp_sink import Sink, start_sink

# Tuesday 1 December 2026, 10:00 in Chicago: inside the send window.
NOW = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)


@dataclass
class Clinic:
    """Builds patients and appointments at one Chicago location."""

    factory: sessionmaker[Session]
    settings: Settings
    location_id: int
    provider_id: int
    types: dict[str, int]
    _serial: int = 0

    def add_type(self, code: str, **fields: Any) -> int:
        with transaction(self.factory) as session:
            kind = AppointmentType(code=code, name=fields.pop("name", code.title()), **fields)
            session.add(kind)
            session.flush()
            self.types[code] = kind.id
            return kind.id

    def patient(
        self,
        *,
        email: str | None = "ava@example.test",
        phone: str | None = "+13125550123",
        consents: Sequence[str] = ("email", "sms"),
        opted_out: Sequence[str] = (),
        language: str = "en",
        timezone: str | None = None,
        confidential: tuple[str, str | None] | None = None,
        undeliverable: bool = False,
        first_name: str = "Ava",
    ) -> int:
        self._serial += 1
        with transaction(self.factory) as session:
            patient = Patient(
                mrn=f"T{self._serial:05d}",
                first_name=first_name,
                last_name="Tester",
                date_of_birth=datetime(1980, 1, 1).date(),
                sex="F",
                email=email,
                phone=phone,
                language=language,
                timezone=timezone,
                email_undeliverable=undeliverable,
            )
            if confidential is not None:
                patient.confidential_communications = True
                patient.confidential_channel = Channel(confidential[0])
                patient.confidential_address = confidential[1]
            session.add(patient)
            session.flush()
            for channel in {*consents, *opted_out}:
                session.add(
                    Consent(
                        patient_id=patient.id,
                        channel=Channel(channel),
                        source="intake form",
                        recorded_at=NOW - timedelta(days=100),
                        opted_out_at=NOW - timedelta(days=1) if channel in opted_out else None,
                        opt_out_source="sms keyword" if channel in opted_out else None,
                    )
                )
            return patient.id

    def appointment(
        self,
        patient_id: int,
        *,
        start: datetime,
        kind: str = "follow-up",
        status: AppointmentStatus = AppointmentStatus.BOOKED,
        booked_at: datetime | None = None,
        location_id: int | None = None,
    ) -> int:
        with transaction(self.factory) as session:
            appointment = Appointment(
                patient_id=patient_id,
                provider_id=self.provider_id,
                location_id=location_id or self.location_id,
                appointment_type_id=self.types[kind],
                start_at=start,
                duration_minutes=30,
                status=status,
                booked_at=booked_at or NOW - timedelta(days=20),
            )
            session.add(appointment)
            session.flush()
            return appointment.id

    def many(self, count: int, *, start: datetime, kind: str = "follow-up") -> list[int]:
        """`count` emailable patients, one appointment each at `start`, in one transaction."""
        with transaction(self.factory) as session:
            patients = []
            for _ in range(count):
                self._serial += 1
                patients.append(
                    Patient(
                        mrn=f"T{self._serial:05d}",
                        first_name="Pat",
                        last_name="Tester",
                        date_of_birth=datetime(1980, 1, 1).date(),
                        sex="F",
                        email=f"p{self._serial}@example.test",
                    )
                )
            session.add_all(patients)
            session.flush()
            session.add_all(
                Consent(patient_id=p.id, channel=Channel.EMAIL, source="intake form")
                for p in patients
            )
            appointments = [
                Appointment(
                    patient_id=p.id,
                    provider_id=self.provider_id,
                    location_id=self.location_id,
                    appointment_type_id=self.types[kind],
                    start_at=start,
                    booked_at=NOW - timedelta(days=20),
                )
                for p in patients
            ]
            session.add_all(appointments)
            session.flush()
            return [a.id for a in appointments]

    def outbox(self) -> list[OutboxItem]:
        with self.factory() as session:
            return list(session.scalars(select(OutboxItem).order_by(OutboxItem.id)))

    def work_items(self) -> list[WorkItem]:
        with self.factory() as session:
            return list(session.scalars(select(WorkItem).order_by(WorkItem.id)))

    def run(
        self,
        now: datetime,
        settings: Settings | None = None,
        *,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
    ) -> Tally:
        """One send-reminders run through the flow's own tasks, without the engine."""
        return run_reminder_steps(
            settings or self.settings, self.factory, now, retry_delays=retry_delays
        )


def run_reminder_steps(
    settings: Settings,
    factory: sessionmaker[Session],
    now: datetime,
    *,
    retry_delays: tuple[float, ...] = RETRY_DELAYS,
) -> Tally:
    """The send-reminders flow's steps (`run_steps`), each its task's `.fn`.

    The flow runs the same steps in the same order through the engine; here the
    engine's retries and states are left out, and `retry_delays` may be shortened.
    """

    async def send(outbox_ids: list[int], moment: datetime) -> dict[str, int]:
        return await send_messages.fn(outbox_ids, moment, retry_delays)

    use_office(settings, factory.kw["bind"])
    with disable_run_logger():
        return asyncio.run(run_steps(now, settle_interrupted.fn, record_due.fn, find_due.fn, send))


def build_clinic(factory: sessionmaker[Session], settings: Settings) -> Clinic:
    with transaction(factory) as session:
        practice = Practice(
            name="Lakeside Clinic", phone="+13125550100", email_domain="lakeside.test"
        )
        session.add(practice)
        session.flush()
        location = Location(
            practice_id=practice.id,
            name="Lakeside Main",
            timezone="America/Chicago",
            phone="+13125550100",
            address_line1="100 Oak Street",
            city="Chicago",
            state="IL",
            postal_code="60601",
        )
        provider = Provider(
            practice_id=practice.id, npi="1234567893", first_name="Kim", last_name="Lee"
        )
        session.add_all([location, provider])
        session.flush()
        types = {}
        for code, name, sensitive in (
            ("follow-up", "Follow-up visit", False),
            ("behavioral-health", "Behavioral health session", True),
        ):
            kind = AppointmentType(code=code, name=name, sensitive=sensitive)
            session.add(kind)
            session.flush()
            types[code] = kind.id
        return Clinic(factory, settings, location.id, provider.id, types)


@pytest.fixture
def clinic(factory: sessionmaker[Session], settings: Settings) -> Clinic:
    return build_clinic(factory, settings)


# --- reading what went out ----------------------------------------------------------------


def parse_eml(data: bytes) -> EmailMessage:
    message = BytesParser(policy=email_policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def delivered_files(directory: Path, suffix: str) -> list[Path]:
    """Files the file transports delivered; a killed write leaves only a hidden temp file."""
    return sorted(path for path in directory.glob(f"*{suffix}") if not path.name.startswith("."))


def sent_mail(settings: Settings) -> list[EmailMessage]:
    """Every .eml the file mailer wrote, parsed back."""
    return [parse_eml(path.read_bytes()) for path in delivered_files(settings.outbox_dir, ".eml")]


def sent_texts(settings: Settings) -> list[dict[str, Any]]:
    directory = settings.outbox_dir / "sms"
    return [json.loads(path.read_text()) for path in delivered_files(directory, ".json")]


def recipients(settings: Settings) -> dict[str, list[str]]:
    """Addresses that received something, per channel."""
    return {
        "email": sorted(str(message["To"]) for message in sent_mail(settings)),
        "sms": sorted(text["to"] for text in sent_texts(settings)),
    }


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


# --- a real SMTP server in a child process ------------------------------------------------


@pytest.fixture
def sink_factory(tmp_path: Path) -> Iterator[Any]:
    """Start `testkit/smtp_sink.py` with the given faults; stopped after the test."""
    started: list[Sink] = []

    def start(*options: str) -> Sink:
        sink = start_sink(tmp_path / f"sink{len(started)}", *options)
        started.append(sink)
        return sink

    yield start
    for sink in started:
        sink.stop()


def smtp_settings(settings: Settings, port: int) -> Settings:
    return settings.model_copy(update={"mailer": "smtp", "smtp_port": port})
