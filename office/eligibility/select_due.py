"""What to check: due visits, the monthly refresh, or one appointment, as ids and codes.

A visit is due when its patient's active primary coverage has no recent verified answer
(active or inactive) for the same date of service and service type; unverified and error
answers do not count. Nothing here reads patient data beyond ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Row, Select, func, select
from sqlalchemy.orm import Session

from office.clock import chunks
from office.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    CheckStatus,
    Coverage,
    EligibilityCheck,
    Location,
)

__all__ = [
    "REFRESH_SERVICE_TYPE",
    "Due",
    "local_today",
    "select_appointment",
    "select_due",
    "select_refresh",
]

BOOKED = (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED)
VERIFIED = (CheckStatus.ACTIVE, CheckStatus.INACTIVE)
REFRESH_SERVICE_TYPE = "30"


@dataclass(frozen=True, slots=True)
class Due:
    """One inquiry to make: a coverage, a date of service and a service type (ids only)."""

    patient_id: int
    coverage_id: int
    payer_id: int
    provider_id: int
    date_of_service: date
    service_type: str
    appointment_id: int | None = None
    relationship_code: str = "18"


def local_today(now: datetime, zone: str) -> date:
    """The practice's calendar date at `now`."""
    return now.astimezone(ZoneInfo(zone)).date()


def select_due(
    session: Session,
    *,
    now: datetime,
    today: date,
    days_ahead: int,
    refresh_after_days: int,
) -> list[Due]:
    """Visits in [today, today + days_ahead] whose primary coverage has no recent verified answer.

    A verified answer is an active or inactive one for the same coverage, date of service and
    service type, checked within `refresh_after_days` of `now`.
    """
    last = today + timedelta(days=days_ahead)
    visits = _visits(session, today, last, Appointment.status.in_(BOOKED))
    due = _with_coverage(session, visits)
    since = now - timedelta(days=refresh_after_days)
    return _not_verified_since(session, due, since)


def select_appointment(session: Session, appointment_id: int) -> list[Due]:
    """The one inquiry for a booked or confirmed visit with a primary coverage, else none."""
    row = session.execute(
        _visit_query().where(Appointment.id == appointment_id, Appointment.status.in_(BOOKED))
    ).one_or_none()
    if row is None:
        return []
    return _with_coverage(session, [_visit(row)])


def select_refresh(session: Session, *, now: datetime, today: date) -> list[Due]:
    """The monthly refresh: everyone seen or booked in the last 12 months, STC 30, as of today.

    The rendering provider is the one of the patient's latest such appointment. Coverages
    already verified for today are left out, so a second run the same day sends nothing.
    """
    since = now - timedelta(days=365)
    statuses = (*BOOKED, AppointmentStatus.COMPLETED)
    latest = (
        select(Appointment.patient_id, func.max(Appointment.start_at).label("last_at"))
        .where(Appointment.status.in_(statuses), Appointment.start_at >= since)
        .group_by(Appointment.patient_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Appointment.patient_id,
            func.min(Appointment.provider_id).label("provider_id"),
        )
        .join(
            latest,
            (latest.c.patient_id == Appointment.patient_id)
            & (latest.c.last_at == Appointment.start_at),
        )
        .where(Appointment.status.in_(statuses))
        .group_by(Appointment.patient_id)
        .order_by(Appointment.patient_id)
    )
    visits = [
        _Visit(None, row.patient_id, row.provider_id, today, REFRESH_SERVICE_TYPE) for row in rows
    ]
    due = _with_coverage(session, visits)
    return _not_verified_since(session, due, datetime.min.replace(tzinfo=UTC))


@dataclass(frozen=True, slots=True)
class _Visit:
    appointment_id: int | None
    patient_id: int
    provider_id: int
    date_of_service: date
    service_type: str


def _visit_query() -> Select[int, int, int, datetime, str, str]:
    return (
        select(
            Appointment.id.label("appointment_id"),
            Appointment.patient_id,
            Appointment.provider_id,
            Appointment.start_at,
            Location.timezone,
            AppointmentType.service_type_code,
        )
        .join(Location, Location.id == Appointment.location_id)
        .join(AppointmentType, AppointmentType.id == Appointment.appointment_type_id)
    )


def _visit(row: Row[int, int, int, datetime, str, str]) -> _Visit:
    return _Visit(
        row.appointment_id,
        row.patient_id,
        row.provider_id,
        local_today(row.start_at, row.timezone),
        row.service_type_code or REFRESH_SERVICE_TYPE,
    )


def _visits(session: Session, first: date, last: date, status: ColumnElement[bool]) -> list[_Visit]:
    # A UTC range wide enough for any zone; the location's own date decides.
    low = datetime.combine(first - timedelta(days=1), time(0), UTC)
    high = datetime.combine(last + timedelta(days=2), time(0), UTC)
    query = (
        _visit_query()
        .where(status, Appointment.start_at >= low, Appointment.start_at < high)
        .order_by(Appointment.start_at, Appointment.id)
    )
    visits = (_visit(row) for row in session.execute(query))
    return [v for v in visits if first <= v.date_of_service <= last]


def _with_coverage(session: Session, visits: Sequence[_Visit]) -> list[Due]:
    """Pair each visit with its patient's active primary coverage; visits without one drop out."""
    primary: dict[int, Row[int, int, int, str]] = {}
    for chunk in chunks(sorted({v.patient_id for v in visits})):
        rows = session.execute(
            select(
                Coverage.patient_id,
                Coverage.id.label("coverage_id"),
                Coverage.payer_id,
                Coverage.relationship_code,
            )
            .where(
                Coverage.patient_id.in_(chunk),
                Coverage.rank == 1,
                Coverage.active.is_(True),
            )
            .order_by(Coverage.id)
        )
        for row in rows:
            primary.setdefault(row.patient_id, row)
    due = []
    for visit in visits:
        found = primary.get(visit.patient_id)
        if found is None:
            continue
        due.append(
            Due(
                patient_id=visit.patient_id,
                coverage_id=found.coverage_id,
                payer_id=found.payer_id,
                provider_id=visit.provider_id,
                date_of_service=visit.date_of_service,
                service_type=visit.service_type,
                appointment_id=visit.appointment_id,
                relationship_code=found.relationship_code,
            )
        )
    return due


def _not_verified_since(session: Session, due: list[Due], since: datetime) -> list[Due]:
    """`due` without the inquiries an active or inactive answer since `since` already covers."""
    if not due:
        return due
    first = min(d.date_of_service for d in due)
    last = max(d.date_of_service for d in due)
    fresh: set[tuple[int, date, str]] = set()
    for chunk in chunks(sorted({d.coverage_id for d in due})):
        rows = session.execute(
            select(
                EligibilityCheck.coverage_id,
                EligibilityCheck.date_of_service,
                EligibilityCheck.service_type,
            ).where(
                EligibilityCheck.coverage_id.in_(chunk),
                EligibilityCheck.status.in_(VERIFIED),
                EligibilityCheck.checked_at >= since,
                EligibilityCheck.date_of_service.between(first, last),
            )
        )
        fresh.update((row.coverage_id, row.date_of_service, row.service_type) for row in rows)
    return [d for d in due if (d.coverage_id, d.date_of_service, d.service_type) not in fresh]
