"""A synthetic, deterministic demo practice: three clinics, two time zones.

Every name, date of birth, member id, phone number (555-01xx, reserved for
fiction) and address here is made up from a seeded generator; nothing is real.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from office.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    Channel,
    Consent,
    Coverage,
    Location,
    Patient,
    Payer,
    Practice,
    Provider,
    Staff,
    StaffStatus,
)

__all__ = ["DEMO_PRACTICE", "SeedCounts", "seed_practice"]

DEMO_PRACTICE = "Riverbend Family Medicine (demo)"

FIRST = [
    "Ava",
    "Ben",
    "Carla",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jamal",
    "Kara",
    "Luis",
    "Maya",
    "Nikhil",
    "Olga",
    "Pedro",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Umar",
    "Vera",
    "Wes",
    "Ximena",
    "Yusuf",
    "Zoe",
    "Aaron",
    "Bianca",
    "Chen",
    "Dana",
    "Emil",
    "Fatima",
    "Gus",
    "Hana",
    "Ivan",
    "Jada",
    "Kofi",
    "Lena",
    "Marco",
    "Nia",
    "Omar",
    "Priya",
    "Raul",
    "Sofia",
    "Theo",
    "Uma",
    "Victor",
    "Wendy",
]
LAST = [
    "Abbott",
    "Baker",
    "Castillo",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Haddad",
    "Ito",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Morales",
    "Nguyen",
    "Okafor",
    "Patel",
    "Quintero",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Varga",
    "Walsh",
    "Xu",
    "Yilmaz",
    "Zhang",
    "Alvarez",
    "Brooks",
    "Chowdhury",
    "Delgado",
    "Evans",
    "Flores",
    "Gupta",
    "Hughes",
    "Ibrahim",
    "Jones",
    "Kim",
]
STREETS = ["Oak", "Maple", "Cedar", "Pine", "Elm", "Birch", "Willow", "Lake", "Hill", "River"]


@dataclass(frozen=True)
class SeedCounts:
    patients: int
    coverages: int
    appointments: int
    staff: int
    locations: int
    payers: int


LOCATIONS = (
    ("Riverbend Downtown", "America/Chicago", "Chicago", "IL", "60601", "+13125550100"),
    ("Riverbend Northside", "America/Chicago", "Evanston", "IL", "60201", "+18475550101"),
    ("Riverbend Foothills", "America/Denver", "Boulder", "CO", "80302", "+13035550102"),
)

# (name, payer code, sandbox fault profile)
PAYERS = (
    ("Prairie Health Plan", "PRAIRIE", {"inactive_rate": 0.03, "auth_rate": 0.05}),
    ("Summit Mutual", "SUMMIT", {"aaa42_rate": 0.05, "invalid_member_rate": 0.03}),
    ("Lakeshore HMO", "LAKEHMO", {"not_found_rate": 0.05, "auth_rate": 0.05}),
    ("Great Plains Medicaid", "GPMCD", {"other_payer_rate": 0.08, "inactive_rate": 0.05}),
    ("Rocky Mountain Blue", "RMBLUE", {"corrected_rate": 0.05, "timeout_rate": 0.03}),
    ("Medicare Part B (demo)", "MEDB", {"other_payer_rate": 0.1}),
)

# (code, name, minutes, service type, sensitive)
APPOINTMENT_TYPES = (
    ("new-patient", "New patient visit", 45, "98", False),
    ("follow-up", "Follow-up visit", 20, "98", False),
    ("annual-physical", "Annual physical", 40, "BZ", False),
    ("sick-visit", "Sick visit", 20, "BY", False),
    ("behavioral-health", "Behavioral health session", 50, "MH", True),
    ("physical-therapy", "Physical therapy", 45, "PT", False),
)

ROLES = (
    ("office_manager", 1),
    ("front_desk", 4),
    ("billing", 2),
    ("medical_assistant", 3),
    ("compliance", 1),
    ("it", 1),
)

HOURS = {day: ["08:00", "17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


def seed_practice(
    session: Session,
    *,
    seed: int = 42,
    now: datetime,
    patients: int = 220,
    appointments: int = 440,
) -> SeedCounts:
    """Add the demo practice to an empty database; the same seed gives the same data."""
    rng = random.Random(seed)
    practice = Practice(name=DEMO_PRACTICE, phone="+13125550100", email_domain="riverbend.test")
    session.add(practice)
    session.flush()
    locations = [
        Location(
            practice_id=practice.id,
            name=name,
            timezone=zone,
            phone=phone,
            address_line1=f"{100 + i * 25} {STREETS[i]} Street",
            city=city,
            state=state,
            postal_code=postal,
            office_hours=HOURS,
        )
        for i, (name, zone, city, state, postal, phone) in enumerate(LOCATIONS)
    ]
    session.add_all(locations)
    providers = [
        Provider(
            practice_id=practice.id,
            npi=_npi(1000000 + i * 7919),
            first_name=FIRST[(i * 5) % len(FIRST)],
            last_name=LAST[(i * 3) % len(LAST)],
            credential="MD" if i % 3 else "NP",
        )
        for i in range(6)
    ]
    session.add_all(providers)
    payers = [
        Payer(
            name=name,
            payer_code=payer_code,
            adapter="sandbox",
            adapter_settings={"latency_ms": 5, **profile},
            concurrency_limit=20,
        )
        for name, payer_code, profile in PAYERS
    ]
    session.add_all(payers)
    kinds = [
        AppointmentType(
            code=code,
            name=name,
            duration_minutes=minutes,
            service_type_code=stc,
            sensitive=sensitive,
        )
        for code, name, minutes, stc, sensitive in APPOINTMENT_TYPES
    ]
    session.add_all(kinds)
    session.flush()

    people = [_patient(rng, i, now) for i in range(patients)]
    session.add_all(people)
    session.flush()
    coverages = 0
    for patient in people:
        session.add_all(_consents(rng, patient, now))
        for rank in (1, 2) if rng.random() < 0.12 else (1,):
            session.add(_coverage(rng, patient, rng.choice(payers), rank, now.date()))
            coverages += 1

    booked = _appointments(rng, now, people, providers, locations, kinds, appointments)
    session.add_all(booked)
    staff = _staff(session, rng, now.date(), locations)
    session.flush()
    return SeedCounts(
        patients=len(people),
        coverages=coverages,
        appointments=len(booked),
        staff=staff,
        locations=len(locations),
        payers=len(payers),
    )


def _npi(base: int) -> str:
    """A 10-digit NPI with a valid Luhn check digit (prefix 80840, as CMS specifies)."""
    body = f"{base:09d}"[-9:]
    digits = [int(d) for d in "80840" + body]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2 == 0:
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return body + str((10 - total % 10) % 10)


def _patient(rng: random.Random, index: int, now: datetime) -> Patient:
    first = rng.choice(FIRST)
    last = rng.choice(LAST)
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 80))
    confidential = rng.random() < 0.03
    has_email = rng.random() < 0.9
    email = f"{first}.{last}{index}@example.test".lower() if has_email else None
    phone = f"+1312555{index % 100:04d}" if rng.random() < 0.85 else None
    patient = Patient(
        mrn=f"MRN{100000 + index}",
        first_name=first,
        last_name=last,
        date_of_birth=born,
        sex=rng.choice("MF"),
        email=email,
        phone=phone,
        address_line1=f"{rng.randrange(10, 9999)} {rng.choice(STREETS)} Ave",
        city="Chicago",
        state="IL",
        postal_code=f"606{rng.randrange(10, 99)}",
        language="es" if rng.random() < 0.2 else "en",
        created_at=now - timedelta(days=rng.randrange(30, 2000)),
    )
    if confidential and email:
        patient.confidential_communications = True
        patient.confidential_channel = Channel.EMAIL
        patient.confidential_address = f"private{index}@example.test"
    return patient


def _consents(rng: random.Random, patient: Patient, now: datetime) -> list[Consent]:
    consents = []
    for channel, rate, has in (
        (Channel.EMAIL, 0.9, patient.email),
        (Channel.SMS, 0.65, patient.phone),
    ):
        if not has or rng.random() >= rate:
            continue
        consent = Consent(
            patient_id=patient.id,
            channel=channel,
            source=rng.choice(("intake form", "patient portal", "phone call")),
            recorded_at=now - timedelta(days=rng.randrange(1, 900)),
        )
        if rng.random() < 0.04:
            consent.opted_out_at = now - timedelta(days=rng.randrange(1, 30))
            consent.opt_out_source = "sms keyword" if channel is Channel.SMS else "email link"
        consents.append(consent)
    return consents


def _coverage(
    rng: random.Random, patient: Patient, payer: Payer, rank: int, today: date
) -> Coverage:
    relationship = "18" if rng.random() < 0.8 else rng.choice(("01", "19"))
    coverage = Coverage(
        patient_id=patient.id,
        payer_id=payer.id,
        member_id=f"{payer.payer_code[:3]}{rng.randrange(10**8, 10**9)}",
        group_number=f"G{rng.randrange(1000, 9999)}",
        rank=rank,
        effective_from=date(today.year, 1, 1),
        relationship_code=relationship,
        # Known for a few patients only; a check that disagrees raises copay_changed.
        copay_on_file=Decimal(rng.choice((20, 25, 30))) if rng.random() < 0.1 else None,
    )
    if relationship != "18":
        coverage.subscriber_first_name = rng.choice(FIRST)
        coverage.subscriber_last_name = patient.last_name
        coverage.subscriber_date_of_birth = date(1960, 1, 1) + timedelta(
            days=rng.randrange(0, 365 * 30)
        )
        coverage.subscriber_sex = rng.choice("MF")
    return coverage


def _appointments(
    rng: random.Random,
    now: datetime,
    people: list[Patient],
    providers: list[Provider],
    locations: list[Location],
    kinds: list[AppointmentType],
    count: int,
) -> list[Appointment]:
    slots: list[tuple[Location, datetime]] = []
    for location in locations:
        zone = ZoneInfo(location.timezone)
        local_today = now.astimezone(zone).date()
        for offset in range(0, 15):
            day = local_today + timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            for minute in range(8 * 60, 17 * 60, 20):
                start = datetime.combine(day, time(minute // 60, minute % 60), zone)
                if now + timedelta(hours=1) <= start <= now + timedelta(days=14):
                    slots.append((location, start.astimezone(UTC)))
    chosen = rng.sample(slots, k=min(count, len(slots)))
    chosen.sort(key=lambda pair: pair[1])
    booked = []
    for index, (location, start) in enumerate(chosen):
        kind = kinds[rng.randrange(len(kinds))]
        status = AppointmentStatus.CONFIRMED if rng.random() < 0.15 else AppointmentStatus.BOOKED
        booked.append(
            Appointment(
                external_id=f"DEMO-{index:05d}",
                patient_id=people[index % len(people)].id,
                provider_id=providers[index % len(providers)].id,
                location_id=location.id,
                appointment_type_id=kind.id,
                start_at=start,
                duration_minutes=kind.duration_minutes,
                status=status,
                booked_at=now - timedelta(days=rng.randrange(1, 40)),
                confirmed_at=now if status is AppointmentStatus.CONFIRMED else None,
            )
        )
    return booked


def _staff(session: Session, rng: random.Random, today: date, locations: list[Location]) -> int:
    """Twelve staff under one office manager; two new hires start next Monday."""
    manager = Staff(
        first_name="Morgan",
        last_name="Reyes",
        email="morgan.reyes@riverbend.test",
        role="office_manager",
        location_id=locations[0].id,
        start_date=today - timedelta(days=2400),
    )
    session.add(manager)
    session.flush()
    members = [manager]
    for role, count in ROLES[1:]:
        for n in range(count):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            members.append(
                Staff(
                    first_name=first,
                    last_name=last,
                    email=f"{first}.{last}.{role}{n}@riverbend.test".lower(),
                    role=role,
                    manager_id=manager.id,
                    location_id=locations[n % len(locations)].id,
                    start_date=today - timedelta(days=rng.randrange(60, 3000)),
                )
            )
    next_monday = today + timedelta(days=7 - today.weekday())
    for n, role in enumerate(("front_desk", "medical_assistant")):
        members.append(
            Staff(
                first_name=FIRST[n + 10],
                last_name=LAST[n + 20],
                email=f"new.hire{n}@riverbend.test",
                role=role,
                manager_id=manager.id,
                location_id=locations[n].id,
                start_date=next_monday,
                status=StaffStatus.PENDING,
            )
        )
    session.add_all(members[1:])
    return len(members)
