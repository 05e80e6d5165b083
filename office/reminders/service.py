"""The reminder outbox: decide what is due, record it once, send it once, keep every outcome.

A message's life, all in the `outbox` table::

    (planned) --due--> pending --claim--> sending --> sent | failed | unknown
                 \\--> skipped (reason)     \\--> pending (deferred: 4xx, retried later)
    pending --appointment moved or cancelled--> withdrawn

Exactly once, and what SIGKILL can do to it. Each message is built first, then
claimed (pending -> sending) in a short transaction, handed to the transport,
and recorded in the next short transaction, which also claims the message
after it. So a process killed at any point leaves at most one row in "sending"
per running batch: the message on the wire, which may or may not have reached
the server, or the one just handed over whose outcome was not yet written.
Nothing else is ever in doubt. The next run finds that row once its lease has
run out and settles it by transport:

- a transport that is idempotent on the message's id (the file mailer and file
  SMS overwrite `<id>.eml` / `<key>.json`) gets it again, with the same
  Message-ID, so it is delivered exactly once;
- SMTP and Twilio cannot be asked whether it arrived, so the row becomes
  "unknown" with a `reminder_delivery_unknown` work item, and is never resent
  blindly: it was delivered at most once, and a person decides.

Every other due message is delivered exactly once. Two runs at once cannot both
send a row: the claim is a conditional UPDATE only one of them wins.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formataddr
from typing import TYPE_CHECKING, Any, Literal

import phonenumbers
from sqlalchemy import Connection, Engine, Table, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload, sessionmaker

from office.contracts.mail import (
    MailAmbiguousError,
    Mailer,
    MailPermanentError,
    MailRecipientRejected,
    MailRetryableError,
    Wire,
    to_wire,
)
from office.contracts.sms import SmsAmbiguousError, SmsRejected, SmsRetryableError, SmsSender
from office.db import transaction
from office.ics import appointment_uid, build_ics
from office.ledgers import apply_changes, finish_outbox, open_work_item
from office.messages import build_email, message_id_for, sms_fits
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
    OutboxItem,
    OutboxStatus,
    Patient,
)
from office.reminders.links import link_urls
from office.reminders.policy import (
    Contact,
    Facts,
    Offset,
    OffsetError,
    Planned,
    Policy,
    bring_insurance_card,
    due_now,
    notice_route,
    parse_offsets,
    plan_reminders,
    reachable,
    route,
    visit_label,
    zone_for,
)
from office.reminders.prebuild import AHEAD_MIN, EmailJob, Prebuilt
from office.render import LANGUAGES, render

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from office.settings import Settings

__all__ = [
    "ACTOR",
    "DEFAULT_LEASE",
    "KINDS",
    "Channels",
    "ChannelsFactory",
    "DeliveryDeferred",
    "PreviewLine",
    "Tally",
    "Visit",
    "compose_email",
    "compose_sms",
    "due_outbox_ids",
    "enqueue_due",
    "enqueue_notices",
    "load_visits",
    "mask_address",
    "outbox_key",
    "preview",
    "reconcile_interrupted",
    "run_once",
    "send_batch",
    "withdraw_pending",
]

Kind = Literal["reminder", "confirmation", "cancellation", "reschedule"]
KINDS: tuple[Kind, ...] = ("reminder", "confirmation", "cancellation", "reschedule")
NOTICE_OFFSET = "0"
ACTOR = "flow:reminders"
DEFAULT_LEASE = timedelta(minutes=10)
DEFAULT_POLICY = Policy()
_ACTIVE = (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED)
_TOLD = (OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.SENT, OutboxStatus.UNKNOWN)
_CHUNK = 500
# The outbox is shared by every flow: ours are the appointment messages of these kinds.
_OURS = OutboxItem.kind.in_(KINDS) & OutboxItem.appointment_id.is_not(None)


class DeliveryDeferred(Exception):
    """The transport kept refusing for now (connect failures, 4xx); the rest stays pending."""


def outbox_key(appointment_id: int, version: int, kind: str, offset: str, channel: str) -> str:
    """The unique key of one message: appointment, kind, offset, channel and version."""
    return f"appt:{appointment_id}:v{version}:{kind}:{offset}:{channel}"


def _stamp(instant: datetime) -> int:
    return int(instant.timestamp())


# --- counting ---------------------------------------------------------------------------


@dataclass
class Tally:
    """Counts per (kind, channel, outcome): the artifact's rows and the flow's summary."""

    cells: Counter[tuple[str, str, str]] = field(default_factory=Counter)

    def add(self, kind: str, channel: str, outcome: str, n: int = 1) -> None:
        self.cells[(kind, channel, outcome)] += n

    def merge(self, other: Tally | dict[str, int]) -> Tally:
        if isinstance(other, Tally):
            self.cells.update(other.cells)
        else:
            for name, n in other.items():
                kind, channel, outcome = name.split("/")
                self.cells[(kind, channel, outcome)] += n
        return self

    def to_dict(self) -> dict[str, int]:
        """`kind/channel/outcome` -> count; what tasks hand back to the flow."""
        return {"/".join(cell): n for cell, n in sorted(self.cells.items())}

    def total(self, outcome: str) -> int:
        return sum(n for (_, _, seen), n in self.cells.items() if seen == outcome)

    def flat(self) -> dict[str, int]:
        """`sent_email`, `sent_sms`, sent per kind, and every other outcome in total."""
        out: Counter[str] = Counter()
        for (kind, channel, outcome), n in self.cells.items():
            if outcome == "sent":
                out[f"sent_{channel}"] += n
                out[kind] += n
            else:
                out[outcome] += n
        for name in ("sent_email", "sent_sms", "skipped"):
            out.setdefault(name, 0)
        return dict(sorted(out.items()))

    def rows(self) -> list[dict[str, Any]]:
        """One row per kind, channel and outcome: no PHI, fit for an artifact."""
        return [
            {"kind": kind, "channel": channel, "outcome": outcome, "count": n}
            for (kind, channel, outcome), n in sorted(self.cells.items())
        ]


# --- what one appointment's messages need ---------------------------------------------


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


def load_visits(
    session: Session, appointment_ids: Iterable[int], policy: Policy = DEFAULT_POLICY
) -> dict[int, Visit]:
    """Read appointments with patient, consents, location, type, coverage and moves, in bulk."""
    ids = sorted(set(appointment_ids))
    visits: dict[int, Visit] = {}
    for chunk in _chunks(ids, _CHUNK):
        visits.update(_load_chunk(session, chunk, policy))
    return visits


def _load_chunk(session: Session, ids: Sequence[int], policy: Policy) -> dict[int, Visit]:
    # Plain rows, not ORM objects: this runs for every appointment of every run, and
    # building the objects cost more than the queries. Few locations and types: by id.
    appointments = session.execute(_VISIT_ROWS.where(Appointment.id.in_(ids))).all()
    reach: dict[int, tuple[set[Channel], set[Channel]]] = {}  # usable, opted out
    for patient_id, channel, granted, opted_out_at in session.execute(
        select(Consent.patient_id, Consent.channel, Consent.granted, Consent.opted_out_at).where(
            Consent.patient_id.in_({row.patient_id for row in appointments})
        )
    ):
        usable, opted_out = reach.setdefault(patient_id, (set(), set()))
        if opted_out_at is not None:
            opted_out.add(channel)
        elif granted:
            usable.add(channel)
    locations = {
        location.id: location
        for location in session.scalars(
            select(Location)
            .where(Location.id.in_({row.location_id for row in appointments}))
            .options(joinedload(Location.practice))
        )
    }
    kinds = {
        kind.id: kind
        for kind in session.scalars(
            select(AppointmentType).where(
                AppointmentType.id.in_({row.appointment_type_id for row in appointments})
            )
        )
    }
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
    moves: dict[int, tuple[datetime, str | None, str | None]] = {}
    for entity_id, at, before, after in session.execute(
        select(AuditEntry.entity_id, AuditEntry.at, AuditEntry.before, AuditEntry.after)
        .where(
            AuditEntry.entity == "appointments",
            AuditEntry.field == "start_at",
            AuditEntry.entity_id.in_(ids),
        )
        .order_by(AuditEntry.at, AuditEntry.id)
    ):
        moves[entity_id] = (at, before, after)

    visits = {}
    for appointment in appointments:  # one row: the appointment and its patient
        location = locations[appointment.location_id]
        kind = kinds[appointment.appointment_type_id]
        offsets: tuple[Offset, ...] = ()
        offsets_error = None
        try:
            offsets = (
                policy.default_offsets
                if kind.reminder_offsets is None
                else parse_offsets(kind.reminder_offsets)
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
            stop_on_confirm=kind.stop_on_confirm,
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
            type_id=kind.id,
            type_name=kind.name,
            sensitive=kind.sensitive,
            send_confirmation=kind.send_confirmation,
            send_change_notices=kind.send_change_notices,
            bring_card=bring_insurance_card(checks.get(appointment.id)),
            previous_start=previous_start,
            facts=facts,
            offsets_error=offsets_error,
        )
    return visits


def _parse_instant(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _same_instant(text: str, instant: datetime) -> bool:
    parsed = _parse_instant(text)
    return parsed is not None and _stamp(parsed) == _stamp(instant)


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for index in range(0, len(items), size):
        yield items[index : index + size]


def _lock_appointments(session: Session, ids: Sequence[int]) -> None:
    """Serialize planners per appointment (PostgreSQL row locks; SQLite's write lock does it)."""
    session.execute(
        select(Appointment.id)
        .where(Appointment.id.in_(ids))
        .order_by(Appointment.id)
        .with_for_update()
    ).all()


# --- recording what is due ----------------------------------------------------------------

Identity = tuple[int, str, str, str, int]  # appointment, kind, offset, channel, start


def _identity(visit: Visit, plan: Planned) -> Identity:
    """The key fields that tell whether this reminder is already in the outbox."""
    return (
        visit.appointment_id,
        "reminder",
        plan.offset.key,
        str(plan.channel),
        _stamp(visit.start),
    )


def _identities(session: Session, ids: Sequence[int]) -> set[Identity]:
    """Messages already recorded for these appointments, whatever their version."""
    found: set[Identity] = set()
    for appointment_id, kind, channel, detail in session.execute(
        select(
            OutboxItem.appointment_id, OutboxItem.kind, OutboxItem.channel, OutboxItem.detail
        ).where(
            OutboxItem.appointment_id.in_(ids),
            OutboxItem.kind.in_(KINDS),
            OutboxItem.status != OutboxStatus.WITHDRAWN,
        )
    ):
        found.add(
            (
                appointment_id,
                kind,
                str(detail.get("offset")),
                str(channel),
                int(detail.get("start", 0)),
            )
        )
    return found


def _row(
    visit: Visit,
    *,
    kind: str,
    offset: str,
    channel: Channel,
    recipient: str | None,
    due_at: datetime,
    now: datetime,
    skip: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "idempotency_key": outbox_key(visit.appointment_id, visit.version, kind, offset, channel),
        "channel": channel,
        "kind": kind,
        "appointment_id": visit.appointment_id,
        "patient_id": visit.patient_id,
        "recipient": recipient or "",
        "status": OutboxStatus.SKIPPED if skip else OutboxStatus.PENDING,
        "attempts": 0,
        "error": skip,
        "detail": {
            "offset": offset,
            "start": _stamp(visit.start),
            "version": visit.version,
            "language": visit.language,
            **(extra or {}),
        },
        "due_at": due_at,
        "created_at": now,
        "updated_at": now,
    }


def _insert_new(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert rows, leaving alone any whose key another run stored first."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        pg_insert = postgresql.insert(OutboxItem).on_conflict_do_nothing(
            index_elements=["idempotency_key"]
        )
        session.execute(pg_insert, rows)
    elif dialect == "sqlite":
        lite_insert = sqlite.insert(OutboxItem).on_conflict_do_nothing(
            index_elements=["idempotency_key"]
        )
        session.execute(lite_insert, rows)
    else:  # pragma: no cover - officeflows runs on SQLite and PostgreSQL only
        raise RuntimeError(f"unsupported database {dialect}")


def _max_lead(session: Session, policy: Policy) -> timedelta:
    from office.models import AppointmentType

    lead = max((o.max_lead for o in policy.default_offsets), default=timedelta(0))
    for raw in session.scalars(select(AppointmentType.reminder_offsets)):
        try:
            parsed = parse_offsets(raw) if raw is not None else ()
        except OffsetError:
            continue
        lead = max([lead, *(o.max_lead for o in parsed)])
    return lead


def _candidates(session: Session, now: datetime, until: datetime) -> list[int]:
    return list(
        session.scalars(
            select(Appointment.id)
            .where(
                Appointment.status.in_(_ACTIVE),
                Appointment.start_at > now,
                Appointment.start_at <= until,
            )
            .order_by(Appointment.id)
        )
    )


def enqueue_due(
    factory: sessionmaker[Session], *, now: datetime, policy: Policy = DEFAULT_POLICY
) -> Tally:
    """Record every reminder whose time has come: pending to send, or skipped with why.

    A reminder is recorded once per appointment time, offset and channel, however
    many runs see it due (and whatever the appointment's version). One that is due
    while the patient's window is closed waits for the next run inside it.
    """
    tally = Tally()
    with factory() as session:
        lead = _max_lead(session, policy)
        ids = _candidates(session, now, now + lead)
    for chunk in _chunks(ids, _CHUNK):
        with transaction(factory) as session:
            _lock_appointments(session, chunk)
            visits = load_visits(session, chunk, policy)
            seen = _identities(session, chunk)
            rows: list[dict[str, Any]] = []
            for visit in visits.values():
                rows.extend(_due_rows(session, visit, seen, now, policy, tally))
            _insert_new(session, rows)
    return tally


def _due_rows(
    session: Session,
    visit: Visit,
    seen: set[Identity],
    now: datetime,
    policy: Policy,
    tally: Tally,
) -> list[dict[str, Any]]:
    if visit.status not in _ACTIVE or visit.start <= now:
        return []
    if visit.offsets_error is not None:
        open_work_item(
            session,
            kind="reminder_settings_invalid",
            entity="appointment_types",
            entity_id=visit.type_id,
            summary=f"Reminder settings of appointment type {visit.type_id} cannot be read",
            role="office_manager",
            detail={"problem": visit.offsets_error},
        )
        return []
    open_window = policy.window.may_send(now, visit.zone)
    rows = []
    for plan in due_now(plan_reminders(visit.facts, policy), now):
        identity = _identity(visit, plan)
        if identity in seen:
            continue
        if plan.skip is None and not open_window:
            continue  # due, but the window is closed: the first run inside it sends it
        seen.add(identity)
        rows.append(
            _row(
                visit,
                kind="reminder",
                offset=plan.offset.key,
                channel=plan.channel,
                recipient=plan.address,
                due_at=plan.send_at,
                now=now,
                skip=plan.skip,
            )
        )
        tally.add("reminder", plan.channel, "skipped" if plan.skip else "queued")
    if rows and not reachable(visit.contact):
        _no_channel(session, visit)
    return rows


def _no_channel(session: Session, visit: Visit) -> None:
    open_work_item(
        session,
        kind="reminder_no_channel",
        entity="appointments",
        entity_id=visit.appointment_id,
        summary=(
            f"No usable email or text for the patient of appointment {visit.appointment_id}: "
            "call to remind them"
        ),
        role="front_desk",
        due_at=visit.start - timedelta(days=1),
        detail={"appointment_id": visit.appointment_id, "patient_id": visit.patient_id},
    )


def withdraw_pending(
    session: Session,
    appointment_id: int,
    *,
    reason: str,
    now: datetime,
    keep: Callable[[OutboxItem], bool] | None = None,
    tally: Tally | None = None,
) -> int:
    """Withdraw this appointment's unsent messages (those `keep` spares stay); returns how many."""
    withdrawn = 0
    for item in session.scalars(
        select(OutboxItem).where(
            OutboxItem.appointment_id == appointment_id,
            OutboxItem.kind.in_(KINDS),
            OutboxItem.status == OutboxStatus.PENDING,
        )
    ):
        if keep is not None and keep(item):
            continue
        if _transition(session, item.id, OutboxStatus.PENDING, OutboxStatus.WITHDRAWN, now, reason):
            withdrawn += 1
            if tally is not None:
                tally.add(item.kind, item.channel, "withdrawn")
    return withdrawn


def enqueue_notices(
    session: Session, appointment_id: int, *, now: datetime, policy: Policy = DEFAULT_POLICY
) -> Tally:
    """Record the booking confirmation, reschedule or cancellation notice this visit now needs.

    Withdraws whatever is pending for a time the appointment no longer has. The
    caller's transaction commits; the appointment row is locked first.
    """
    tally = Tally()
    _lock_appointments(session, [appointment_id])
    visit = load_visits(session, [appointment_id], policy).get(appointment_id)
    if visit is None:
        return tally
    stamp = _stamp(visit.start)
    cancelled = visit.status is AppointmentStatus.CANCELLED

    def stale(item: OutboxItem) -> bool:
        if cancelled:
            return item.kind != "cancellation"
        return bool(item.detail.get("start") != stamp) or item.kind == "cancellation"

    withdraw_pending(
        session,
        appointment_id,
        reason="appointment cancelled" if cancelled else "appointment moved",
        now=now,
        keep=lambda item: not stale(item),
        tally=tally,
    )
    if visit.start <= now:
        return tally
    history = list(
        session.scalars(
            select(OutboxItem)
            .where(OutboxItem.appointment_id == appointment_id, OutboxItem.kind.in_(KINDS))
            .order_by(OutboxItem.id)
        )
    )
    recorded = {
        (item.kind, item.detail.get("start"))
        for item in history
        if item.status is not OutboxStatus.WITHDRAWN
    }
    told = [
        int(item.detail.get("start", 0))
        for item in history
        if item.kind != "cancellation" and item.status in _TOLD
    ]
    kind: Kind | None = None
    extra: dict[str, Any] = {}
    if cancelled:
        if visit.send_change_notices and ("cancellation", stamp) not in recorded:
            kind = "cancellation"
    elif visit.status in _ACTIVE:
        if told:
            previous = told[-1] if told[-1] != stamp else None
        else:
            previous = _stamp(visit.previous_start) if visit.previous_start else None
        if previous is not None:
            if visit.send_change_notices and ("reschedule", stamp) not in recorded:
                kind = "reschedule"
                extra = {"old_start": previous}
        elif (
            not told
            and visit.status is AppointmentStatus.BOOKED
            and visit.send_confirmation
            and not any(item.kind == "confirmation" for item in history)
        ):
            kind = "confirmation"
    if kind is None:
        return tally
    found = notice_route(visit.contact)
    if found is None or found.address is None:
        _no_channel(session, visit)
        reason = route(visit.contact, Channel.EMAIL).reason or "no usable channel"
        _insert_new(
            session,
            [
                _row(
                    visit,
                    kind=kind,
                    offset=NOTICE_OFFSET,
                    channel=Channel.EMAIL,
                    recipient=None,
                    due_at=now,
                    now=now,
                    skip=reason,
                    extra=extra,
                )
            ],
        )
        tally.add(kind, Channel.EMAIL, "skipped")
        return tally
    due_at = now
    if found.channel is Channel.SMS:
        due_at = policy.window.next_opening(now, visit.zone)
    _insert_new(
        session,
        [
            _row(
                visit,
                kind=kind,
                offset=NOTICE_OFFSET,
                channel=found.channel,
                recipient=found.address,
                due_at=due_at,
                now=now,
                extra=extra,
            )
        ],
    )
    tally.add(kind, found.channel, "queued")
    return tally


def due_outbox_ids(
    factory: sessionmaker[Session], *, now: datetime, appointment_id: int | None = None
) -> list[int]:
    """Pending reminder-kind messages whose time has come, oldest first."""
    query = select(OutboxItem.id).where(
        OutboxItem.status == OutboxStatus.PENDING,
        _OURS,
        OutboxItem.due_at <= now,
    )
    if appointment_id is not None:
        query = query.where(OutboxItem.appointment_id == appointment_id)
    with factory() as session:
        return list(session.scalars(query.order_by(OutboxItem.id)))


def _transition(
    session: Session,
    item_id: int,
    source: OutboxStatus,
    target: OutboxStatus,
    now: datetime,
    error: str | None,
) -> bool:
    result = session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == item_id, OutboxItem.status == source)
        .values(status=target, error=error, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


# --- crash recovery -------------------------------------------------------------------------


def reconcile_interrupted(
    factory: sessionmaker[Session],
    *,
    now: datetime,
    mail_resend_safe: bool,
    sms_resend_safe: bool,
    lease: timedelta = DEFAULT_LEASE,
) -> Tally:
    """Settle messages a killed run left in "sending" once their lease ran out (see module doc)."""
    tally = Tally()
    with transaction(factory) as session:
        stuck = list(
            session.execute(
                select(OutboxItem.id, OutboxItem.kind, OutboxItem.channel).where(
                    OutboxItem.status == OutboxStatus.SENDING,
                    _OURS,
                    OutboxItem.claimed_at < now - lease,
                )
            )
        )
        for item_id, kind, channel in stuck:
            safe = mail_resend_safe if channel is Channel.EMAIL else sms_resend_safe
            if safe:
                if _transition(
                    session,
                    item_id,
                    OutboxStatus.SENDING,
                    OutboxStatus.PENDING,
                    now,
                    "interrupted send; sent again with the same id",
                ):
                    tally.add(kind, channel, "requeued")
                continue
            if _transition(
                session,
                item_id,
                OutboxStatus.SENDING,
                OutboxStatus.UNKNOWN,
                now,
                "interrupted during send; delivery unknown",
            ):
                _delivery_unknown(session, item_id)
                tally.add(kind, channel, "unknown")
    return tally


def _delivery_unknown(session: Session, item_id: int) -> None:
    open_work_item(
        session,
        kind="reminder_delivery_unknown",
        entity="outbox",
        entity_id=item_id,
        summary=(
            f"Outbox message {item_id} may or may not have been delivered; "
            "check with the patient before sending it again"
        ),
        role="front_desk",
        detail={"outbox_id": item_id},
    )


# --- transports -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Channels:
    """The transports one batch sends through, and whether each may repeat a message safely."""

    mailer: Mailer
    sms: SmsSender
    mail_resend_safe: bool
    sms_resend_safe: bool


ChannelsFactory = Callable[[], AbstractAsyncContextManager[Channels]]


def _domain(address: str) -> str:
    return address.rpartition("@")[2] or "localhost"


# --- composing --------------------------------------------------------------------------------


def _context(
    visit: Visit, item_detail: dict[str, Any], settings: Settings, secret: str, *, channel: Channel
) -> dict[str, Any]:
    language = str(item_detail.get("language") or visit.language)
    location_zone = _zone(visit.location_zone)
    when_local = visit.start.astimezone(location_zone)
    # Texts are read on lock screens and shared phones: the neutral word only.
    label = visit_label(
        sensitive=visit.sensitive or channel is Channel.SMS,
        type_name=visit.type_name,
        language=language,
    )
    context: dict[str, Any] = {
        "practice_name": visit.practice_name,
        "location_name": visit.location_name,
        "location_address": visit.location_address,
        "location_phone": visit.location_phone,
        "patient_first_name": visit.first_name,
        "when_local": when_local,
        "tz_abbrev": when_local.tzname() or "",
        "visit_label": label,
        "bring_insurance_card": visit.bring_card,
        "language": language,
        **link_urls(
            settings.public_url, secret, appointment_id=visit.appointment_id, start=visit.start
        ),
    }
    old = item_detail.get("old_start")
    context["old_when_local"] = (
        datetime.fromtimestamp(int(old), UTC).astimezone(location_zone) if old else when_local
    )
    return context


def _zone(name: str) -> ZoneInfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _mail_domain(visit: Visit, settings: Settings) -> str:
    return visit.mail_domain or _domain(settings.mail_from)


def compose_email(
    *,
    key: str,
    kind: str,
    detail: dict[str, Any],
    created_at: datetime,
    recipient: str,
    visit: Visit,
    settings: Settings,
    secret: str,
) -> EmailMessage:
    """Build the email for one outbox row; the same row always gives the same bytes."""
    language = str(detail.get("language") or visit.language)
    context = _context(visit, detail, settings, secret, channel=Channel.EMAIL)
    base = f"reminders/{language}/{kind}"
    subject = " ".join(render(f"{base}.subject.txt.j2", **context).split())
    text = render(f"{base}.txt.j2", **context) + "\n"
    html = render(f"{base}.html.j2", **context) + "\n"
    domain = _mail_domain(visit, settings)
    method: Literal["REQUEST", "CANCEL"] = "CANCEL" if kind == "cancellation" else "REQUEST"
    label = str(context["visit_label"])
    ics = build_ics(
        uid=appointment_uid(visit.appointment_id, domain),
        sequence=int(detail.get("version", visit.version)),
        start_utc=visit.start,
        end_utc=visit.end,
        tz=visit.location_zone,
        summary=f"{label[:1].upper()}{label[1:]} - {visit.practice_name}",
        location=f"{visit.location_name}, {visit.location_address}".strip(", "),
        organizer_email=settings.mail_from,
        organizer_name=visit.practice_name,
        attendee_email=recipient,
        method=method,
        dtstamp=created_at,
    )
    return build_email(
        message_id=message_id_for(key, domain),
        sender=formataddr((visit.practice_name, settings.mail_from)),
        to=recipient,
        subject=subject,
        text=text,
        html=html,
        ics=ics,
        method=method,
        date=created_at,
    )


def compose_sms(
    *, kind: str, detail: dict[str, Any], visit: Visit, settings: Settings, secret: str
) -> str:
    """The text for one outbox row; check it with `sms_fits` before sending."""
    language = str(detail.get("language") or visit.language)
    context = _context(visit, detail, settings, secret, channel=Channel.SMS)
    return render(f"reminders/{language}/{kind}.sms.txt.j2", **context).strip()


# --- sending ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """The outbox row as read at the start of a batch."""

    id: int
    key: str
    kind: str
    channel: Channel
    appointment_id: int
    patient_id: int | None
    recipient: str
    detail: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class _Verdict:
    action: Literal["send", "close", "defer"]
    status: OutboxStatus | None = None
    reason: str | None = None
    recipient: str | None = None


@dataclass
class _BatchState:
    """What this batch learned mid-way: addresses that bounced, numbers that opted out."""

    undeliverable: set[int] = field(default_factory=set)
    sms_opted_out: set[int] = field(default_factory=set)

    def contact(self, visit: Visit) -> Contact:
        contact = visit.contact
        if visit.patient_id in self.undeliverable:
            contact = replace(contact, email_undeliverable=True)
        if visit.patient_id in self.sms_opted_out:
            contact = replace(contact, opted_out=contact.opted_out | {Channel.SMS})
        return contact


def _judge(
    item: _Snapshot, visit: Visit | None, now: datetime, policy: Policy, state: _BatchState
) -> _Verdict:
    """Is this row still right to send, now? Opt-outs and moves since it was queued count."""
    withdraw = OutboxStatus.WITHDRAWN
    skipped = OutboxStatus.SKIPPED
    if visit is None:
        return _Verdict("close", withdraw, "appointment deleted")
    if item.kind == "cancellation":
        if visit.status is not AppointmentStatus.CANCELLED:
            return _Verdict("close", withdraw, "appointment active again")
    else:
        if visit.status not in _ACTIVE:
            return _Verdict("close", withdraw, "appointment cancelled")
        if visit.start <= now:
            return _Verdict("close", skipped, "appointment already started")
    if int(item.detail.get("start", 0)) != _stamp(visit.start):
        return _Verdict("close", withdraw, "appointment moved")
    contact = state.contact(visit)
    open_window = policy.window.may_send(now, visit.zone)
    if item.kind == "reminder":
        facts = replace(visit.facts, contact=contact)
        match: Planned | None = None
        for plan in due_now(plan_reminders(facts, policy), now):
            if plan.offset.key == item.detail.get("offset") and plan.channel is item.channel:
                match = plan
        if match is None:
            return _Verdict("close", skipped, "no longer scheduled")
        if match.skip is not None:
            return _Verdict("close", skipped, match.skip)
        if not open_window:
            return _Verdict("defer")
        return _Verdict("send", recipient=match.address)
    found = route(contact, item.channel)
    if not found.usable:
        return _Verdict("close", skipped, found.reason)
    if item.channel is Channel.SMS and not open_window:
        return _Verdict("defer")
    return _Verdict("send", recipient=found.address)


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: OutboxStatus
    provider_id: str | None = None
    error: str | None = None
    rejected_address: bool = False
    opted_out: bool = False


def _describe(exc: BaseException) -> str:
    # Adapter messages carry codes only, never addresses or content (their contract).
    return f"{type(exc).__name__}: {exc}"[:500]


async def _deliver(
    item: _Snapshot,
    payload: Wire | str,
    recipient: str,
    channels: Channels,
    retry_delays: Sequence[float],
) -> _Outcome:
    last: BaseException | None = None
    for delay in (0.0, *retry_delays):
        if delay:
            await asyncio.sleep(delay)
        try:
            if isinstance(payload, Wire):
                provider_id = await channels.mailer.send(payload)
            else:
                provider_id = await channels.sms.send(
                    to=recipient, body=payload, idempotency_key=item.key
                )
        except (MailRetryableError, SmsRetryableError) as exc:
            last = exc
            continue
        except MailRecipientRejected as exc:
            return _Outcome(OutboxStatus.FAILED, error=_describe(exc), rejected_address=True)
        except (MailAmbiguousError, SmsAmbiguousError) as exc:
            return _Outcome(OutboxStatus.UNKNOWN, error=_describe(exc))
        except MailPermanentError as exc:
            return _Outcome(OutboxStatus.FAILED, error=_describe(exc))
        except SmsRejected as exc:
            return _Outcome(OutboxStatus.FAILED, error=_describe(exc), opted_out=exc.opted_out)
        return _Outcome(OutboxStatus.SENT, provider_id=provider_id)
    return _Outcome(OutboxStatus.PENDING, error="deferred: " + _describe(last) if last else None)


def _record(session: Session, item: _Snapshot, outcome: _Outcome, now: datetime) -> None:
    """Write how one send ended, and whatever it means for the patient's record."""
    finish_outbox(
        session,
        item.id,
        outcome.status,
        provider_message_id=outcome.provider_id,
        error=outcome.error,
        now=now,
    )
    if outcome.status is OutboxStatus.UNKNOWN:
        _delivery_unknown(session, item.id)
    elif outcome.rejected_address and item.patient_id is not None:
        patient = session.get(Patient, item.patient_id)
        if patient is not None:
            apply_changes(
                session,
                patient,
                {"email_undeliverable": True},
                actor=ACTOR,
                source=f"outbox:{item.id}",
            )
        open_work_item(
            session,
            kind="email_rejected",
            entity="patients",
            entity_id=item.patient_id,
            summary=f"Email address rejected for patient {item.patient_id}: update it",
            role="front_desk",
            detail={"outbox_id": item.id},
        )
    elif outcome.opted_out and item.patient_id is not None:
        consent = session.scalar(
            select(Consent).where(
                Consent.patient_id == item.patient_id, Consent.channel == Channel.SMS
            )
        )
        if consent is not None and consent.opted_out_at is None:
            apply_changes(
                session,
                consent,
                {"opted_out_at": now, "opt_out_source": "carrier opt-out"},
                actor=ACTOR,
                source=f"outbox:{item.id}",
            )
    elif outcome.status is OutboxStatus.FAILED:
        open_work_item(
            session,
            kind="reminder_send_failed",
            entity="outbox",
            entity_id=item.id,
            summary=f"Outbox message {item.id} was refused for good; see its error",
            role="front_desk",
            detail={"outbox_id": item.id},
        )


_OUTCOME_NAMES = {
    OutboxStatus.SENT: "sent",
    OutboxStatus.FAILED: "failed",
    OutboxStatus.UNKNOWN: "unknown",
    OutboxStatus.PENDING: "deferred",
}

# The per-message hot path as plain Core statements on a connection: the same
# transitions as `ledgers.claim_outbox` / `finish_outbox`, without an ORM session
# per message (a third of the database time per message on SQLite).
_OUTBOX: Table = OutboxItem.__table__  # type: ignore[assignment]


def _claim_statement() -> Any:
    return (
        _OUTBOX.update()
        .where(_OUTBOX.c.id == bindparam("item_id"), _OUTBOX.c.status == OutboxStatus.PENDING)
        .values(
            status=OutboxStatus.SENDING,
            claimed_at=bindparam("now"),
            attempts=_OUTBOX.c.attempts + 1,
            updated_at=bindparam("now"),
            recipient=bindparam("recipient"),
            message_id=bindparam("message_id"),
        )
    )


def _finish_statement() -> Any:
    return (
        _OUTBOX.update()
        .where(_OUTBOX.c.id == bindparam("item_id"))
        .values(
            status=bindparam("status"),
            sent_at=bindparam("sent_at"),
            provider_message_id=bindparam("provider_id"),
            error=bindparam("error"),
            updated_at=bindparam("now"),
        )
    )


class _Writes:
    """The send loop's writes, one short transaction per message.

    A sent message's outcome is written in the same transaction as the next
    message's claim (or on its own when the batch ends), so each message costs
    one commit, not two. The invariant is unchanged: at any instant at most one
    row of the batch is "sending", the one on the wire or the one just sent
    whose outcome rides with the next claim; a kill leaves only that one in doubt.
    """

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._engine: Engine = factory.kw["bind"]
        self._carry: dict[str, Any] | None = None

    def claim(self, item_id: int, now: datetime, recipient: str, message_id: str | None) -> bool:
        """pending -> sending, with the previous outcome; only one claimant wins."""
        with self._engine.begin() as connection:
            self._write_carry(connection)
            result = connection.execute(
                _CLAIM,
                {"item_id": item_id, "now": now, "recipient": recipient, "message_id": message_id},
            )
        self._carry = None
        return bool(result.rowcount == 1)

    def settle(self, item: _Snapshot, outcome: _Outcome, now: datetime) -> None:
        """Record how the send ended: with the next claim, or now when a person must know."""
        if outcome.status in (OutboxStatus.SENT, OutboxStatus.PENDING):
            self._carry = {
                "item_id": item.id,
                "status": outcome.status,
                "sent_at": now if outcome.status is OutboxStatus.SENT else None,
                "provider_id": outcome.provider_id,
                "error": outcome.error,
                "now": now,
            }
            return
        self.flush()
        with transaction(self._factory) as session:
            _record(session, item, outcome, now)

    def close(self, item: _Snapshot, verdict: _Verdict, now: datetime) -> bool:
        """pending -> withdrawn or skipped, with the reason; False when another run had it."""
        self.flush()
        status = verdict.status or OutboxStatus.SKIPPED
        with transaction(self._factory) as session:
            return _transition(session, item.id, OutboxStatus.PENDING, status, now, verdict.reason)

    def flush(self) -> None:
        """Write the outcome still waiting for a claim to ride with."""
        if self._carry is not None:
            with self._engine.begin() as connection:
                self._write_carry(connection)
            self._carry = None

    def _write_carry(self, connection: Connection) -> None:
        if self._carry is not None:
            connection.execute(_FINISH, self._carry)


_CLAIM = _claim_statement()
_FINISH = _finish_statement()


async def send_batch(
    factory: sessionmaker[Session],
    settings: Settings,
    outbox_ids: Sequence[int],
    *,
    now: datetime,
    channels: ChannelsFactory,
    policy: Policy = DEFAULT_POLICY,
    retry_delays: Sequence[float] = (1.0, 4.0),
    max_deferred: int = 3,
) -> Tally:
    """Send these pending messages over one connection per transport, each exactly once.

    `now` is the batch's start; the clock advances with real elapsed time from there.

    Raises:
        DeliveryDeferred: `max_deferred` messages in a row could not be handed over
            (server down, repeated 4xx); they and the rest stay pending.
    """
    tally = Tally()
    batch_now = now
    secret = settings.require_secret_key()
    with factory() as session:
        items = [
            _Snapshot(
                id=row.id,
                key=row.idempotency_key,
                kind=row.kind,
                channel=row.channel,
                appointment_id=row.appointment_id or 0,
                patient_id=row.patient_id,
                recipient=row.recipient,
                detail=dict(row.detail),
                created_at=row.created_at,
            )
            for row in session.scalars(
                select(OutboxItem)
                .where(
                    OutboxItem.id.in_(outbox_ids),
                    OutboxItem.status == OutboxStatus.PENDING,
                    _OURS,
                )
                .order_by(OutboxItem.id)
            )
        ]
        visits = load_visits(session, {item.appointment_id for item in items}, policy)
    state = _BatchState()
    deferred_in_a_row = 0
    ahead = Prebuilt.start(_email_jobs(items, visits, batch_now, policy), settings, secret)
    writes = _Writes(factory)
    started = time.monotonic()
    try:
        async with channels() as transports:
            for item in items:
                # Each message is judged and stamped at the moment it goes: a long batch
                # must not keep sending after the window closes, nor claim with a stale
                # time a later run would take for an expired lease.
                now = batch_now + timedelta(seconds=time.monotonic() - started)
                visit = visits.get(item.appointment_id)
                verdict = _judge(item, visit, now, policy, state)
                if verdict.action == "defer":
                    tally.add(item.kind, item.channel, "waiting")
                    continue
                payload: Wire | str | None = None
                if verdict.action == "send" and visit is not None and verdict.recipient:
                    # Built before the claim, so the row is "sending" only while on the wire.
                    payload = ahead.take(item.id, verdict.recipient)
                    if payload is None:
                        payload, verdict = _compose(item, visit, verdict, settings, secret)
                if payload is None or verdict.recipient is None:
                    if writes.close(item, verdict, now):
                        closed = verdict.status is OutboxStatus.WITHDRAWN
                        tally.add(item.kind, item.channel, "withdrawn" if closed else "skipped")
                    continue
                message_id = payload.envelope.message_id if isinstance(payload, Wire) else None
                if not writes.claim(item.id, now, verdict.recipient, message_id):
                    continue  # another run took it
                # Until the next claim commits, this row is the one a kill would leave in doubt.
                outcome = await _deliver(item, payload, verdict.recipient, transports, retry_delays)
                writes.settle(item, outcome, now)
                tally.add(item.kind, item.channel, _OUTCOME_NAMES[outcome.status])
                if outcome.rejected_address and visit is not None:
                    state.undeliverable.add(visit.patient_id)
                if outcome.opted_out and visit is not None:
                    state.sms_opted_out.add(visit.patient_id)
                if outcome.status is not OutboxStatus.PENDING:
                    deferred_in_a_row = 0
                    continue
                deferred_in_a_row += 1
                if deferred_in_a_row >= max_deferred:
                    raise DeliveryDeferred(
                        f"{deferred_in_a_row} messages in a row were not accepted; "
                        "the rest of the batch stays pending"
                    )
    finally:
        ahead.cancel()
        writes.flush()
    return tally


def _email_jobs(
    items: Sequence[_Snapshot], visits: dict[int, Visit], now: datetime, policy: Policy
) -> list[EmailJob]:
    """The emails this batch will most likely send, judged at its start, to build ahead."""
    if sum(item.channel is Channel.EMAIL for item in items) < AHEAD_MIN:
        return []
    state = _BatchState()
    jobs: list[EmailJob] = []
    for item in items:
        visit = visits.get(item.appointment_id)
        if item.channel is not Channel.EMAIL or visit is None:
            continue
        verdict = _judge(item, visit, now, policy, state)
        if verdict.action == "send" and verdict.recipient:
            jobs.append(_job(item, visit, verdict.recipient))
    return jobs


def _job(item: _Snapshot, visit: Visit, recipient: str) -> EmailJob:
    return EmailJob(
        item_id=item.id,
        key=item.key,
        kind=item.kind,
        detail=item.detail,
        created_at=item.created_at,
        recipient=recipient,
        visit=visit,
    )


def _compose(
    item: _Snapshot, visit: Visit, verdict: _Verdict, settings: Settings, secret: str
) -> tuple[Wire | str | None, _Verdict]:
    recipient = verdict.recipient or ""
    if item.channel is Channel.EMAIL:
        return to_wire(_job(item, visit, recipient).compose(settings, secret)), verdict
    body = compose_sms(
        kind=item.kind, detail=item.detail, visit=visit, settings=settings, secret=secret
    )
    if not sms_fits(body):
        return None, _Verdict("close", OutboxStatus.SKIPPED, "text longer than 160 characters")
    return body, verdict


# --- one whole run, in process ------------------------------------------------------------------


async def run_once(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    now: datetime,
    channels: ChannelsFactory,
    policy: Policy = DEFAULT_POLICY,
    lease: timedelta = DEFAULT_LEASE,
    batch_size: int = 250,
    retry_delays: Sequence[float] = (1.0, 4.0),
) -> Tally:
    """Reconcile, record what is due, and send it: the flow's steps without Prefect."""
    opener = channels
    async with opener() as probe:
        mail_safe, sms_safe = probe.mail_resend_safe, probe.sms_resend_safe
    tally = reconcile_interrupted(
        factory, now=now, lease=lease, mail_resend_safe=mail_safe, sms_resend_safe=sms_safe
    )
    tally.merge(enqueue_due(factory, now=now, policy=policy))
    ids = due_outbox_ids(factory, now=now)
    started = time.monotonic()
    for chunk in _chunks(ids, batch_size):
        tally.merge(
            await send_batch(
                factory,
                settings,
                chunk,
                now=now + timedelta(seconds=time.monotonic() - started),
                channels=opener,
                policy=policy,
                retry_delays=retry_delays,
            )
        )
    return tally


# --- preview ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreviewLine:
    """One message a run would send (or skip) in the preview period."""

    send_at: datetime
    local: datetime  # in the patient's zone
    appointment_id: int
    kind: str
    offset: str
    channel: str
    to: str  # masked
    skip: str | None


def mask_address(address: str | None) -> str:
    """ "j***@e***.test", "+1******0123": enough to recognise, not enough to use."""
    if not address:
        return "-"
    if "@" in address:
        local, _, domain = address.partition("@")
        label, dot, rest = domain.partition(".")
        tail = f".{rest.rsplit('.', 1)[-1]}" if dot else ""
        return f"{local[:1]}***@{label[:1]}***{tail}"
    digits = address.strip()
    if len(digits) <= 6:
        return "*" * len(digits)
    return digits[:2] + "*" * (len(digits) - 6) + digits[-4:]


def preview(
    factory: sessionmaker[Session],
    *,
    now: datetime,
    hours: float,
    policy: Policy = DEFAULT_POLICY,
) -> list[PreviewLine]:
    """What runs in the next `hours` would send or skip; reads only, writes nothing."""
    until = now + timedelta(hours=hours)
    lines: list[PreviewLine] = []
    with factory() as session:
        lead = _max_lead(session, policy)
        ids = _candidates(session, now, until + lead)
        for chunk in _chunks(ids, _CHUNK):
            visits = load_visits(session, chunk, policy)
            seen = _identities(session, chunk)
            for visit in visits.values():
                plans = plan_reminders(visit.facts, policy)
                overdue = {id(p): p for p in due_now(plans, now)}
                for plan in plans:
                    if plan.send_at > until:
                        continue
                    identity = _identity(visit, plan)
                    if identity in seen:
                        continue
                    shown = overdue.get(id(plan), plan) if plan.send_at <= now else plan
                    lines.append(
                        PreviewLine(
                            send_at=max(shown.send_at, now),
                            local=max(shown.send_at, now).astimezone(visit.zone),
                            appointment_id=visit.appointment_id,
                            kind="reminder",
                            offset=plan.offset.key,
                            channel=str(plan.channel),
                            to=mask_address(plan.address),
                            skip=shown.skip,
                        )
                    )
        queued = list(
            session.scalars(
                select(OutboxItem).where(
                    OutboxItem.status == OutboxStatus.PENDING,
                    _OURS,
                    OutboxItem.due_at <= until,
                )
            )
        )
        owners = load_visits(session, {item.appointment_id or 0 for item in queued}, policy)
        for item in queued:
            due = max(item.due_at or now, now)
            owner = owners.get(item.appointment_id or 0)
            zone = owner.zone if owner is not None else _zone("UTC")
            lines.append(
                PreviewLine(
                    send_at=due,
                    local=due.astimezone(zone),
                    appointment_id=item.appointment_id or 0,
                    kind=item.kind,
                    offset=str(item.detail.get("offset", "")),
                    channel=str(item.channel),
                    to=mask_address(item.recipient),
                    skip=None,
                )
            )
    lines.sort(key=lambda line: (line.send_at, line.appointment_id, line.kind, line.channel))
    return lines
