"""Access records: who saw which patient's data on the board, and when (45 CFR 164.312(b)).

A page that shows patients writes one record per patient in the same transaction that
read them, so a page nobody could record was never shown.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from office.models import Patient, PatientAccess, StaffLogin

__all__ = ["AccessRecord", "access_log", "record_access"]


@dataclass(frozen=True, slots=True)
class AccessRecord:
    at: datetime
    email: str
    role: str
    page: str
    appointment_id: int | None
    client: str | None


def record_access(
    session: Session,
    *,
    login_id: int,
    patient_ids: Iterable[int],
    page: str,
    now: datetime,
    client: str | None = None,
    appointment_id: int | None = None,
) -> int:
    """One record per distinct patient shown; returns how many were written."""
    rows = [
        {
            "login_id": login_id,
            "patient_id": patient_id,
            "appointment_id": appointment_id,
            "page": page,
            "client": client,
            "at": now,
        }
        for patient_id in dict.fromkeys(patient_ids)
    ]
    if rows:
        session.execute(insert(PatientAccess), rows)
    return len(rows)


def access_log(
    session: Session, mrn: str, *, since: datetime | None = None
) -> list[AccessRecord] | None:
    """Every view of the patient with this MRN, oldest first; None when no patient has it."""
    patient_id = session.scalar(select(Patient.id).where(Patient.mrn == mrn))
    if patient_id is None:
        return None
    query = (
        select(
            PatientAccess.at,
            StaffLogin.email,
            StaffLogin.role,
            PatientAccess.page,
            PatientAccess.appointment_id,
            PatientAccess.client,
        )
        .join(StaffLogin, StaffLogin.id == PatientAccess.login_id)
        .where(PatientAccess.patient_id == patient_id)
        .order_by(PatientAccess.at, PatientAccess.id)
    )
    if since is not None:
        query = query.where(PatientAccess.at >= since)
    return [AccessRecord(*row) for row in session.execute(query)]
