"""`office demo`: a synthetic practice built fresh in OFFICE_HOME, every flow run once."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, delete, exists, select
from sqlalchemy.orm import Session, sessionmaker

from app.board.demo_logins import add_demo_logins
from app.demo_data import DEMO_PRACTICE, LOCATIONS
from app.demo_import import seed_practice
from app.demo_onboarding import print_checklists, seed_onboarding
from office.db import make_engine, make_sessionmaker, transaction
from office.home import make_private_dir
from office.ledgers import record_change, store_inbound
from office.migrate import upgrade
from office.models import (
    Appointment,
    AppointmentType,
    AuditEntry,
    Base,
    Location,
    Patient,
    Payer,
    Practice,
    Provider,
    utcnow,
)
from office.reminders.policy import Policy
from office.settings import Settings, SettingsError, ensure_secrets
from office.status import collect_status
from office.workqueue.kinds import kind_of

__all__ = ["DemoError", "FlowReport", "Timings", "run_demo"]

# The audit entry that marks the practice `office demo` built: only the demo writes it, in the
# transaction that seeds the practice, so a database without it holds someone else's data.
DEMO_MARK = {"field": "created_by", "after": "office demo", "actor": "demo"}


class DemoError(SettingsError):
    """The demo cannot run here; the message says why."""


@dataclass
class Timings:
    """Where the demo's time went, step by step."""

    steps: list[tuple[str, float]] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.steps.append((name, time.perf_counter() - started))

    def add(self, name: str, seconds: float) -> None:
        self.steps.append((name, seconds))


@dataclass(frozen=True)
class FlowReport:
    """One flow run's outcome as the summary shows it: counts only, no PHI."""

    flow: str
    seconds: float
    counts: dict[str, int]


def run_demo(
    settings: Settings, *, console: Console, seed: int = 42, run_flows: bool = True
) -> None:
    started = time.perf_counter()
    timings = Timings()
    _prepare_environment(settings)
    engine = make_engine(settings.db_url)
    factory = make_sessionmaker(engine)
    try:
        with console.status("migrating the database"), timings.step("database migrations"):
            upgrade(engine)
        with console.status("building the demo practice"), timings.step("seed demo practice"):
            _reset(engine, factory)
            real = utcnow().replace(second=0, microsecond=0)
            now = demo_clock(real)
            with transaction(factory) as session:
                _mark_demo_practice(session)
            counts = seed_practice(factory, settings.home, seed=seed, now=now)
            with transaction(factory) as session:
                _store_sample_webhooks(session)
                checklists = seed_onboarding(
                    session, now=now, zone=settings.practice_timezone, home=settings.home
                )
            _receive_sample_hl7(factory, now)
        if now != real:
            window = Policy().window
            console.print(
                f"demo clock: {now:%Y-%m-%d %H:%M} UTC, when the practice's send window next "
                f"opens (reminders go out only from {window.opens:%H:%M} to "
                f"{window.closes:%H:%M} local time)"
            )
        console.print(
            f"demo practice: {counts.patients} patients, {counts.coverages} coverages with "
            f"{counts.payers} payers, {counts.appointments} appointments at {counts.locations} "
            f"locations, {counts.staff} staff"
        )
        console.print(
            f"onboarding: {len(checklists.hires)} new hires' checklists (one a week along, "
            f"{checklists.completed} items done), "
            f"{'one departure' if checklists.departure else 'no departure'} to offboard"
        )
        add_demo_logins(settings, factory, console=console, now=now)
        reports: list[FlowReport] = []
        if run_flows:
            from app.prefect_handoff import run_demo_flows

            reports = run_demo_flows(settings, engine, now=now, console=console, timings=timings)
        else:
            # Mail waiting for office serve's route-mail schedule, as a real mailbox would be.
            from app.demo_mail import fill_demo_mailbox

            with transaction(factory) as session:
                fill_demo_mailbox(settings, session)
        with factory() as session:
            status = collect_status(session, notes_as_tasks=settings.queue_note_kinds_as_tasks)
            print_checklists(console, session, today=now, zone=settings.practice_timezone)
    finally:
        engine.dispose()
    timings.add("total", time.perf_counter() - started)
    notes = dict(status.counts).get("open notes on visits", 0)
    board = f"{settings.public_url.rstrip('/')}/staff/today"
    _print_summary(console, reports, status.open_work, timings, notes=notes, board=board)


def _prepare_environment(settings: Settings) -> None:
    make_private_dir(settings.home)
    ensure_secrets(settings)
    # Keep the demo's Prefect state beside its database unless a server is configured.
    if not os.environ.get("PREFECT_API_URL"):
        os.environ.setdefault("PREFECT_HOME", str((settings.home / "prefect").resolve()))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _rank(kind: str) -> tuple[int, str]:
    order = {"blocker": 0, "action": 1, "info": 2}
    return order.get(kind_of(kind).priority.value, 3), kind


def demo_clock(real: datetime) -> datetime:
    """The instant the demo runs at: `real`, or when the send window next opens at every clinic.

    Reminders go out only inside the patients' local send window, so a demo run
    at night would show none sent. The demo practice is built around this
    instant, and every flow runs at it.
    """
    window = Policy().window
    zones = [ZoneInfo(zone) for zone in {location[1] for location in LOCATIONS}]

    def open_everywhere(instant: datetime) -> bool:
        return all(window.may_send(instant, zone) for zone in zones)

    if open_everywhere(real):
        return real
    quarter = real.replace(minute=real.minute - real.minute % 15)
    for step in range(1, 2 * 24 * 4):  # quarter hours over two days
        candidate = quarter + timedelta(minutes=15 * step)
        if open_everywhere(candidate):
            return candidate
    return real


def _reset(engine: Engine, factory: sessionmaker[Session]) -> None:
    """Empty every table, but only an empty database or one the demo built and marked."""
    with factory() as session:
        if not (_is_empty(session) or _is_the_demos(session)):
            raise DemoError(
                "the database holds data that is not the demo's; point OFFICE_HOME or "
                "OFFICE_DATABASE_URL somewhere else to run the demo"
            )
    with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(delete(table))


def _is_empty(session: Session) -> bool:
    tables = Base.metadata.sorted_tables
    return not any(session.scalar(select(exists().select_from(table))) for table in tables)


def _is_the_demos(session: Session) -> bool:
    """One practice, and the demo's mark on it."""
    practices = session.scalars(select(Practice.id).limit(2)).all()
    if len(practices) != 1:
        return False
    mark = select(AuditEntry.id).filter_by(entity=Practice.__tablename__, entity_id=practices[0])
    return session.scalar(mark.filter_by(**DEMO_MARK).limit(1)) is not None


def _mark_demo_practice(session: Session) -> None:
    """The demo's practice, named and marked before anything is imported into it (the practice
    file then fills it in): a demo stopped half-way leaves a database the next one rebuilds."""
    practice = Practice(name=DEMO_PRACTICE)
    session.add(practice)
    session.flush()
    record_change(
        session,
        practice,
        DEMO_MARK["field"],
        None,
        DEMO_MARK["after"],
        actor=DEMO_MARK["actor"],
        source="office demo",
    )


def _receive_sample_hl7(factory: sessionmaker[Session], now: datetime) -> None:
    """A registration, an update and a booking as the practice-management system sends them
    over MLLP, each stored as the HL7 listener stores it; the intake applies them in order
    (the demo's intake step, or `office serve`'s sweeper after `--seed-only`)."""
    from integrations.hl7.listener import receive
    from integrations.hl7.samples import SampleCoverage, demo_messages

    with factory() as session:
        appointment = session.scalars(select(Appointment).order_by(Appointment.id)).first()
        provider = session.scalars(select(Provider).order_by(Provider.id)).first()
        location = session.scalars(select(Location).order_by(Location.id)).first()
        kind = session.scalars(select(AppointmentType).order_by(AppointmentType.id)).first()
        payer = session.scalars(select(Payer).order_by(Payer.id)).first()
    if not (appointment and provider and location and kind and payer):
        return
    start = (appointment.start_at + timedelta(days=1)).replace(hour=16, minute=0)
    cover = SampleCoverage(payer_code=payer.payer_code, payer_name=payer.name)
    for message in demo_messages(
        now=now,
        appointment_start=start,
        provider_npi=provider.npi,
        location=location.name,
        appointment_type=kind.code,
        coverage=cover,
    ):
        receive(factory, message, now=now)


def _store_sample_webhooks(session: Session) -> None:
    """Three bookings as the practice-management system would post them; one is bad."""
    appointment = session.scalars(select(Appointment).order_by(Appointment.id)).first()
    patient = session.scalars(select(Patient).order_by(Patient.id.desc())).first()
    provider = session.scalars(select(Provider).order_by(Provider.id)).first()
    location = session.scalars(select(Location).order_by(Location.id)).first()
    kind = session.scalars(select(AppointmentType).order_by(AppointmentType.id)).first()
    if not (appointment and patient and provider and location and kind):
        return
    start = appointment.start_at.replace(hour=15, minute=0)
    occurred_at = utcnow().isoformat()  # when the practice-management system made each change
    payloads = [
        {
            "event": "booked",
            "external_id": "PM-90001",
            "patient_mrn": patient.mrn,
            "provider_npi": provider.npi,
            "location_id": location.id,
            "appointment_type": kind.code,
            "start": start.isoformat(),
            "occurred_at": occurred_at,
        },
        {
            "event": "rescheduled",
            "external_id": appointment.external_id,
            "patient_mrn": session.get_one(Patient, appointment.patient_id).mrn,
            "provider_npi": provider.npi,
            "location_id": appointment.location_id,
            "appointment_type": kind.code,
            "start": (start.replace(hour=16)).isoformat(),
            "occurred_at": occurred_at,
        },
        {"event": "booked", "external_id": "PM-90002", "patient_mrn": "MRN-UNKNOWN"},
    ]
    for index, payload in enumerate(payloads):
        store_inbound(
            session,
            source="webhook:bookings",
            key=f"demo-booking-{index}",
            body=json.dumps(payload).encode(),
            content_type="application/json",
        )


def _print_summary(
    console: Console,
    reports: list[FlowReport],
    open_work: list[tuple[str, int]],
    timings: Timings,
    *,
    notes: int = 0,
    board: str = "",
) -> None:
    if reports:
        flows = Table("flow", "what it did", "seconds", title="What each flow did")
        for report in reports:
            did = ", ".join(f"{k} {v}" for k, v in report.counts.items()) or "nothing to do"
            flows.add_row(report.flow, did, f"{report.seconds:.1f}")
        console.print(flows)
    total = sum(count for _kind, count in open_work)
    work = Table("what", "kind", "priority", "open", title=f"Open work items by kind: {total}")
    for kind, count in sorted(open_work, key=lambda pair: _rank(pair[0])):
        spec = kind_of(kind)
        work.add_row(spec.title, kind, spec.priority.value, str(count))
    console.print(work if open_work else "no open work items")
    if board:
        console.print(
            f"{total} items on the board at {board} ({notes} notes on visits); "
            "`office queue` lists them here"
        )
    spent = Table("step", "seconds", title="Where the time went")
    for name, seconds in timings.steps:
        spent.add_row(name, f"{seconds:.1f}")
    console.print(spent)
