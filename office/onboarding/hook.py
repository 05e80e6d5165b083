"""The practice import's staff hook: a person the file adds starts onboarding, a person whose
end date it sets or moves starts (or moves) offboarding, in the import's transaction.

Someone the file adds whose start date is long past joined before officeflows kept
checklists: no onboarding is built for them (their offboarding will take their role
template's accesses, `basis = "template"`). The mail is queued in the outbox with the
checklist and goes out with the next onboarding send (the follow-up or a start flow).
The role templates are read from disk once per import (its session), when first needed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from office.models import Location, Staff
from office.onboarding.offboard import offboard
from office.onboarding.start import start_onboarding
from office.onboarding.templates import Template, load_templates
from office.practice import StaffChange, StaffChangeKind

__all__ = ["RECENT", "on_staff_change"]

RECENT: Final = timedelta(days=30)  # a start date further back: an existing employee
ACTOR: Final = "practice-import"


def on_staff_change(session: Session, change: StaffChange, now: datetime) -> None:
    """`office.practice.StaffHook`: build the checklist the change calls for."""
    zone = _zone(session, change.staff_id)
    templates = session.info.setdefault(_TEMPLATES, _ImportTemplates())
    if change.kind is StaffChangeKind.ADDED:
        if change.on < now.date() - RECENT:
            return
        start_onboarding(
            session, change.staff_id, now=now, zone=zone, actor=ACTOR, templates=templates
        )
    else:
        offboard(
            session,
            change.staff_id,
            change.on,
            now=now,
            zone=zone,
            actor=ACTOR,
            templates=templates,
        )


_TEMPLATES: Final = "onboarding.import_templates"


class _ImportTemplates(Mapping[str, Template]):
    """The role templates for one import's hires and departures: read at most once, and
    only when one is needed (a re-import that builds nothing reads none)."""

    def __init__(self) -> None:
        self._loaded: dict[str, Template] | None = None

    def _all(self) -> dict[str, Template]:
        if self._loaded is None:
            self._loaded = load_templates()
        return self._loaded

    def __getitem__(self, role: str) -> Template:
        return self._all()[role]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


def _zone(session: Session, staff_id: int) -> str:
    """The person's clinic's zone (the day their mail is dated), else UTC."""
    zone = session.scalar(
        select(Location.timezone)
        .join(Staff, Staff.location_id == Location.id)
        .where(Staff.id == staff_id)
    )
    return zone or "UTC"
