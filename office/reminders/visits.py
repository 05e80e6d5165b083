"""Reading appointments as `Visit`s: the plain rows every reminder decision and message needs.

One `Visit` holds an appointment with its patient's contact and consents, its
location and practice, its type's reminder settings, the latest coverage answer
and where it was before its last move, read in bulk and detached from any session.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import phonenumbers
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from office.clock import as_utc, chunks
from office.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    AuditEntry,
    Channel,
    CheckStatus,
    Consent,
    EligibilityCheck,
    Location,
    Patient,
)
from office.reminders.policy import (
    DEFAULT_POLICY,
    Contact,
    Facts,
    Offset,
    OffsetError,
    Policy,
    bring_insurance_card,
    parse_offsets,
    zone_for,
)
from office.render import LANGUAGES

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

__all__ = ["ACTIVE", "Visit", "load_visits", "lock_appointments", "stamp"]

ACTIVE = (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED)
"""The appointment statuses that still get reminders."""


def stamp(instant: datetime) -> int:
    """An instant in whole seconds: how an outbox row remembers the start it was made for."""
    return int(instant.timestamp())


@dataclass(frozen=True, slots=True)
class Visit:
    """One appointment and everything its messages need, read in bulk and detached."""

    appointment_id: int
    version: int
    start: datetime
    end: datetime
    status: AppointmentStatus
    patient_id: int
    first_name: str
    language: str
    practice_id: int
    practice_name: str
    mail_domain: str | None
    location_name: str
    location_address: str
    location_phone: str
    location_zone: str
    type_id: int
    type_name: str
    sensitive: bool
    send_confirmation: bool
    send_change_notices: bool
    bring_card: bool
    previous_start: datetime | None  # from the audit log: where it was before its last move
    facts: Facts
    offsets_error: str | None = None

    @property
    def zone(self) -> ZoneInfo:
        return self.facts.zone

    @property
    def contact(self) -> Contact:
        return self.facts.contact


_VISIT_ROWS = select(
    Appointment.id,
    Appointment.version,
    Appointment.start_at,
    Appointment.duration_minutes,
    Appointment.status,
    Appointment.booked_at,
    Appointment.location_id,
    Appointment.appointment_type_id,
    Appointment.patient_id,
    Patient.first_name,
    Patient.language,
    Patient.timezone,
    Patient.email,
    Patient.phone,
    Patient.confidential_communications,
    Patient.confidential_channel,
    Patient.confidential_address,
    Patient.email_undeliverable,
).join(Patient, Patient.id == Appointment.patient_id)


def load_visits(
    session: Session, appointment_ids: Iterable[int], policy: Policy = DEFAULT_POLICY
) -> dict[int, Visit]:
    """Read appointments with patient, consents, location, type, coverage and moves, in bulk."""
    visits: dict[int, Visit] = {}
    for chunk in chunks(sorted(set(appointment_ids))):
        visits.update(_load_chunk(session, chunk, policy))
    return visits


def lock_appointments(session: Session, ids: Sequence[int]) -> None:
    """Serialize planners per appointment (PostgreSQL row locks; SQLite's write lock does it)."""
    session.execute(
        select(Appointment.id)
        .where(Appointment.id.in_(ids))
        .order_by(Appointment.id)
        .with_for_update()
    ).all()


def _load_chunk(session: Session, ids: Sequence[int], policy: Policy) -> dict[int, Visit]:
    # Plain rows, not ORM objects: this runs for every appointment of every run, and
    # building the objects cost more than the queries. Few locations and types: by id.
    appointments = session.execute(_VISIT_ROWS.where(Appointment.id.in_(ids))).all()
    reach = _reach(session, {row.patient_id for row in appointments})
    locations = {
        location.id: location
        for location in session.scalars(
            select(Location)
            .where(Location.id.in_({row.location_id for row in appointments}))
            .options(joinedload(Location.practice))
        )
    }
    types = {
        visit_type.id: visit_type
        for visit_type in session.scalars(
            select(AppointmentType).where(
                AppointmentType.id.in_({row.appointment_type_id for row in appointments})
            )
        )
    }
    checks = _latest_checks(session, ids)
    moves = _last_moves(session, ids)

    visits = {}
    for appointment in appointments:  # one row: the appointment and its patient
        location = locations[appointment.location_id]
        visit_type = types[appointment.appointment_type_id]
        offsets: tuple[Offset, ...] = ()
        offsets_error = None
        try:
            offsets = (
                policy.default_offsets
                if visit_type.reminder_offsets is None
                else parse_offsets(visit_type.reminder_offsets)
            )
        except OffsetError as exc:
            offsets_error = str(exc)
        scheduled_at = appointment.booked_at
        previous_start = None
        move = moves.get(appointment.id)
        if move is not None:
            at, before, after = move
            scheduled_at = max(scheduled_at, at)
            if before and after and _same_instant(after, appointment.start_at):
                previous_start = _parse_instant(before)
        language = appointment.language if appointment.language in LANGUAGES else "en"
        facts = Facts(
            appointment_id=appointment.id,
            start=appointment.start_at,
            status=appointment.status,
            scheduled_at=scheduled_at,
            zone=zone_for(appointment.timezone, location.timezone),
            offsets=offsets,
            stop_on_confirm=visit_type.stop_on_confirm,
            contact=_contact(appointment, *reach.get(appointment.patient_id, (set(), set()))),
        )
        visits[appointment.id] = Visit(
            appointment_id=appointment.id,
            version=appointment.version,
            start=appointment.start_at,
            end=appointment.start_at + timedelta(minutes=appointment.duration_minutes),
            status=appointment.status,
            patient_id=appointment.patient_id,
            first_name=appointment.first_name,
            language=language,
            practice_id=location.practice.id,
            practice_name=location.practice.name,
            mail_domain=location.practice.email_domain,
            location_name=location.name,
            location_address=_address(location),
            location_phone=_phone(location.phone or location.practice.phone),
            location_zone=location.timezone,
            type_id=visit_type.id,
            type_name=visit_type.name,
            sensitive=visit_type.sensitive,
            send_confirmation=visit_type.send_confirmation,
            send_change_notices=visit_type.send_change_notices,
            bring_card=bring_insurance_card(checks.get(appointment.id)),
            previous_start=previous_start,
            facts=facts,
            offsets_error=offsets_error,
        )
    return visits


def _reach(session: Session, patient_ids: set[int]) -> dict[int, tuple[set[Channel], set[Channel]]]:
    """Per patient: the channels they consented to, and those they opted out of."""
    reach: dict[int, tuple[set[Channel], set[Channel]]] = {}
    for patient_id, channel, granted, opted_out_at in session.execute(
        select(Consent.patient_id, Consent.channel, Consent.granted, Consent.opted_out_at).where(
            Consent.patient_id.in_(patient_ids)
        )
    ):
        usable, opted_out = reach.setdefault(patient_id, (set(), set()))
        if opted_out_at is not None:
            opted_out.add(channel)
        elif granted:
            usable.add(channel)
    return reach


def _latest_checks(session: Session, ids: Sequence[int]) -> dict[int, CheckStatus]:
    """Each appointment's latest eligibility answer."""
    checks: dict[int, CheckStatus] = {}
    for appointment_id, status in session.execute(
        select(EligibilityCheck.appointment_id, EligibilityCheck.status)
        .where(
            EligibilityCheck.appointment_id.in_(ids),
            EligibilityCheck.status != CheckStatus.PENDING,
        )
        .order_by(
            func.coalesce(EligibilityCheck.checked_at, EligibilityCheck.created_at),
            EligibilityCheck.id,
        )
    ):
        if appointment_id is not None:
            checks[appointment_id] = status  # the latest answer wins
    return checks


def _last_moves(
    session: Session, ids: Sequence[int]
) -> dict[int, tuple[datetime, str | None, str | None]]:
    """Each appointment's last change of start, from the audit log: when, before, after."""
    moves: dict[int, tuple[datetime, str | None, str | None]] = {}
    for entity_id, at, before, after in session.execute(
        select(AuditEntry.entity_id, AuditEntry.at, AuditEntry.before, AuditEntry.after)
        .where(
            AuditEntry.entity == "appointments",  # the audit log names tables
            AuditEntry.field == "start_at",
            AuditEntry.entity_id.in_(ids),
        )
        .order_by(AuditEntry.at, AuditEntry.id)
    ):
        moves[entity_id] = (at, before, after)
    return moves


def _contact(row: Any, usable: set[Channel], opted_out: set[Channel]) -> Contact:
    """How the patient of a `_VISIT_ROWS` row may be reached."""
    return Contact(
        email=row.email,
        phone=row.phone,
        consented=frozenset(usable),
        opted_out=frozenset(opted_out),
        confidential=row.confidential_communications,
        confidential_channel=row.confidential_channel,
        confidential_address=row.confidential_address,
        email_undeliverable=row.email_undeliverable,
    )


@functools.lru_cache(maxsize=256)
def _phone(raw: str | None) -> str:
    """A clinic's number as patients read it, "(312) 555-0100"; a handful per practice."""
    if not raw:
        return ""
    try:
        parsed = phonenumbers.parse(raw, "US")
    except phonenumbers.NumberParseException:
        return raw
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


def _address(location: Location) -> str:
    region = " ".join(part for part in (location.state, location.postal_code) if part)
    parts = (location.address_line1, location.address_line2, location.city, region)
    return ", ".join(part for part in parts if part)


def _parse_instant(text: str) -> datetime | None:
    """An audit log value as a UTC instant (values written without an offset are UTC)."""
    try:
        return as_utc(datetime.fromisoformat(text), "UTC")
    except ValueError:
        return None


def _same_instant(text: str, instant: datetime) -> bool:
    parsed = _parse_instant(text)
    return parsed is not None and stamp(parsed) == stamp(instant)
