"""A practice's staff for the onboarding tests and benchmark (`bench/onboarding.py`).

The leads every checklist names (office manager, compliance officer, IT, billing lead and a
clinical lead) and any number of new hires across the six checklist roles, bulk-inserted,
then their checklists built through `start_onboarding`, as the flow builds them. Names are
made up and distinctive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from office.models import Practice, Staff, StaffStatus
from office.onboarding import load_templates, start_onboarding
from office.onboarding.calendar import BusinessCalendar
from office.onboarding.directory import load_directory
from office.onboarding.templates import CHECKLIST_ROLES

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)  # Tuesday, 09:00 in Chicago
ZONE = "America/Chicago"
START = date(2026, 12, 7)  # a Monday


@dataclass
class Team:
    manager: int  # office manager
    compliance: int
    it: int
    billing: int
    clinical: int  # a medical assistant lead: the clinical hires' manager
    hires: list[int] = field(default_factory=list)
    checklists: dict[int, int] = field(default_factory=dict)  # staff id -> checklist id


def _lead(session: Session, role: str, first: str, manager_id: int | None) -> int:
    person = Staff(
        first_name=first,
        last_name="Thistlewood",
        email=f"{first.lower()}.{role}@onboarding.test",
        role=role,
        manager_id=manager_id,
        start_date=date(2020, 1, 6),
        status=StaffStatus.ACTIVE,
        role_lead=True,
    )
    session.add(person)
    session.flush()
    return person.id


def seed_team(session: Session) -> Team:
    """The practice and the five leads onboarding items are owned by or escalated to."""
    session.add(Practice(name="Onboarding Test Practice"))
    manager = _lead(session, "office_manager", "Ottoline", None)
    return Team(
        manager=manager,
        compliance=_lead(session, "compliance", "Cassius", manager),
        it=_lead(session, "it", "Ignatius", manager),
        billing=_lead(session, "billing", "Bathsheba", manager),
        clinical=_lead(session, "medical_assistant", "Clemency", manager),
    )


def add_hires(
    session: Session,
    team: Team,
    count: int,
    *,
    start: date = START,
    roles: tuple[str, ...] = CHECKLIST_ROLES,
    now: datetime = NOW,
    calendar: BusinessCalendar | None = None,
) -> list[int]:
    """`count` new hires starting on `start`, roles in turn, each with their checklist."""
    first_id = len(team.hires)
    rows = []
    for n in range(first_id, first_id + count):
        role = roles[n % len(roles)]
        clinical = role in ("medical_assistant", "nurse")
        rows.append(
            {
                "first_name": f"Peregrine{n:05d}",
                "last_name": "Fairweather",
                "email": f"hire{n:05d}@onboarding.test",
                "role": role,
                "manager_id": team.clinical if clinical else team.manager,
                "location_id": None,
                "start_date": start,
                "status": StaffStatus.PENDING,
                "role_lead": False,
            }
        )
    session.execute(insert(Staff), rows)
    emails = [row["email"] for row in rows]
    ids = list(session.scalars(select(Staff.id).where(Staff.email.in_(emails)).order_by(Staff.id)))
    templates = load_templates()
    directory = load_directory(session)
    days = calendar or BusinessCalendar()
    for staff_id in ids:
        built = start_onboarding(
            session,
            staff_id,
            now=now,
            zone=ZONE,
            actor="test",
            templates=templates,
            calendar=days,
            directory=directory,
        )
        team.checklists[staff_id] = built.checklist_id
    team.hires.extend(ids)
    return ids
