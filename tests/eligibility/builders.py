"""A tiny practice for eligibility tests, and an in-memory payer that answers with real 271s.

Every name, date of birth and member id here is made up and distinctive, so a test can look
for it anywhere Prefect recorded something.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from integrations.payers.base import response_from_271
from integrations.x12 import Scenario, build_271
from office.contracts.payers import PayerResponse, PayerRetryableError
from office.eligibility.types import EligibilityRequest
from office.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Coverage,
    Location,
    Patient,
    Payer,
    Practice,
    Provider,
)

ZONE = "America/Chicago"
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # 09:00 in Chicago
TODAY = date(2026, 12, 1)
DOB = date(1971, 2, 13)
RENDERING_NPI = "1234567893"


@dataclass
class Clinic:
    location_id: int
    provider_id: int
    payer_ids: list[int]
    visit_type_id: int
    patients: list[int] = field(default_factory=list)

    @property
    def payer_id(self) -> int:
        return self.payer_ids[0]


def first_name(index: int) -> str:
    return f"Zephyrine{index:03d}"


def member_id(index: int) -> str:
    return f"QZX{index:06d}W"


def clinic(
    session: Session,
    *,
    payers: int = 1,
    concurrency: int | None = 4,
    service_type: str = "98",
) -> Clinic:
    practice = Practice(name="Test Practice")
    session.add(practice)
    session.flush()
    location = Location(practice_id=practice.id, name="Main", timezone=ZONE)
    provider = Provider(
        practice_id=practice.id,
        npi=RENDERING_NPI,
        first_name="Ada",
        last_name="Lovelace",
    )
    kind = AppointmentType(
        code="office", name="Office visit", duration_minutes=20, service_type_code=service_type
    )
    payer_rows = [
        Payer(
            name=f"Payer {n}",
            payer_code=f"PAYER{n}",
            adapter="fake",
            concurrency_limit=concurrency,
            rate_per_second=1000.0,
        )
        for n in range(payers)
    ]
    session.add_all([location, provider, kind, *payer_rows])
    session.flush()
    return Clinic(location.id, provider.id, [p.id for p in payer_rows], kind.id)


def patient(
    session: Session,
    place: Clinic,
    index: int,
    *,
    payer: int = 0,
    rank: int = 1,
    active: bool = True,
    relationship: str = "18",
    subscriber_name: bool = True,
    copay: Decimal | None = Decimal("25"),
) -> tuple[int, int]:
    """A patient and one coverage; returns (patient id, coverage id)."""
    person = Patient(
        mrn=f"MRN-T{index:05d}",
        first_name=first_name(index),
        last_name="Quillfeather",
        date_of_birth=DOB,
        sex="F",
    )
    session.add(person)
    session.flush()
    cover = coverage(
        session,
        place,
        person.id,
        index,
        payer=payer,
        rank=rank,
        active=active,
        relationship=relationship,
        subscriber_name=subscriber_name,
        copay=copay,
    )
    place.patients.append(person.id)
    return person.id, cover


def coverage(
    session: Session,
    place: Clinic,
    patient_id: int,
    index: int,
    *,
    payer: int = 0,
    rank: int = 1,
    active: bool = True,
    relationship: str = "18",
    subscriber_name: bool = True,
    copay: Decimal | None = Decimal("25"),
) -> int:
    cover = Coverage(
        patient_id=patient_id,
        payer_id=place.payer_ids[payer],
        member_id=member_id(index) if rank == 1 else f"{member_id(index)}S",
        group_number="GRP77",
        rank=rank,
        active=active,
        relationship_code=relationship,
        copay_on_file=copay,
    )
    if relationship != "18" and subscriber_name:
        cover.subscriber_first_name = f"Subscriberia{index:03d}"
        cover.subscriber_last_name = "Quillfeather"
        cover.subscriber_date_of_birth = date(1950, 3, 4)
        cover.subscriber_sex = "M"
    session.add(cover)
    session.flush()
    return cover.id


def appointment(
    session: Session,
    place: Clinic,
    patient_id: int,
    *,
    day: date = TODAY,
    at: time = time(10, 0),
    status: AppointmentStatus = AppointmentStatus.BOOKED,
) -> int:
    start = datetime.combine(day, at, ZoneInfo(ZONE)).astimezone(UTC)
    visit = Appointment(
        patient_id=patient_id,
        provider_id=place.provider_id,
        location_id=place.location_id,
        appointment_type_id=place.visit_type_id,
        start_at=start,
        status=status,
    )
    session.add(visit)
    session.flush()
    return visit.id


# --- an in-memory payer ---------------------------------------------------------------------

FAULTS = ("5xx", "429", "timeout", "aaa42")


class FakePayer:
    """Answers like a payer through the real 271 codec, with scripted or random faults.

    It is its own `PayerDirectory`: every payer opens this one adapter. `decide(request,
    attempt)` names the outcome of each call: "ok", "inactive", "aaa72", "aaa76",
    "malformed", or a fault from FAULTS. The default answers every call "ok", or with a
    random fault at `fault_rate`.
    """

    name: ClassVar[str] = "fake"

    def __init__(
        self,
        *,
        fault_rate: float = 0.0,
        seed: int = 0,
        scenario: Scenario | None = None,
        decide: Callable[[EligibilityRequest, int], str] | None = None,
    ) -> None:
        self.fault_rate = fault_rate
        self.rng = random.Random(seed)
        # A plan running well past the visit, so "plan ends soon" stays quiet unless asked.
        self.scenario = scenario or Scenario(insurance_type="PR", plan_end=date(2027, 12, 31))
        self.decide = decide or self._random
        self.attempts: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.requests: dict[str, EligibilityRequest] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.settings: list[Mapping[str, Any]] = []
        self.connections: list[int] = []
        self.open_now = 0
        self._control = itertools.count(1)

    @asynccontextmanager
    async def open(
        self, adapter: str, settings: Mapping[str, Any], *, connections: int
    ) -> AsyncIterator[FakePayer]:
        assert adapter == "fake"
        self.settings.append(settings)
        self.connections.append(connections)
        self.open_now += 1
        try:
            yield self
        finally:
            self.open_now -= 1

    def _random(self, _request: EligibilityRequest, _attempt: int) -> str:
        if self.rng.random() < self.fault_rate:
            return self.rng.choice(FAULTS)
        return "ok"

    async def check(self, request: EligibilityRequest) -> PayerResponse:
        self.attempts[request.trace] += 1
        self.requests[request.trace] = request
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # let every other caller in, as a network wait would
            outcome = self.decide(request, self.attempts[request.trace])
            self.outcomes[outcome] += 1
            return self._answer(request, outcome)
        finally:
            self.in_flight -= 1

    def _answer(self, request: EligibilityRequest, outcome: str) -> PayerResponse:
        if outcome == "5xx":
            raise PayerRetryableError("payer unavailable (HTTP 503)", status_code=503)
        if outcome == "429":
            raise PayerRetryableError("payer rate limited (HTTP 429)", retry_after=2.0)
        if outcome == "timeout":
            raise PayerRetryableError("payer did not answer in time (ReadTimeout)")
        if outcome == "malformed":
            return response_from_271(request, "ISA*00*this is not a 271~")
        scenarios = {
            "ok": self.scenario,
            "inactive": Scenario(status="inactive"),
            "aaa42": Scenario(aaa=(("2100A", "42", "R"),)),
            "aaa72": Scenario(aaa=(("2100C", "72", "C"),)),
            "aaa76": Scenario(aaa=(("2100C", "76", "C"),)),
        }
        raw = build_271(
            request,
            interchange_control=next(self._control),
            scenario=scenarios[outcome],
            when=NOW,
        )
        return response_from_271(request, raw)


def days(n: int) -> timedelta:
    return timedelta(days=n)
