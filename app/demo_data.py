"""A synthetic, deterministic demo practice: three clinics, two time zones.

Every name, date of birth, member id, phone number (555-01xx, reserved for
fiction) and address here is made up from a seeded generator; nothing is real. The
practice is a practice file and the patients a CSV export, as a practice would bring
them (`office practice import`, `office records import`); the visits are booked rows.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from office.records.csv_import import CSV_COLUMNS
from office.workqueue.kinds import KINDS

__all__ = [
    "DEMO_PRACTICE",
    "DemoData",
    "Visit",
    "build_demo",
    "patients_csv",
    "practice_yaml",
]

DEMO_PRACTICE = "Riverbend Family Medicine (demo)"
PRACTICE_DOMAIN = "riverbend.test"  # the demo mailbox's domain (app/demo_mail.py)
MEDICARE = "MEDB"  # its member ids are MBIs, as the records import checks
# Three area codes: 555-0100..0199 is all the fiction a code has, and every patient's
# phone is their own (a shared one makes the matcher hold a patient as a possible duplicate).
AREA_CODES = ("312", "773", "872")

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


@dataclass(frozen=True, slots=True)
class Visit:
    """One booked visit, by position in the demo's lists (ids exist only once imported)."""

    external_id: str
    patient: int  # index into DemoData.patients
    provider: int
    location: int
    kind: int
    start_at: datetime
    confirmed: bool
    booked_at: datetime


@dataclass(frozen=True, slots=True)
class DemoData:
    """The practice file's document, the patients' CSV rows and the visits to book."""

    practice: dict[str, Any]
    patients: list[dict[str, str]]
    visits: list[Visit]
    # Rows (indexes) whose patient asked for confidential communications by email, and the
    # address: the CSV has no column for it.
    confidential: dict[int, str]

    def without_hire(self, number: int) -> dict[str, Any]:
        """The practice file before hire `number` (0 or 1) was added."""
        staff = [s for s in self.practice["staff"] if s["email"] != _hire_email(number)]
        return {**self.practice, "staff": staff}


def build_demo(
    *, seed: int = 42, now: datetime, patients: int = 220, appointments: int = 440
) -> DemoData:
    """The demo practice's data; the same seed and clock give the same data."""
    rng = random.Random(seed)
    people = [_patient(rng, i) for i in range(patients)]
    confidential = {
        i: f"private{i}@example.org" for i, (_row, private) in enumerate(people) if private
    }
    rows = [row for row, _private in people]
    for row in rows:
        _consents(rng, row)
        for rank in (1, 2) if rng.random() < 0.12 else (1,):
            _coverage(rng, row, rng.choice(PAYERS)[1], rank, now.date())
    visits = _visits(rng, now, patients, appointments)
    practice = {
        "practice": {
            "name": DEMO_PRACTICE,
            "phone": "+13125550100",
            "email_domain": PRACTICE_DOMAIN,
        },
        "clinics": [
            {
                "name": name,
                "timezone": zone,
                "phone": phone,
                "address": {
                    "line1": f"{100 + i * 25} {STREETS[i]} Street",
                    "city": city,
                    "state": state,
                    "postal_code": postal,
                },
                "hours": HOURS,
            }
            for i, (name, zone, city, state, postal, phone) in enumerate(LOCATIONS)
        ],
        "providers": [
            {
                "npi": _npi(1000000 + i * 7919),
                "first_name": FIRST[(i * 5) % len(FIRST)],
                "last_name": LAST[(i * 3) % len(LAST)],
                "credential": "MD" if i % 3 else "NP",
            }
            for i in range(6)
        ],
        "payers": [
            {
                "code": code,
                "name": name,
                "adapter": "sandbox",
                "settings": {"latency_ms": 5, **profile},
                "concurrency_limit": 20,
            }
            for name, code, profile in PAYERS
        ],
        "appointment_types": [
            {"code": code, "name": name, "minutes": minutes, "service_type": stc}
            | ({"sensitive": True} if sensitive else {})
            for code, name, minutes, stc, sensitive in APPOINTMENT_TYPES
        ],
        "staff": _staff(rng, now.date()),
    }
    return DemoData(practice, rows, visits, confidential)


def practice_yaml(document: dict[str, Any]) -> bytes:
    """The practice file `office practice import` reads."""
    note = "# The demo practice, as `office practice import` reads it (generated by office demo).\n"
    return (note + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)).encode()


def patients_csv(rows: list[dict[str, str]]) -> bytes:
    """The patients with their coverage, as `office records import` reads them."""
    used = [name for name in CSV_COLUMNS if any(name in row for row in rows)]
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=used, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


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


def _patient(rng: random.Random, index: int) -> tuple[dict[str, str], bool]:
    """One patient's CSV row, and whether they asked for confidential communications."""
    first = rng.choice(FIRST)
    last = rng.choice(LAST)
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 80))
    confidential = rng.random() < 0.03
    has_email = rng.random() < 0.9
    has_phone = rng.random() < 0.85
    row = {
        "mrn": f"MRN{100000 + index}",
        "first_name": first,
        "last_name": last,
        "date_of_birth": born.isoformat(),
        "sex": rng.choice("MF"),
        "address_line1": f"{rng.randrange(10, 9999)} {rng.choice(STREETS)} Ave",
        "city": "Chicago",
        "state": "IL",
        "postal_code": f"606{rng.randrange(10, 99)}",
        "language": "es" if rng.random() < 0.2 else "en",
    }
    rng.randrange(30, 2000)  # was the record's age; kept so a seed gives the data it gave
    if has_email:
        row["email"] = f"{first}.{last}{index}@example.com".lower()
    if has_phone:
        area = AREA_CODES[index // 100 % len(AREA_CODES)]
        row["phone"] = f"+1{area}55501{index % 100:02d}"
    return row, confidential and has_email


def _consents(rng: random.Random, row: dict[str, str]) -> None:
    """consent_email and consent_sms: yes, or no for the few who opted out."""
    for channel, rate, has in (("email", 0.9, "email" in row), ("sms", 0.65, "phone" in row)):
        if not has or rng.random() >= rate:
            continue
        rng.choice(("intake form", "patient portal", "phone call"))  # where and when it was
        rng.randrange(1, 900)  # given: no CSV column; drawn so a seed gives the data it gave
        opted_out = rng.random() < 0.04
        if opted_out:
            rng.randrange(1, 30)
        row[f"consent_{channel}"] = "no" if opted_out else "yes"


def _coverage(rng: random.Random, row: dict[str, str], payer: str, rank: int, today: date) -> None:
    prefix = "" if rank == 1 else "secondary_"
    relationship = "18" if rng.random() < 0.8 else rng.choice(("01", "19"))
    cells = {
        "payer_code": payer,
        "member_id": _member_id(payer, rng.randrange(10**8, 10**9)),
        "group_number": f"G{rng.randrange(1000, 9999)}",
        "effective_from": date(today.year, 1, 1).isoformat(),
        "relationship": relationship,
    }
    # Known for a few patients only; a check that disagrees raises copay_changed.
    if rng.random() < 0.1:
        cells["copay"] = f"{rng.choice((20, 25, 30))}.00"
    if relationship != "18":
        cells["subscriber_first_name"] = rng.choice(FIRST)
        cells["subscriber_last_name"] = row["last_name"]
        born = date(1960, 1, 1) + timedelta(days=rng.randrange(0, 365 * 30))
        cells["subscriber_date_of_birth"] = born.isoformat()
        cells["subscriber_sex"] = rng.choice("MF")
    row.update({prefix + name: value for name, value in cells.items()})


def _member_id(payer: str, number: int) -> str:
    """The payer's prefix and the number; for Medicare, an MBI made of the number."""
    if payer != MEDICARE:
        return f"{payer[:3]}{number}"
    letters = "ACDEFGHJKMNPQRTUVWXY"  # an MBI never uses S, L, O, I, B or Z
    d = f"{number:09d}"

    def letter(scale: int) -> str:
        return letters[number // scale % len(letters)]

    head = f"{d[0]}{letter(1)}{letter(20)}{d[1]}{letter(400)}{d[2]}{d[3]}"
    return f"{head}{letter(8000)}{letter(160000)}{d[4]}{d[5]}"


def _visits(rng: random.Random, now: datetime, patients: int, count: int) -> list[Visit]:
    slots: list[tuple[int, datetime]] = []
    for place, location in enumerate(LOCATIONS):
        zone = ZoneInfo(location[1])
        local_today = now.astimezone(zone).date()
        for offset in range(0, 15):
            day = local_today + timedelta(days=offset)
            if day.weekday() >= 5:
                continue
            for minute in range(8 * 60, 17 * 60, 20):
                start = datetime.combine(day, time(minute // 60, minute % 60), zone)
                if now + timedelta(hours=1) <= start <= now + timedelta(days=14):
                    slots.append((place, start.astimezone(UTC)))
    chosen = rng.sample(slots, k=min(count, len(slots)))
    chosen.sort(key=lambda pair: pair[1])
    visits = []
    for index, (place, start) in enumerate(chosen):
        kind = rng.randrange(len(APPOINTMENT_TYPES))
        confirmed = rng.random() < 0.15
        visits.append(
            Visit(
                external_id=f"DEMO-{index:05d}",
                patient=index % patients,
                provider=index % 6,
                location=place,
                kind=kind,
                start_at=start,
                confirmed=confirmed,
                booked_at=now - timedelta(days=rng.randrange(1, 40)),
            )
        )
    return visits


def _hire_email(number: int) -> str:
    return f"new.hire{number}@{PRACTICE_DOMAIN}"


def _staff(rng: random.Random, today: date) -> list[dict[str, Any]]:
    """Twelve staff under one office manager; two new hires start next Monday. The first
    of each role that owns work items leads it (gets its digest)."""
    manager = f"morgan.reyes@{PRACTICE_DOMAIN}"
    clinics = [location[0] for location in LOCATIONS]
    members: list[dict[str, Any]] = [
        {
            "email": manager,
            "first_name": "Morgan",
            "last_name": "Reyes",
            "role": "office_manager",
            "clinic": clinics[0],
            "start_date": today - timedelta(days=2400),
        }
    ]
    for role, count in ROLES[1:]:
        for n in range(count):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            members.append(
                {
                    "email": f"{first}.{last}.{role}{n}@{PRACTICE_DOMAIN}".lower(),
                    "first_name": first,
                    "last_name": last,
                    "role": role,
                    "clinic": clinics[n % len(clinics)],
                    "manager": manager,
                    "start_date": today - timedelta(days=rng.randrange(60, 3000)),
                }
            )
    next_monday = today + timedelta(days=7 - today.weekday())
    for n, role in enumerate(("front_desk", "medical_assistant")):
        members.append(
            {
                "email": _hire_email(n),
                "first_name": FIRST[n + 10],
                "last_name": LAST[n + 20],
                "role": role,
                "clinic": clinics[n],
                "manager": manager,
                "start_date": next_monday,
                "status": "pending",
            }
        )
    leads = {kind.role for kind in KINDS}
    for member in members:
        if member["role"] in leads:
            member["role_lead"] = True
            leads.discard(member["role"])
    return members
