"""The office's data model, designed for all five flows.

Catalogues (practice, locations, providers, payers, appointment types), people
(patients and their coverages, staff), appointments, and the four ledgers every
flow writes: inbox, outbox, audit and the work queue. Instants are stored as UTC
and come back timezone-aware on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates
from sqlalchemy.types import TypeDecorator

from office.contacts import check_email, check_phone, email_problem

__all__ = [
    "Appointment",
    "AppointmentStatus",
    "AppointmentType",
    "AuditEntry",
    "Base",
    "Channel",
    "CheckStatus",
    "Consent",
    "Coverage",
    "DistinctPatients",
    "EligibilityCheck",
    "Followup",
    "FollowupStatus",
    "InboxItem",
    "InboxStatus",
    "LinkUse",
    "Location",
    "LoginThrottle",
    "MailAckSender",
    "MailMessage",
    "MailStatus",
    "MailboxState",
    "OutboxItem",
    "OutboxStatus",
    "Patient",
    "PatientAccess",
    "PatientIdentifier",
    "Payer",
    "Practice",
    "Provider",
    "RecordReview",
    "ReviewStatus",
    "Staff",
    "StaffLogin",
    "StaffLoginLink",
    "StaffSession",
    "StaffStatus",
    "WorkItem",
    "WorkItemVisit",
    "WorkPriority",
    "WorkStatus",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


def utc_instant(value: datetime) -> datetime:
    """What a `UTCDateTime` column stores: an aware instant in UTC (a naive one is refused)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given where a UTC instant is required")
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC instant on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else utc_instant(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _enum(kind: type[StrEnum]) -> Enum:
    return Enum(
        kind,
        native_enum=False,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


# Stable constraint names keep migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
        Decimal: Numeric(10, 2),
    }


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    VOICE = "voice"
    FORWARD = "forward"


class AppointmentStatus(StrEnum):
    BOOKED = "booked"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"


class StaffStatus(StrEnum):
    PENDING = "pending"  # hired, not started
    ACTIVE = "active"
    LEAVE = "leave"
    INACTIVE = "inactive"


class InboxStatus(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    REJECTED = "rejected"


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    WITHDRAWN = "withdrawn"  # the appointment was cancelled or moved before sending
    SKIPPED = "skipped"  # decided not to send (no window left, no consent); reason in error


class WorkStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    DISMISSED = "dismissed"


class WorkPriority(StrEnum):
    """How much a work item matters to the visit it is about."""

    BLOCKER = "blocker"  # the visit cannot go ahead as booked until it is fixed
    ACTION = "action"  # needs action before the visit
    INFO = "info"  # for information


# --- practice and catalogues -------------------------------------------------


class Practice(Base):
    __tablename__ = "practices"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    email_domain: Mapped[str | None] = mapped_column(String(200))

    locations: Mapped[list[Location]] = relationship(back_populates="practice")


class Location(Base):
    __tablename__ = "locations"

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"))
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))  # IANA zone
    phone: Mapped[str | None] = mapped_column(String(20))
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(2))
    postal_code: Mapped[str | None] = mapped_column(String(10))
    # {"mon": ["08:00", "17:00"], ...}; a day left out is closed.
    office_hours: Mapped[dict[str, Any]] = mapped_column(default=dict)

    practice: Mapped[Practice] = relationship(back_populates="locations")


class Provider(Base):
    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[int] = mapped_column(ForeignKey("practices.id"))
    npi: Mapped[str] = mapped_column(String(10), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    credential: Mapped[str | None] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(default=True)


class Payer(Base):
    __tablename__ = "payers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    payer_code: Mapped[str] = mapped_column(String(80), unique=True)  # X12 payer identifier
    adapter: Mapped[str] = mapped_column(String(40), default="x12")
    adapter_settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    concurrency_limit: Mapped[int | None] = mapped_column()
    rate_per_second: Mapped[float | None] = mapped_column()


class AppointmentType(Base):
    __tablename__ = "appointment_types"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    duration_minutes: Mapped[int] = mapped_column(default=30)
    service_type_code: Mapped[str] = mapped_column(String(3), default="30")
    # Sensitive visits (behavioral health, ...) get neutral wording in reminders.
    sensitive: Mapped[bool] = mapped_column(default=False)
    # [{"hours": 72, "channels": ["email"]}, ...]; None means the practice default.
    reminder_offsets: Mapped[list[Any] | None] = mapped_column()
    stop_on_confirm: Mapped[bool] = mapped_column(default=True)
    send_confirmation: Mapped[bool] = mapped_column(default=True)
    send_change_notices: Mapped[bool] = mapped_column(default=True)


# --- patients -----------------------------------------------------------------


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    mrn: Mapped[str] = mapped_column(String(40), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    middle_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    suffix: Mapped[str | None] = mapped_column(String(20))
    date_of_birth: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))  # M, F, U (X12 DMG03)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(16))  # E.164
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str | None] = mapped_column(String(2))
    postal_code: Mapped[str | None] = mapped_column(String(10))
    language: Mapped[str] = mapped_column(String(8), default="en")
    timezone: Mapped[str | None] = mapped_column(String(64))  # else the location's
    # 45 CFR 164.522(b): messages only on the approved channel and address.
    confidential_communications: Mapped[bool] = mapped_column(default=False)
    confidential_channel: Mapped[Channel | None] = mapped_column(_enum(Channel))
    confidential_address: Mapped[str | None] = mapped_column(String(254))
    email_undeliverable: Mapped[bool] = mapped_column(default=False)
    # Set when a person approved merging this record into another (migration 0009).
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(default=1)

    consents: Mapped[list[Consent]] = relationship(back_populates="patient")
    coverages: Mapped[list[Coverage]] = relationship(back_populates="patient")

    # Matching an incoming record starts from the patients born that day.
    __table_args__ = (Index("ix_patients_date_of_birth", "date_of_birth"),)

    __mapper_args__ = {"version_id_col": version}

    @validates("email", "phone", "confidential_address")
    def _one_recipient(self, key: str, value: str | None) -> str | None:
        """Exactly one plain address or E.164 number, or nothing (`office.contacts`)."""
        if value is None:
            return None
        if key == "email":
            return check_email(value)
        if key == "phone":
            return check_phone(value)
        # The approved address is an email or a number, whichever channel was approved.
        if email_problem(value) is None:
            return value
        return check_phone(value)


class Consent(Base):
    """Consent to be contacted on one channel, and its withdrawal (an opt-out)."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("patient_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    granted: Mapped[bool] = mapped_column(default=True)
    source: Mapped[str] = mapped_column(String(80))  # "intake form", "portal", "phone call"
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    opted_out_at: Mapped[datetime | None] = mapped_column()
    opt_out_source: Mapped[str | None] = mapped_column(String(80))

    patient: Mapped[Patient] = relationship(back_populates="consents")

    @property
    def usable(self) -> bool:
        return self.granted and self.opted_out_at is None


class Coverage(Base):
    __tablename__ = "coverages"
    __table_args__ = (Index("ix_coverages_patient_rank", "patient_id", "rank"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"))
    member_id: Mapped[str] = mapped_column(String(80))
    group_number: Mapped[str | None] = mapped_column(String(80))
    plan_name: Mapped[str | None] = mapped_column(String(200))
    rank: Mapped[int] = mapped_column(default=1)  # 1 primary, 2 secondary, 3 tertiary
    effective_from: Mapped[date | None] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    # X12 INS02 / PAT01: 18 self, 01 spouse, 19 child, G8 other.
    relationship_code: Mapped[str] = mapped_column(String(2), default="18")
    subscriber_first_name: Mapped[str | None] = mapped_column(String(100))
    subscriber_last_name: Mapped[str | None] = mapped_column(String(100))
    subscriber_date_of_birth: Mapped[date | None] = mapped_column(Date)
    subscriber_sex: Mapped[str | None] = mapped_column(String(1))
    copay_on_file: Mapped[Decimal | None] = mapped_column()
    active: Mapped[bool] = mapped_column(default=True)
    # Optimistic concurrency for record updates (migration 0009).
    version: Mapped[int] = mapped_column(default=1, server_default=text("1"))

    patient: Mapped[Patient] = relationship(back_populates="coverages")
    payer: Mapped[Payer] = relationship()

    __mapper_args__ = {"version_id_col": version}

    @property
    def patient_is_subscriber(self) -> bool:
        return self.relationship_code == "18"


# --- appointments -------------------------------------------------------------


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (Index("ix_appointments_start_status", "start_at", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(80), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    appointment_type_id: Mapped[int] = mapped_column(ForeignKey("appointment_types.id"))
    start_at: Mapped[datetime] = mapped_column()  # UTC instant
    duration_minutes: Mapped[int] = mapped_column(default=30)
    status: Mapped[AppointmentStatus] = mapped_column(
        _enum(AppointmentStatus), default=AppointmentStatus.BOOKED
    )
    booked_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column()
    cancelled_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Increases on every change: calendar SEQUENCE, outbox keys, optimistic locking.
    version: Mapped[int] = mapped_column(default=1)

    patient: Mapped[Patient] = relationship()
    provider: Mapped[Provider] = relationship()
    location: Mapped[Location] = relationship()
    appointment_type: Mapped[AppointmentType] = relationship()

    __mapper_args__ = {"version_id_col": version}


# --- staff ----------------------------------------------------------------------


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254), unique=True)
    role: Mapped[str] = mapped_column(String(40))  # front_desk, billing, office_manager, ...
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[StaffStatus] = mapped_column(_enum(StaffStatus), default=StaffStatus.ACTIVE)
    # Leads their role's work queue: gets its morning digest (added by migration 0005).
    role_lead: Mapped[bool] = mapped_column(default=False)

    manager: Mapped[Staff | None] = relationship(remote_side=[id])


# --- the four ledgers -----------------------------------------------------------


class InboxItem(Base):
    """Every inbound payload, stored raw before anything acts on it."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("source", "idempotency_key", name="uq_inbox_source_key"),
        Index("ix_inbox_status_received", "status", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(64))  # "webhook:bookings", "file:roster.csv"
    idempotency_key: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str | None] = mapped_column(String(120))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[InboxStatus] = mapped_column(_enum(InboxStatus), default=InboxStatus.PENDING)
    reason: Mapped[str | None] = mapped_column(Text)  # why it was rejected
    attempts: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    processed_at: Mapped[datetime | None] = mapped_column()
    flow_run_id: Mapped[str | None] = mapped_column(String(40))


class OutboxItem(Base):
    """Every outbound message; the unique key is what makes a send happen once."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_due", "status", "due_at"),
        # A bounce names its message, or the address it failed for (office.mail.bounces).
        Index("ix_outbox_message_id", "message_id"),
        Index("ix_outbox_recipient_status", "recipient", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    channel: Mapped[Channel] = mapped_column(_enum(Channel))
    kind: Mapped[str] = mapped_column(String(40))  # reminder, confirmation, ack, forward, ...
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"), index=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    recipient: Mapped[str] = mapped_column(String(254))
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    message_id: Mapped[str | None] = mapped_column(String(200))  # derived from this row
    provider_message_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)  # safe metadata: offset, lang
    due_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AuditEntry(Base):
    """One field of one record changed: before, after, by whom, from where (164.312(b))."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(40))  # table name
    entity_id: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(64))
    before: Mapped[str | None] = mapped_column(Text)
    after: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(80))  # "staff:4", "flow:reminders", "patient-link"
    source: Mapped[str] = mapped_column(String(80))  # "inbox:17", "cli", "web"
    at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkItem(Base):
    """Something a person must do (or, for a note kind, know): the office's work queue.

    The subject (`entity`, `entity_id`) is what the problem is about: a visit, a patient,
    or another record. At most one open item per problem and subject (`dedupe_key`, a
    partial unique index over open rows); one closed or dismissed stays as history, and
    the problem coming back opens a new item. The visits it affects are `WorkItemVisit`s.
    """

    __tablename__ = "work_items"
    __table_args__ = (
        # Covers the board's counts and its sort: the open rows are read from the index alone.
        Index("ix_work_items_queue", "status", "kind", "priority", "role", "due_at", "assignee_id"),
        Index(
            "uq_work_items_open_key",
            "dedupe_key",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_work_items_patient_status", "patient_id", "status"),
        Index("ix_work_items_closed_at", "closed_at"),
        Index("ix_work_items_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int] = mapped_column(Integer)
    dedupe_key: Mapped[str] = mapped_column(String(200))  # kind:entity:entity_id
    summary: Mapped[str] = mapped_column(String(300))  # safe to show: no PHI
    priority: Mapped[WorkPriority] = mapped_column(_enum(WorkPriority), default=WorkPriority.ACTION)
    role: Mapped[str] = mapped_column(String(40))
    # The patient the subject belongs to, for the board's name and grouping (0005).
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    due_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[WorkStatus] = mapped_column(_enum(WorkStatus), default=WorkStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_by: Mapped[str | None] = mapped_column(String(80))
    closed_at: Mapped[datetime | None] = mapped_column()
    # Why it closed: done, dismissed, or the cause that cleared (check_clean, visit_past, ...).
    close_reason: Mapped[str | None] = mapped_column(String(40))
    close_note: Mapped[str | None] = mapped_column(Text)  # a person's note or dismissal reason
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)  # codes and ids only


class WorkItemVisit(Base):
    """A visit a work item affects; cleared (not deleted) when the problem no longer does."""

    __tablename__ = "work_item_visits"
    __table_args__ = (Index("ix_work_item_visits_appointment", "appointment_id"),)

    work_item_id: Mapped[int] = mapped_column(ForeignKey("work_items.id"), primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    cleared_at: Mapped[datetime | None] = mapped_column()
    cleared_reason: Mapped[str | None] = mapped_column(String(40))


# --- eligibility (added by migration 0002) --------------------------------------------


class CheckStatus(StrEnum):
    PENDING = "pending"  # recorded, not answered yet (a retried batch re-sends these)
    ACTIVE = "active"
    INACTIVE = "inactive"
    UNVERIFIED = "unverified"
    ERROR = "error"  # the payer's answer could not be read; reason in error


class EligibilityCheck(Base):
    """One eligibility inquiry and its answer, stored before anything acts on it."""

    __tablename__ = "eligibility_checks"
    __table_args__ = (
        Index("ix_eligibility_checks_coverage_dos", "coverage_id", "date_of_service"),
        Index("ix_eligibility_checks_appointment", "appointment_id", "checked_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    trace: Mapped[str] = mapped_column(String(40), unique=True)  # our TRN02
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"))
    coverage_id: Mapped[int] = mapped_column(ForeignKey("coverages.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"))
    date_of_service: Mapped[date] = mapped_column(Date)
    service_type: Mapped[str] = mapped_column(String(3))
    status: Mapped[CheckStatus] = mapped_column(_enum(CheckStatus), default=CheckStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    run_key: Mapped[str | None] = mapped_column(String(80))  # the batch that asked
    request_summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column()  # normalized result JSON
    raw: Mapped[str | None] = mapped_column(Text)  # raw 271 or JSON response
    raw_format: Mapped[str | None] = mapped_column(String(8))
    error: Mapped[str | None] = mapped_column(Text)
    copay: Mapped[Decimal | None] = mapped_column()
    deductible_remaining: Mapped[Decimal | None] = mapped_column()
    plan_end: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    checked_at: Mapped[datetime | None] = mapped_column()


# --- patient links (added by migration 0002) ----------------------------------------------


class LinkUse(Base):
    """A confirm/cancel/reschedule link that was answered; each token works once."""

    __tablename__ = "link_uses"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(20))
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id"))
    used_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- inbound mail (added by migration 0004) --------------------------------------------------


class MailStatus(StrEnum):
    STORED = "stored"  # raw bytes committed; not routed yet
    ROUTED = "routed"
    QUARANTINED = "quarantined"  # unreadable; kept with the reason, for a person


class MailMessage(Base):
    """One inbound message, stored raw before anything acts on it, and where it was routed.

    One row per (mailbox, dedupe key): the Message-ID, or a hash of stable headers
    and the body when there is none; the same Message-ID in two mailboxes routes in each.
    """

    __tablename__ = "mail_messages"
    __table_args__ = (
        UniqueConstraint("mailbox", "dedupe_key", name="uq_mail_messages_mailbox_key"),
        Index("ix_mail_messages_status_mailbox", "status", "mailbox"),
        Index("ix_mail_messages_queue_routed", "queue", "routed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(40))
    dedupe_key: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str | None] = mapped_column(String(250))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(Integer)
    # Where the server holds it ("validity/uid", a Maildir key) and whether it was moved
    # or flagged there after routing.
    server_ref: Mapped[str | None] = mapped_column(String(200))
    server_done: Mapped[bool] = mapped_column(default=False)
    # False for a backlog import: nothing stored by it is ever acknowledged.
    may_acknowledge: Mapped[bool] = mapped_column(default=True)
    status: Mapped[MailStatus] = mapped_column(_enum(MailStatus), default=MailStatus.STORED)
    reason: Mapped[str | None] = mapped_column(Text)  # why quarantined; never content
    sender: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str | None] = mapped_column(String(300))
    sent_at: Mapped[datetime | None] = mapped_column()
    category: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(300))  # a role, staff:<email>, or spam
    rule: Mapped[str | None] = mapped_column(String(80))  # the rule that chose the queue
    decision: Mapped[dict[str, Any]] = mapped_column(default=dict)  # rules matched, actions
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    bounced_outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))
    stored_at: Mapped[datetime] = mapped_column(default=utcnow)
    routed_at: Mapped[datetime | None] = mapped_column()


class MailboxState(Base):
    """How far an IMAP mailbox has been read: UIDVALIDITY and the last UID stored."""

    __tablename__ = "mailbox_states"

    mailbox: Mapped[str] = mapped_column(String(40), primary_key=True)
    uid_validity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MailAckSender(Base):
    """The last acknowledgement each sender got: at most one per sender per period."""

    __tablename__ = "mail_ack_senders"

    address: Mapped[str] = mapped_column(String(254), primary_key=True)
    last_ack_at: Mapped[datetime] = mapped_column()
    mail_id: Mapped[int] = mapped_column(ForeignKey("mail_messages.id"))


# --- the staff board: logins, sessions, throttling, access records (migration 0006) ---------


class StaffLogin(Base):
    """One person's sign-in to the staff board; the password is kept only as an argon2 hash."""

    __tablename__ = "staff_logins"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # lower case
    role: Mapped[str] = mapped_column(String(40))  # a work-item role; office_manager sees all
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    password_hash: Mapped[str | None] = mapped_column(String(200))  # None until first set
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_set_at: Mapped[datetime | None] = mapped_column()


class StaffLoginLink(Base):
    """A one-time link that sets a login's password: stored hashed, expiring, used once."""

    __tablename__ = "staff_login_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    login_id: Mapped[int] = mapped_column(ForeignKey("staff_logins.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()


class StaffSession(Base):
    """A signed-in browser: the cookie's token is stored hashed, with when it was last used."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    login_id: Mapped[int] = mapped_column(ForeignKey("staff_logins.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client: Mapped[str | None] = mapped_column(String(64))  # the address it signed in from
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()  # the absolute lifetime, whatever the use


class LoginThrottle(Base):
    """Failed sign-ins counted per account or client address, and the lockout they earned.

    `key` is a SHA-256 of the email typed or the address, so a typo never sits in the table.
    """

    __tablename__ = "staff_login_throttles"

    scope: Mapped[str] = mapped_column(String(8), primary_key=True)  # "account" or "client"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime] = mapped_column()
    locked_until: Mapped[datetime | None] = mapped_column()


class PatientAccess(Base):
    """Who saw which patient's data on the staff board, and when (45 CFR 164.312(b))."""

    __tablename__ = "patient_access"
    __table_args__ = (Index("ix_patient_access_patient_at", "patient_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    login_id: Mapped[int] = mapped_column(ForeignKey("staff_logins.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id"))
    page: Mapped[str] = mapped_column(String(40))  # "today", "visit", ...
    client: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)


# --- staff onboarding and offboarding checklists (migration 0008) ------------------------------


class ChecklistKind(StrEnum):
    ONBOARDING = "onboarding"
    OFFBOARDING = "offboarding"


class ChecklistStatus(StrEnum):
    OPEN = "open"
    DONE = "done"  # every item it started with is done or skipped
    WITHDRAWN = "withdrawn"  # the person left before it was finished


class ItemStatus(StrEnum):
    OPEN = "open"
    DONE = "done"  # completed with its evidence (an access revoked: its owner confirmed)
    SKIPPED = "skipped"  # a person said it does not apply; never one required by law
    WITHDRAWN = "withdrawn"  # the person left before it was done


class ClosedDay(Base):
    """A day the practice is closed besides the US federal holidays: not a business day."""

    __tablename__ = "practice_closed_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    note: Mapped[str | None] = mapped_column(String(200))
    added_by: Mapped[str] = mapped_column(String(80))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class Checklist(Base):
    """One person's onboarding (from their start date) or offboarding (to their last day).

    Built from a role template (`template`, at `template_version`: editing a template
    changes future checklists only, since the items are copied here).
    """

    __tablename__ = "checklists"
    __table_args__ = (
        UniqueConstraint("staff_id", "kind", "anchor_on", name="uq_checklists_staff_kind_anchor"),
        Index("ix_checklists_status_kind", "status", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), index=True)
    kind: Mapped[ChecklistKind] = mapped_column(_enum(ChecklistKind))
    template: Mapped[str] = mapped_column(String(40))
    template_version: Mapped[str] = mapped_column(String(64))
    anchor_on: Mapped[date] = mapped_column(Date)  # start date, or the last day
    status: Mapped[ChecklistStatus] = mapped_column(
        _enum(ChecklistStatus), default=ChecklistStatus.OPEN
    )
    # Offboarding: "record" mirrors the accesses its onboarding granted; "template" takes the
    # role template's, for someone who joined before officeflows kept checklists.
    basis: Mapped[str] = mapped_column(String(16), default="record")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(80))
    closed_at: Mapped[datetime | None] = mapped_column()


class ChecklistItem(Base):
    """One thing someone must do for a person's start or departure, and its evidence."""

    __tablename__ = "checklist_items"
    __table_args__ = (
        UniqueConstraint("checklist_id", "key", "occurrence", name="uq_checklist_items_key"),
        Index("ix_checklist_items_status_due", "status", "due_on"),
        Index("ix_checklist_items_owner_status", "owner_staff_id", "status"),
        Index("ix_checklist_items_staff_status", "staff_id", "status"),
        Index("ix_checklist_items_renewal_of", "renewal_of_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    checklist_id: Mapped[int] = mapped_column(ForeignKey("checklists.id"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))  # whose checklist
    key: Mapped[str] = mapped_column(String(60))
    occurrence: Mapped[int] = mapped_column(default=1)  # 2, 3, ...: a recurring item renewed
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(40))  # as in the template: new_hire, manager, a role
    owner_role: Mapped[str | None] = mapped_column(String(40))  # its holders may complete it
    owner_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    due_on: Mapped[date] = mapped_column(Date)
    depends_on: Mapped[list[Any]] = mapped_column(default=list)  # keys in the same checklist
    evidence_required: Mapped[list[Any]] = mapped_column(default=list)
    required_by_law: Mapped[bool] = mapped_column(default=False)
    access: Mapped[str | None] = mapped_column(String(60))  # what doing it grants (or revokes)
    recur_months: Mapped[int | None] = mapped_column()
    status: Mapped[ItemStatus] = mapped_column(_enum(ItemStatus), default=ItemStatus.OPEN)
    released_on: Mapped[date | None] = mapped_column(Date)  # its last dependency closed
    reminded_on: Mapped[date | None] = mapped_column(Date)
    escalation_level: Mapped[int] = mapped_column(default=0)  # 1 owner, 2 manager, 3 officer
    escalated_on: Mapped[date | None] = mapped_column(Date)
    completed_on: Mapped[date | None] = mapped_column(Date)
    completed_at: Mapped[datetime | None] = mapped_column()
    completed_by: Mapped[str | None] = mapped_column(String(80))
    completed_via: Mapped[str | None] = mapped_column(String(16))  # board, link, cli
    evidence: Mapped[dict[str, Any]] = mapped_column(default=dict)  # no file bytes: a path, hash
    expires_on: Mapped[date | None] = mapped_column(Date)
    renewal_of_id: Mapped[int | None] = mapped_column(ForeignKey("checklist_items.id"))
    revokes_item_id: Mapped[int | None] = mapped_column(ForeignKey("checklist_items.id"))
    closed_reason: Mapped[str | None] = mapped_column(Text)  # why skipped or withdrawn
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


# --- records in: sender ids, reviews, duplicate decisions, follow-ups (migration 0009) ------


class PatientIdentifier(Base):
    """A sending system's id for a patient (HL7 PID-3, a FHIR identifier, an export's id)."""

    __tablename__ = "patient_identifiers"
    __table_args__ = (UniqueConstraint("system", "value", name="uq_patient_identifiers_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    system: Mapped[str] = mapped_column(String(80))
    value: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class RecordReview(Base):
    """A record change held for a person: a possible duplicate, a patient's own edit of a
    reviewed field, a stale update, a merge. `proposed` is the normalized update itself
    (office.records.updates.to_json), `current` the stored values it would change."""

    __tablename__ = "record_reviews"
    __table_args__ = (Index("ix_record_reviews_status_kind", "status", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[ReviewStatus] = mapped_column(_enum(ReviewStatus), default=ReviewStatus.PENDING)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"))
    source: Mapped[str] = mapped_column(String(80))  # "inbox:17"
    actor: Mapped[str] = mapped_column(String(80))  # who sent it
    submitter: Mapped[str] = mapped_column(String(16))  # system, patient, staff
    proposed: Mapped[dict[str, Any]] = mapped_column(default=dict)
    current: Mapped[dict[str, Any]] = mapped_column(default=dict)
    fields: Mapped[list[Any]] = mapped_column(default=list)  # the fields it would change
    candidates: Mapped[list[Any]] = mapped_column(default=list)  # match scores, per patient
    base_version: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(80))
    decided_at: Mapped[datetime | None] = mapped_column()
    decision_note: Mapped[str | None] = mapped_column(Text)
    result_patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))


class DistinctPatients(Base):
    """A person's "not a duplicate" decision about two patients (lower id first)."""

    __tablename__ = "distinct_patients"

    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    other_patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), primary_key=True)
    decided_by: Mapped[str] = mapped_column(String(80))
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    review_id: Mapped[int | None] = mapped_column(ForeignKey("record_reviews.id"))


class FollowupStatus(StrEnum):
    PENDING = "pending"  # recorded with its inbox item; not started
    STARTED = "started"  # handed to Prefect as its own run (run_id)
    DONE = "done"
    FAILED = "failed"  # the last attempt failed; retried at next_attempt_at
    GAVE_UP = "gave_up"  # out of attempts; a work item asks a person


class Followup(Base):
    """What must run after an inbound payload changed a record, recorded with it before
    anything runs, so a failure is retried rather than forgotten."""

    __tablename__ = "followups"
    __table_args__ = (
        UniqueConstraint("inbox_id", "name", "entity_id", name="uq_followups_inbox_name_entity"),
        Index("ix_followups_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    inbox_id: Mapped[int | None] = mapped_column(ForeignKey("inbox.id"))
    name: Mapped[str] = mapped_column(String(40))  # verify_appointment, appointment_notices
    entity_id: Mapped[int] = mapped_column(Integer)  # the appointment it runs for
    status: Mapped[FollowupStatus] = mapped_column(
        _enum(FollowupStatus), default=FollowupStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    # `attempts` when the inbox item was last replayed: a replay gives a fresh budget of
    # attempts while the attempt numbers, and with them the runs' keys, go on counting.
    attempts_at_replay: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    run_id: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(String(300))  # the failure's kind, no PHI
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
