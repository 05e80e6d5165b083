"""Bookings from the practice-management system: create, move or cancel appointments.

Events apply in the order the practice-management system made them, not the order they
arrive: each carries `occurred_at`, the time of the last one applied to an appointment is
kept in the audit ledger (field `pms_event_at`), and an older event is refused, so a late
or replayed `booked` can never undo a later `cancelled`.

HL7 SIU messages and FHIR Appointments arrive as a normalized `BookingUpdate`
(`office.records.updates`); `apply_booking_update` resolves their patient and location and
applies them through the same `apply_booking_event` as the webhook's JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from office.intake import IntakeRejected, Outcome
from office.ledgers import apply_changes, record_change
from office.ledgers.work import Cleared, clear_work
from office.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    AuditEntry,
    InboxItem,
    Location,
    Patient,
    PatientIdentifier,
    Provider,
)
from office.records.updates import BookingUpdate
from office.workqueue.kinds import CloseReason

__all__ = [
    "EVENT_TIME_FIELD",
    "BookingEvent",
    "apply_booking",
    "apply_booking_event",
    "apply_booking_update",
    "booking_event",
]

# The audit field holding when the practice-management system made the last applied event.
EVENT_TIME_FIELD = "pms_event_at"
# How far ahead of our clock an event time may be: the webhook signature's own tolerance.
# A time further ahead would make every real event after it look older, and be refused.
_CLOCK_SKEW = timedelta(minutes=5)


class BookingEvent(BaseModel):
    """One booking message: a new, moved, confirmed or cancelled appointment."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    event: Literal["booked", "rescheduled", "confirmed", "cancelled"] = "booked"
    external_id: str = Field(min_length=1, max_length=80)
    patient_mrn: str = Field(min_length=1, max_length=40)
    provider_npi: str = Field(pattern=r"^\d{10}$")
    location_id: int
    appointment_type: str = Field(min_length=1, max_length=40)
    start: AwareDatetime
    duration_minutes: int | None = Field(default=None, ge=5, le=480)
    occurred_at: AwareDatetime  # when the practice-management system made this change


def parse_booking(body: bytes) -> BookingEvent:
    try:
        return BookingEvent.model_validate_json(body)
    except ValidationError as exc:
        # Name the fields, never echo their values: the payload holds PHI.
        fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
        raise IntakeRejected("invalid booking: " + ", ".join(fields)) from None


def apply_booking(session: Session, item: InboxItem, *, now: datetime) -> Outcome:
    """The bookings webhook's handler: its JSON body is one `BookingEvent`."""
    return apply_booking_event(session, parse_booking(item.body), item=item, now=now)


def apply_booking_update(
    session: Session, update: BookingUpdate, *, item: InboxItem, now: datetime
) -> Outcome:
    """A booking from HL7 SIU or a FHIR Appointment, applied as the bookings webhook's is.

    The patient is named by MRN or by the sender's id for them (`patient_identifiers`),
    the location by our id or its name; what cannot be resolved is rejected by name.
    """
    return apply_booking_event(session, booking_event(session, update), item=item, now=now)


def booking_event(session: Session, update: BookingUpdate) -> BookingEvent:
    """The `BookingEvent` a normalized booking stands for, with our MRN and location id."""
    mrn = update.patient_mrn
    if mrn is None and update.patient_identifier is not None:
        mrn = session.scalar(
            select(Patient.mrn)
            .join(PatientIdentifier, PatientIdentifier.patient_id == Patient.id)
            .where(
                PatientIdentifier.system == update.patient_identifier.system,
                PatientIdentifier.value == update.patient_identifier.value,
            )
        )
    location_id = update.location_id
    if location_id is None and update.location_name:
        location_id = session.scalar(
            select(Location.id).where(Location.name == update.location_name).limit(1)
        )
    missing = [
        name for name, value in (("patient", mrn), ("location", location_id)) if value is None
    ]
    if missing:
        raise IntakeRejected("unknown " + ", ".join(missing))
    payload = {
        "event": update.event,
        "external_id": update.external_id,
        "patient_mrn": mrn,
        "provider_npi": update.provider_npi,
        "location_id": location_id,
        "appointment_type": update.appointment_type,
        "start": update.start,
        "duration_minutes": update.duration_minutes,
        "occurred_at": update.occurred_at,
    }
    try:
        return BookingEvent.model_validate(payload)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
        raise IntakeRejected("invalid booking: " + ", ".join(fields)) from None


def apply_booking_event(
    session: Session, event: BookingEvent, *, item: InboxItem, now: datetime
) -> Outcome:
    """Create, move, confirm or cancel the appointment the event names, unless it is stale."""
    source = f"inbox:{item.id}"
    actor = f"webhook:{item.source}"
    patient_id = session.scalar(select(Patient.id).where(Patient.mrn == event.patient_mrn))
    provider_id = session.scalar(select(Provider.id).where(Provider.npi == event.provider_npi))
    kind = session.scalar(
        select(AppointmentType).where(AppointmentType.code == event.appointment_type)
    )
    location = session.get(Location, event.location_id)
    missing = [
        name
        for name, value in (
            ("patient_mrn", patient_id),
            ("provider_npi", provider_id),
            ("appointment_type", kind),
            ("location_id", location),
        )
        if value is None
    ]
    if missing:
        raise IntakeRejected("unknown " + ", ".join(missing))
    assert patient_id is not None
    assert provider_id is not None
    assert kind is not None
    start_utc = event.start.astimezone(UTC)
    occurred = event.occurred_at.astimezone(UTC)
    if occurred > now + _CLOCK_SKEW:
        raise IntakeRejected("booking occurred_at is in the future")
    # Locked (on PostgreSQL) so two events for one appointment apply one after the other.
    appointment = session.scalar(
        select(Appointment).where(Appointment.external_id == event.external_id).with_for_update()
    )
    last = None if appointment is None else _last_event_time(session, appointment.id)
    if last is not None and occurred < last:
        raise IntakeRejected("booking event is older than the last one applied to its appointment")
    status = {
        "booked": AppointmentStatus.BOOKED,
        "rescheduled": AppointmentStatus.BOOKED,
        "confirmed": AppointmentStatus.CONFIRMED,
        "cancelled": AppointmentStatus.CANCELLED,
    }[event.event]
    values = {
        "patient_id": patient_id,
        "provider_id": provider_id,
        "location_id": event.location_id,
        "appointment_type_id": kind.id,
        "start_at": start_utc,
        "duration_minutes": event.duration_minutes or kind.duration_minutes,
        "status": status,
    }
    new = appointment is None
    if appointment is None:
        appointment = Appointment(external_id=event.external_id, **values)
        session.add(appointment)
        session.flush()
        record_change(session, appointment, "status", None, status, actor=actor, source=source)
        changed = ["start_at"]
    else:
        if appointment.patient_id != patient_id:
            raise IntakeRejected("booking names a different patient than the stored appointment")
        changed = apply_changes(session, appointment, values, actor=actor, source=source)
    if occurred != last:
        record_change(
            session, appointment, EVENT_TIME_FIELD, last, occurred, actor=actor, source=source
        )
    if status is AppointmentStatus.CANCELLED and appointment.cancelled_at is None:
        appointment.cancelled_at = now
    if status is AppointmentStatus.CONFIRMED and appointment.confirmed_at is None:
        appointment.confirmed_at = now
    session.flush()
    _settle_work(session, appointment, status, moved="start_at" in changed, now=now)
    # A new visit is checked whether it arrives booked or already confirmed; a moved one too.
    check = status is AppointmentStatus.BOOKED or (status is AppointmentStatus.CONFIRMED and new)
    followups = ("verify_appointment",) if check else ()
    return Outcome("appointments", appointment.id, (*followups, "appointment_notices"))


def _settle_work(
    session: Session,
    appointment: Appointment,
    status: AppointmentStatus,
    *,
    moved: bool,
    now: datetime,
) -> None:
    """Close the work items this event settles: a cancelled visit's, and for a new or moved
    booking the patient's requests to reschedule."""
    causes = []
    if status is AppointmentStatus.CANCELLED:
        causes.append(Cleared(CloseReason.VISIT_CANCELLED, appointment_id=appointment.id))
    elif moved:
        note = f"appointment {appointment.id}"
        causes.append(
            Cleared(CloseReason.BOOKING_CONFIRMED, patient_id=appointment.patient_id, note=note)
        )
    clear_work(session, causes, now=now)


def _last_event_time(session: Session, appointment_id: int) -> datetime | None:
    """When the practice-management system made the last event applied to this appointment."""
    after = session.scalar(
        select(AuditEntry.after)
        .where(
            AuditEntry.entity == Appointment.__tablename__,
            AuditEntry.entity_id == appointment_id,
            AuditEntry.field == EVENT_TIME_FIELD,
        )
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    return None if after is None else datetime.fromisoformat(after)
