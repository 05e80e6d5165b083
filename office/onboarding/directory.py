"""Who does what: the staff an owner names, and who hears of an item at each escalation step.

Read once per run (one statement over `staff`) and asked per item, so resolving owners and
escalation targets costs the same for every item however large the practice.

- An item owned by `new_hire` belongs to the person; `manager` to their manager (the office
  manager when they have none); a role (`it`, `compliance`, `billing`, ...) to that role's
  holders, named on the item by the role's lead (else its first holder).
- Escalation: step 1 tells the owner, step 2 the owner's manager, step 3 the compliance
  officer for compliance items and those required by law, else the office manager.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from office.models import Staff, StaffStatus

__all__ = ["COMPLIANCE", "MANAGER_ROLE", "Directory", "Owner", "Person", "load_directory"]

MANAGER_ROLE: Final = "office_manager"
COMPLIANCE: Final = "compliance"
_GONE: Final = (StaffStatus.INACTIVE,)


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    role: str
    email: str
    manager_id: int | None
    working: bool


@dataclass(frozen=True, slots=True)
class Owner:
    """Who an item belongs to: a person, and the role whose holders may also complete it."""

    staff_id: int | None
    role: str | None


@dataclass
class Directory:
    people: dict[int, Person] = field(default_factory=dict)
    holder: dict[str, int] = field(default_factory=dict)  # role -> its lead, else first holder

    def owner(self, owner: str, hire: Person) -> Owner:
        """The person (and role) an item of `hire`'s checklist owned by `owner` belongs to."""
        if owner == "new_hire":
            return Owner(hire.id, None)
        if owner == "manager":
            manager = self.people.get(hire.manager_id) if hire.manager_id else None
            if manager is not None and manager.working:
                return Owner(manager.id, None)
            return Owner(self.holder.get(MANAGER_ROLE), MANAGER_ROLE)
        return Owner(self.holder.get(owner), owner)

    def recipient(self, staff_id: int | None, role: str | None) -> int | None:
        """Who to write to about an item: its person if still working, else its role's holder."""
        person = self.people.get(staff_id) if staff_id is not None else None
        if person is not None and person.working:
            return person.id
        if role is not None and role in self.holder:
            return self.holder[role]
        return self.holder.get(MANAGER_ROLE)

    def escalate_to(
        self, level: int, staff_id: int | None, role: str | None, *, compliance: bool
    ) -> int | None:
        """The person step `level` (1-3) of the ladder tells about an overdue item."""
        owner = self.recipient(staff_id, role)
        if level <= 1:
            return owner
        if level == 2:
            person = self.people.get(owner) if owner is not None else None
            manager = self.people.get(person.manager_id) if person and person.manager_id else None
            if manager is not None and manager.working and manager.id != owner:
                return manager.id
            return self.holder.get(MANAGER_ROLE)
        if compliance and COMPLIANCE in self.holder:
            return self.holder[COMPLIANCE]
        return self.holder.get(MANAGER_ROLE)

    def email(self, staff_id: int) -> str | None:
        person = self.people.get(staff_id)
        return person.email if person is not None else None


def load_directory(session: Session) -> Directory:
    """Every staff member (id, role, email, manager) and each role's holder."""
    directory = Directory()
    leads: dict[str, int] = {}
    rows = session.execute(
        select(
            Staff.id, Staff.role, Staff.email, Staff.manager_id, Staff.status, Staff.role_lead
        ).order_by(Staff.id)
    ).tuples()
    for staff_id, role, email, manager_id, status, lead in rows:
        working = status not in _GONE
        directory.people[staff_id] = Person(staff_id, role, email, manager_id, working)
        if not working:
            continue
        if lead and role not in leads:
            leads[role] = staff_id
        directory.holder.setdefault(role, staff_id)
    directory.holder.update(leads)
    return directory
