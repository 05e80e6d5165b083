"""A hire's status follows their start date: pending until day one, active from then on.

The daily follow-up applies it, so the board, the digest and the mail routing treat a new
hire as staff from their first day without anyone editing the record. A departing member
stays as they are after their last day: their offboarding checklist is still followed up
(and escalated) until every access is confirmed revoked.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import select

from office.ledgers import apply_changes
from office.models import Staff, StaffStatus

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["ACTOR", "start_arrivals"]

ACTOR = "flow:onboarding-followup"


def start_arrivals(session: Session, *, today: date) -> int:
    """Pending staff whose start date has come become active, each change audited; how many."""
    arrived = session.scalars(
        select(Staff)
        .where(Staff.status == StaffStatus.PENDING, Staff.start_date <= today)
        .order_by(Staff.id)
    ).all()
    for person in arrived:
        apply_changes(
            session, person, {"status": StaffStatus.ACTIVE}, actor=ACTOR, source="start date"
        )
    return len(arrived)
