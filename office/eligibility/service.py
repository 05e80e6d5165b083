"""Eligibility work without Prefect: pick what to check, ask the payers, store every answer.

The order is the audit trail's: a check row is written (pending, with a request summary of
ids and codes) before its inquiry leaves, each answer is stored as it arrives together with
the work items it raises, and a check asked again (a retried batch, a re-run) is found by its
row, so nothing answered is sent twice and nothing is closed behind anyone's back.

`run_batch` asks one payer for many checks with asyncio: a semaphore at the payer's
concurrency limit, a token bucket at its rate, and a few quick retries per check. Patient
data lives only in the requests it builds in memory; what it returns is counts.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from time import monotonic
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from office.contracts.payers import (
    PayerConfigError,
    PayerError,
    PayerResponse,
    PayerResponseInvalid,
    PayerRetryableError,
)
from office.db import transaction
from office.eligibility.alerts import (
    Alert,
    AlertContext,
    alerts_for,
    deductible_remaining,
    failure_alert,
    registration_alert,
    visit_copay,
)
from office.eligibility.types import (
    AaaAction,
    CoverageStatus,
    EligibilityRequest,
    EligibilityResult,
    Person,
)
from office.ledgers import open_work_item
from office.models import (
    Appointment,
    AppointmentStatus,
    AppointmentType,
    CheckStatus,
    Coverage,
    EligibilityCheck,
    Location,
    Patient,
    Payer,
    Provider,
    WorkItem,
    WorkStatus,
    utcnow,
)

if TYPE_CHECKING:
    from office.contracts.payers import PayerAdapter
    from office.settings import Settings

__all__ = [
    "AdapterFactory",
    "AnswersNotStored",
    "BatchOutcome",
    "ChecksStillPending",
    "Due",
    "MissingSubscriber",
    "PooledTransport",
    "RetryPolicy",
    "TokenBucket",
    "adapter_config",
    "build_request",
    "local_today",
    "new_trace",
    "record_pending",
    "run_batch",
    "select_appointment",
    "select_due",
    "select_refresh",
    "store_answers",
    "summarize",
]

log = logging.getLogger("office.eligibility")

BOOKED = (AppointmentStatus.BOOKED, AppointmentStatus.CONFIRMED)
VERIFIED = (CheckStatus.ACTIVE, CheckStatus.INACTIVE)
REFRESH_SERVICE_TYPE = "30"
# A pending check this old belongs to no live run: batches finish within minutes.
ORPHANED_AFTER = timedelta(hours=1)
# Every run reports these, zero or not, so summaries line up from one run to the next.
OUTCOMES = ("due", "checked", "active", "inactive", "unverified", "errors", "alerts")
# Bound parameters per IN (...) list; far below any backend's limit.
_CHUNK = 500
_T = TypeVar("_T")


class ChecksStillPending(Exception):
    """Some checks of a batch are still waiting on their payer; asking later may answer them."""

    def __init__(self, payer_id: int, pending: int) -> None:
        super().__init__(f"payer {payer_id}: {pending} checks still waiting on the payer")
        self.payer_id = payer_id
        self.pending = pending


class AnswersNotStored(RuntimeError):
    """The database refused a batch of answers; those checks stay pending for a retry."""

    def __init__(self, count: int, kind: str) -> None:
        super().__init__(f"could not store {count} eligibility answers ({kind})")


class MissingSubscriber(ValueError):
    """A dependent's coverage lacks the subscriber's name, so no inquiry can be built."""


# --- what to check ---------------------------------------------------------------------------


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
    service type, checked within `refresh_after_days` of `now`; unverified and error answers
    do not count.
    """
    last = today + timedelta(days=days_ahead)
    visits = _visits(session, today, last, Appointment.status.in_(BOOKED))
    due = _with_coverage(session, visits)
    since = now - timedelta(days=refresh_after_days)
    fresh = _verified(session, due, since)
    return [d for d in due if (d.coverage_id, d.date_of_service, d.service_type) not in fresh]


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
        select(Appointment.patient_id, func.min(Appointment.provider_id))
        .join(
            latest,
            (latest.c.patient_id == Appointment.patient_id)
            & (latest.c.last_at == Appointment.start_at),
        )
        .where(Appointment.status.in_(statuses))
        .group_by(Appointment.patient_id)
        .order_by(Appointment.patient_id)
    ).all()
    visits = [
        _Visit(None, patient_id, provider_id, today, REFRESH_SERVICE_TYPE)
        for patient_id, provider_id in rows
    ]
    due = _with_coverage(session, visits)
    fresh = _verified(session, due, since=datetime.min.replace(tzinfo=UTC))
    return [d for d in due if (d.coverage_id, d.date_of_service, d.service_type) not in fresh]


@dataclass(frozen=True, slots=True)
class _Visit:
    appointment_id: int | None
    patient_id: int
    provider_id: int
    date_of_service: date
    service_type: str


def _visit_query() -> Any:
    return (
        select(
            Appointment.id,
            Appointment.patient_id,
            Appointment.provider_id,
            Appointment.start_at,
            Location.timezone,
            AppointmentType.service_type_code,
        )
        .join(Location, Location.id == Appointment.location_id)
        .join(AppointmentType, AppointmentType.id == Appointment.appointment_type_id)
    )


def _visit(row: Any) -> _Visit:
    appointment_id, patient_id, provider_id, start_at, zone, service_type = row
    return _Visit(
        appointment_id,
        patient_id,
        provider_id,
        local_today(start_at, zone),
        service_type or REFRESH_SERVICE_TYPE,
    )


def _visits(session: Session, first: date, last: date, status: Any) -> list[_Visit]:
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
    primary: dict[int, tuple[int, int, str]] = {}
    for chunk in _chunks(sorted({v.patient_id for v in visits})):
        rows = session.execute(
            select(Coverage.patient_id, Coverage.id, Coverage.payer_id, Coverage.relationship_code)
            .where(
                Coverage.patient_id.in_(chunk),
                Coverage.rank == 1,
                Coverage.active.is_(True),
            )
            .order_by(Coverage.id)
        )
        for patient_id, coverage_id, payer_id, relationship in rows:
            primary.setdefault(patient_id, (coverage_id, payer_id, relationship))
    due = []
    for visit in visits:
        found = primary.get(visit.patient_id)
        if found is None:
            continue
        coverage_id, payer_id, relationship = found
        due.append(
            Due(
                patient_id=visit.patient_id,
                coverage_id=coverage_id,
                payer_id=payer_id,
                provider_id=visit.provider_id,
                date_of_service=visit.date_of_service,
                service_type=visit.service_type,
                appointment_id=visit.appointment_id,
                relationship_code=relationship,
            )
        )
    return due


def _verified(session: Session, due: Sequence[Due], since: datetime) -> set[tuple[int, date, str]]:
    if not due:
        return set()
    first = min(d.date_of_service for d in due)
    last = max(d.date_of_service for d in due)
    found: set[tuple[int, date, str]] = set()
    for chunk in _chunks(sorted({d.coverage_id for d in due})):
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
        found.update((c, d, s) for c, d, s in rows)
    return found


# --- recording the intent ---------------------------------------------------------------------


def new_trace() -> str:
    """A TRN02 for one inquiry: 20 characters, unique, and meaningless outside our database."""
    return "OF" + uuid.uuid4().hex[:18].upper()


def record_pending(
    session: Session, due: Sequence[Due], *, run_key: str, now: datetime
) -> dict[int, list[int]]:
    """Write a pending check per inquiry before anything is sent; returns check ids per payer.

    A run asked again (a flow retry, the same `run_key`) finds its rows: answered ones are
    skipped, pending ones re-sent. A pending row left by an earlier run that never finished
    (older than `ORPHANED_AFTER`) is taken over rather than duplicated; a younger one may
    belong to a run still going (a booking checked during the daily batch), so it is left
    to that run.
    """
    existing = _existing(session, due, run_key, orphaned_before=now - ORPHANED_AFTER)
    batches: dict[int, list[int]] = {}
    adopted: list[int] = []
    fresh: list[dict[str, Any]] = []
    for item in due:
        key = (item.appointment_id, item.coverage_id, item.date_of_service, item.service_type)
        found = existing.get(key)
        if found is not None:
            check_id, status, owner = found
            if status is not CheckStatus.PENDING:
                continue  # answered earlier in this same run
            if owner != run_key:
                adopted.append(check_id)
            batches.setdefault(item.payer_id, []).append(check_id)
            continue
        fresh.append(
            {
                "trace": new_trace(),
                "appointment_id": item.appointment_id,
                "coverage_id": item.coverage_id,
                "patient_id": item.patient_id,
                "payer_id": item.payer_id,
                "date_of_service": item.date_of_service,
                "service_type": item.service_type,
                "status": CheckStatus.PENDING,
                "attempts": 0,
                "run_key": run_key,
                "request_summary": _summary(item),
                "created_at": now,
            }
        )
    if adopted:
        for chunk in _chunks(adopted):
            session.execute(
                update(EligibilityCheck)
                .where(EligibilityCheck.id.in_(chunk))
                .values(run_key=run_key)
                .execution_options(synchronize_session=False)
            )
    if fresh:
        created = session.execute(
            insert(EligibilityCheck).returning(EligibilityCheck.id, EligibilityCheck.payer_id),
            fresh,
        )
        for check_id, payer_id in created:
            batches.setdefault(payer_id, []).append(check_id)
    return {payer: sorted(ids) for payer, ids in sorted(batches.items())}


def _summary(item: Due) -> dict[str, Any]:
    """What the request was, in ids and codes: enough to audit it, nothing to identify anyone."""
    return {
        "appointment_id": item.appointment_id,
        "coverage_id": item.coverage_id,
        "payer_id": item.payer_id,
        "provider_id": item.provider_id,
        "date_of_service": item.date_of_service.isoformat(),
        "service_type": item.service_type,
        "relationship_code": item.relationship_code,
        "dependent": item.relationship_code != "18",
    }


def _existing(
    session: Session, due: Sequence[Due], run_key: str, *, orphaned_before: datetime
) -> dict[tuple[int | None, int, date, str], tuple[int, CheckStatus, str | None]]:
    """This run's rows, and pending rows old enough that no live run can still own them."""
    if not due:
        return {}
    first = min(d.date_of_service for d in due)
    last = max(d.date_of_service for d in due)
    found: dict[tuple[int | None, int, date, str], tuple[int, CheckStatus, str | None]] = {}
    for chunk in _chunks(sorted({d.coverage_id for d in due})):
        rows = session.execute(
            select(
                EligibilityCheck.id,
                EligibilityCheck.appointment_id,
                EligibilityCheck.coverage_id,
                EligibilityCheck.date_of_service,
                EligibilityCheck.service_type,
                EligibilityCheck.status,
                EligibilityCheck.run_key,
            )
            .where(
                EligibilityCheck.coverage_id.in_(chunk),
                EligibilityCheck.date_of_service.between(first, last),
                (EligibilityCheck.run_key == run_key)
                | (
                    (EligibilityCheck.status == CheckStatus.PENDING)
                    & (EligibilityCheck.created_at < orphaned_before)
                ),
            )
            .order_by(EligibilityCheck.id)
        )
        for check_id, appointment_id, coverage_id, dos, stc, status, owner in rows:
            key = (appointment_id, coverage_id, dos, stc)
            # This run's own row wins over an orphan from an earlier run.
            if key not in found or owner == run_key:
                found[key] = (check_id, status, owner)
    return found


# --- building the inquiry ---------------------------------------------------------------------


def build_request(
    trace: str,
    *,
    payer: Payer,
    provider: Provider,
    coverage: Coverage,
    patient: Patient,
    date_of_service: date,
    service_type: str,
) -> EligibilityRequest:
    """The normalized inquiry for one coverage; a dependent goes under the subscriber.

    Raises:
        MissingSubscriber: The coverage is a dependent's and lacks the subscriber's name.
    """
    subscriber, dependent = _insured(
        Person(
            first_name=patient.first_name,
            last_name=patient.last_name,
            date_of_birth=patient.date_of_birth,
            sex=patient.sex,
            middle_name=patient.middle_name,
            suffix=patient.suffix,
        ),
        coverage_id=coverage.id,
        relationship_code=coverage.relationship_code,
        member_id=coverage.member_id,
        group_number=coverage.group_number,
        subscriber=(
            coverage.subscriber_first_name,
            coverage.subscriber_last_name,
            coverage.subscriber_date_of_birth,
            coverage.subscriber_sex,
        ),
    )
    return EligibilityRequest(
        trace=trace,
        payer_id=payer.payer_id,
        payer_name=payer.name,
        provider_npi=provider.npi,
        provider_name=provider.last_name,
        provider_first_name=provider.first_name,
        subscriber=subscriber,
        dependent=dependent,
        date_of_service=date_of_service,
        service_type=service_type,
    )


def _insured(
    patient: Person,
    *,
    coverage_id: int,
    relationship_code: str,
    member_id: str,
    group_number: str | None,
    subscriber: tuple[str | None, str | None, date | None, str | None],
) -> tuple[Person, Person | None]:
    """(subscriber, dependent): the patient themself, or the patient under the subscriber."""
    if relationship_code == "18":
        return replace(patient, member_id=member_id, group_number=group_number), None
    first, last, born, sex = subscriber
    if not (first and last):
        raise MissingSubscriber(f"coverage {coverage_id} has no subscriber name")
    holder = Person(
        first_name=first,
        last_name=last,
        date_of_birth=born,
        sex=sex,
        member_id=member_id,
        group_number=group_number,
    )
    return holder, patient


def adapter_config(payer: Payer, settings: Settings) -> dict[str, Any]:
    """The adapter's settings: the payer's own, over the clearinghouse defaults for `x12`."""
    config: dict[str, Any] = {}
    if payer.adapter == "x12":
        if settings.clearinghouse_url:
            config["url"] = settings.clearinghouse_url
        if settings.clearinghouse_auth is not None:
            config["auth_header"] = settings.clearinghouse_auth_header
            config["auth_value"] = settings.clearinghouse_auth.get_secret_value()
    config.update(payer.adapter_settings or {})
    return config


# --- asking one payer --------------------------------------------------------------------------


class AdapterFactory(Protocol):
    """Builds a payer adapter by name (`integrations.payers.get_payer`, or a test fake)."""

    def __call__(
        self,
        name: str,
        *,
        config: Mapping[str, Any],
        client: httpx.AsyncClient | None = None,
    ) -> PayerAdapter: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Quick in-process retries of one check, with exponential backoff and jitter.

    Args:
        attempts: Tries per check per batch run, the first included.
        base_delay: Seconds before the first retry; doubles each time.
        max_delay: Cap on the backoff.
        jitter: Spread of each delay, as a fraction either way, so retries do not align.
        max_retry_after: Longest `Retry-After` honoured in-process; longer waits are the
            batch retry's business.
    """

    attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 20.0
    jitter: float = 0.5
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        backoff *= 1 + rng.uniform(-self.jitter, self.jitter)
        if retry_after is not None:
            backoff = max(backoff, min(retry_after, self.max_retry_after))
        return float(max(0.0, backoff))


class TokenBucket:
    """At most `rate` requests per second, in bursts of up to `burst` (GCRA, no lock needed).

    Each caller reserves the next free slot and sleeps until it, so waiting callers never
    hold anything another caller needs.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("token bucket needs a positive rate and a burst of at least 1")
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    async def take(self) -> None:
        now = self._clock()
        due = now if self._next is None else max(self._next, now)
        self._next = due + self._interval
        wait = due - self._tolerance - now
        if wait > 0:
            await self._sleep(wait)


@dataclass
class BatchOutcome:
    """Counts for one payer batch: outcomes, alerts by kind, and checks left pending."""

    counts: Counter[str] = field(default_factory=Counter)

    @property
    def pending(self) -> int:
        return self.counts["retryable"]


@dataclass(frozen=True, slots=True)
class _Job:
    check_id: int
    attempts: int
    entity: tuple[str, int]
    due_at: datetime | None
    context: AlertContext
    request: EligibilityRequest | None  # None: no inquiry can be built (see problem)
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class _Answer:
    """What to store for one check; alerts become work items in the same transaction."""

    check_id: int
    status: CheckStatus
    attempts: int
    checked_at: datetime | None
    entity: tuple[str, int]
    due_at: datetime | None
    result: EligibilityResult | None = None
    raw: str | None = None
    raw_format: str | None = None
    error: str | None = None
    copay: Decimal | None = None
    deductible_remaining: Decimal | None = None
    plan_end: date | None = None
    alerts: tuple[Alert, ...] = ()


@dataclass(frozen=True, slots=True)
class _Payer:
    id: int
    adapter: str
    config: dict[str, Any]
    concurrency: int
    rate: float


async def run_batch(
    factory: sessionmaker[Session],
    settings: Settings,
    payer_id: int,
    check_ids: Sequence[int],
    *,
    adapters: AdapterFactory,
    final: bool,
    policy: RetryPolicy | None = None,
    now: datetime | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> BatchOutcome:
    """Ask one payer about the still-pending checks among `check_ids`, storing each answer.

    Args:
        factory: Sessions on the office database.
        settings: Default concurrency and rate, the deductible threshold, the practice zone.
        payer_id: The payer (database id) every check belongs to.
        check_ids: Checks recorded by `record_pending`; answered ones are skipped.
        adapters: Builds the payer's adapter.
        final: Whether this is the last try: a check the payer still cannot answer is then
            recorded unverified with a work item; otherwise it stays pending and is counted as
            `retryable`, for a later batch retry.
        policy: In-process retries per check.
        now: The clock for a test or a replay; the real time when None.
        sleep: How to wait between retries (tests pass a no-op).
        rng: Jitter source.

    Raises:
        PayerConfigError: The payer's adapter is not set up; every check of the batch is first
            recorded unverified, with a work item.
    """
    policy = policy or RetryPolicy()
    rng = rng or random.Random()

    def clock() -> datetime:
        return now if now is not None else utcnow()

    outcome = BatchOutcome()
    if not check_ids:
        return outcome
    today = local_today(clock(), settings.practice_timezone)
    payer, ref = _load_payer(factory, settings, payer_id)
    jobs = _Jobs(factory, settings, payer_id, ref, check_ids, today)
    recorder = _Recorder(factory)
    try:
        await _ask_all(payer, jobs, adapters, recorder, outcome, policy, final, clock, sleep, rng)
    finally:
        await recorder.close()
    log.info("payer %d: %s", payer_id, dict(outcome.counts))
    return outcome


async def _ask_all(
    payer: _Payer,
    jobs: _Jobs,
    adapters: AdapterFactory,
    recorder: _Recorder,
    outcome: BatchOutcome,
    policy: RetryPolicy,
    final: bool,
    clock: Callable[[], datetime],
    sleep: Callable[[float], Awaitable[None]],
    rng: random.Random,
) -> None:
    # Payers answer in 1-5 s but may take a minute (CORE: 60 s); the read timeout allows it.
    timeout = httpx.Timeout(90.0, connect=10.0, pool=None)
    transport = PooledTransport(payer.concurrency)
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
        try:
            adapter = adapters(payer.adapter, config=payer.config, client=client)
        except PayerConfigError as exc:
            for job in jobs:
                alert = failure_alert(job.context, "payer_config")
                done = _failed(job, clock(), alert, f"payer adapter is not set up: {exc}", 0)
                _count(outcome, done)
                recorder.add(done)
            raise
        asker = _Asker(adapter, payer, policy, final, clock, sleep, rng)
        queue: Iterator[_Job] = iter(jobs)

        async def worker() -> None:
            for job in queue:
                done = await asker.ask(job)
                _count(outcome, done)
                recorder.add(done)

        # More workers than slots, so checks sleeping between retries leave no slot idle.
        workers = min(len(jobs), payer.concurrency * 4)
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(worker())


class PooledTransport(httpx.AsyncBaseTransport):
    """httpx's own transport, as several small connection pools taking requests in turn.

    httpcore looks at every connection of its pool, with a syscall each, whenever a request
    starts or ends; at 50 connections that costs more CPU than the request itself. Pools of
    about five keep the same concurrency cheap. Each pool has a little headroom so an uneven
    turn seldom makes a request wait while another pool is idle; the callers' semaphore still
    bounds how many requests are in flight.
    """

    def __init__(self, connections: int, *, per_pool: int = 5) -> None:
        count = max(1, -(-connections // per_pool))
        size = -(-connections // count) + 2
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        tls = httpx.create_ssl_context()  # loading the CA bundle once, not once per pool
        self._pools = [httpx.AsyncHTTPTransport(verify=tls, limits=limits) for _ in range(count)]
        self._turn = itertools.cycle(self._pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await next(self._turn).handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


class _Asker:
    """Sends one check at a time under the payer's limits; retries what is worth retrying."""

    def __init__(
        self,
        adapter: PayerAdapter,
        payer: _Payer,
        policy: RetryPolicy,
        final: bool,
        clock: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]],
        rng: random.Random,
    ) -> None:
        self.adapter = adapter
        self.policy = policy
        self.final = final
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        self.slots = asyncio.Semaphore(payer.concurrency)
        self.bucket = TokenBucket(payer.rate, burst=payer.concurrency, sleep=sleep)

    async def ask(self, job: _Job) -> _Answer:
        if job.request is None:
            alert = registration_alert(job.context, "missing_subscriber")
            error = job.problem or "inquiry could not be built"
            return _failed(job, self.clock(), alert, error, 0, status=CheckStatus.ERROR)
        last: PayerResponse | None = None
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            problem = ""
            async with self.slots:
                await self.bucket.take()
                try:
                    response = await self.adapter.check(job.request)
                except PayerRetryableError as exc:
                    retry_after = exc.retry_after
                    problem = f"{type(exc).__name__}: {exc}"
                    if exc.raw is not None:
                        # A payer-level AAA 42 is still an answer worth keeping.
                        last = _answer_in(exc)
                except PayerResponseInvalid as exc:
                    alert = failure_alert(job.context, "payer_response_invalid")
                    error = f"payer answer could not be read: {exc}"
                    status = CheckStatus.ERROR
                    return _failed(
                        job, self.clock(), alert, error, attempt, status=status, raw=exc.raw
                    )
                except PayerConfigError:
                    raise
                except PayerError as exc:
                    alert = failure_alert(job.context, "payer_rejected")
                    error = f"payer refused the inquiry ({type(exc).__name__}): {exc}"
                    return _failed(job, self.clock(), alert, error, attempt)
                else:
                    if response.result.trace not in (None, job.request.trace):
                        alert = failure_alert(job.context, "trace_mismatch")
                        error = "payer answer is for another inquiry (its trace is not ours)"
                        return _failed(
                            job,
                            self.clock(),
                            alert,
                            error,
                            attempt,
                            status=CheckStatus.ERROR,
                            response=response,
                        )
                    if not _retry_later(response.result):
                        return _answered(job, self.clock(), response, attempt)
                    last, problem = response, "payer asked to retry later (AAA)"
            if attempt >= self.policy.attempts:
                return self._give_up(job, last, problem, attempt)
            await self.sleep(self.policy.delay(attempt, retry_after, self.rng))

    def _give_up(
        self, job: _Job, last: PayerResponse | None, problem: str, attempts: int
    ) -> _Answer:
        if not self.final:
            return _Answer(
                check_id=job.check_id,
                status=CheckStatus.PENDING,
                attempts=job.attempts + attempts,
                checked_at=None,
                entity=job.entity,
                due_at=job.due_at,
                error=problem,
            )
        if last is not None:
            return _answered(job, self.clock(), last, attempts, exhausted=True)
        context = replace(job.context, retries_exhausted=True)
        alert = failure_alert(context, "payer_unavailable")
        return _failed(job, self.clock(), alert, problem, attempts)


def _answer_in(error: PayerRetryableError) -> PayerResponse:
    """The answer a retryable error carried (its raw text and AAA), as an unverified result."""
    raw = error.raw or ""
    text = raw.lstrip("\ufeff \r\n\t")
    return PayerResponse(
        result=EligibilityResult(status=CoverageStatus.UNVERIFIED, aaa=error.aaa),
        raw=raw,
        raw_format="x12" if text.startswith("ISA") else "json",
    )


def _retry_later(result: EligibilityResult) -> bool:
    return any(a.action is AaaAction.RETRY_LATER for a in result.aaa)


_STATUS = {
    CoverageStatus.ACTIVE: CheckStatus.ACTIVE,
    CoverageStatus.INACTIVE: CheckStatus.INACTIVE,
    CoverageStatus.UNVERIFIED: CheckStatus.UNVERIFIED,
}


def _answered(
    job: _Job, at: datetime, response: PayerResponse, attempts: int, *, exhausted: bool = False
) -> _Answer:
    result = response.result
    context = replace(job.context, retries_exhausted=True) if exhausted else job.context
    ends = [d for d in (result.plan_end, result.eligibility_end) if d is not None]
    return _Answer(
        check_id=job.check_id,
        status=_STATUS[result.status],
        attempts=job.attempts + attempts,
        checked_at=at,
        entity=job.entity,
        due_at=job.due_at,
        result=result,
        raw=response.raw,
        raw_format=response.raw_format,
        copay=visit_copay(result, context.service_type),
        deductible_remaining=deductible_remaining(result),
        plan_end=min(ends) if ends else None,
        alerts=tuple(alerts_for(result, context)),
    )


def _failed(
    job: _Job,
    at: datetime,
    alert: Alert,
    error: str,
    attempts: int,
    *,
    status: CheckStatus = CheckStatus.UNVERIFIED,
    response: PayerResponse | None = None,
    raw: str | None = None,
) -> _Answer:
    """No usable answer: the check is unverified (or error), with exactly one alert."""
    return _Answer(
        check_id=job.check_id,
        status=status,
        attempts=job.attempts + attempts,
        checked_at=at,
        entity=job.entity,
        due_at=job.due_at,
        raw=response.raw if response is not None else raw,
        raw_format=response.raw_format if response is not None else None,
        error=error,
        alerts=(alert,),
    )


def _count(outcome: BatchOutcome, answer: _Answer) -> None:
    counts = outcome.counts
    if answer.status is CheckStatus.PENDING:
        counts["retryable"] += 1
        return
    counts["checked"] += 1
    counts["errors" if answer.status is CheckStatus.ERROR else answer.status.value] += 1
    for alert in answer.alerts:
        counts["alerts"] += 1
        counts[f"alert_{alert.kind.value}"] += 1


# --- loading and storing -----------------------------------------------------------------------


def _load_payer(
    factory: sessionmaker[Session], settings: Settings, payer_id: int
) -> tuple[_Payer, _PayerRef]:
    with factory() as session:
        payer = session.get(Payer, payer_id)
        if payer is None:
            raise ValueError(f"payer {payer_id} does not exist")
        concurrency = payer.concurrency_limit or settings.payer_concurrency
        info = _Payer(
            id=payer.id,
            adapter=payer.adapter,
            config=adapter_config(payer, settings),
            concurrency=max(1, concurrency),
            rate=payer.rate_per_second or settings.payer_rate_per_second,
        )
        return info, _PayerRef(payer.payer_id, payer.name)


@dataclass(frozen=True, slots=True)
class _PayerRef:
    payer_id: str
    name: str


class _Jobs:
    """The batch's pending checks, read a chunk at a time as the workers ask for them.

    Sending starts after the first chunk is read instead of after all of them, and the rest
    is read while the event loop would otherwise wait on the network.
    """

    chunk = 250

    def __init__(
        self,
        factory: sessionmaker[Session],
        settings: Settings,
        payer_id: int,
        payer: _PayerRef,
        check_ids: Sequence[int],
        today: date,
    ) -> None:
        self._factory = factory
        self._payer_id = payer_id
        self._payer = payer
        self._ids = sorted(set(check_ids))
        self._today = today
        self._threshold = Decimal(settings.deductible_alert_threshold)
        self._providers: dict[int, tuple[str, str, str]] = {}

    def __len__(self) -> int:
        """At most this many jobs: the ids asked for (answered ones are skipped when read)."""
        return len(self._ids)

    def __iter__(self) -> Iterator[_Job]:
        for chunk in _chunks(self._ids, self.chunk):
            yield from self._load(chunk)

    def _load(self, ids: Sequence[int]) -> list[_Job]:
        check, coverage, patient = EligibilityCheck, Coverage, Patient
        query = (
            select(
                check.id,
                check.trace,
                check.attempts,
                check.appointment_id,
                check.coverage_id,
                check.patient_id,
                check.date_of_service,
                check.service_type,
                check.request_summary["provider_id"].as_integer(),
                Appointment.start_at,
                coverage.relationship_code,
                coverage.member_id,
                coverage.group_number,
                coverage.copay_on_file,
                coverage.subscriber_first_name,
                coverage.subscriber_last_name,
                coverage.subscriber_date_of_birth,
                coverage.subscriber_sex,
                patient.first_name,
                patient.last_name,
                patient.date_of_birth,
                patient.sex,
                patient.middle_name,
                patient.suffix,
            )
            .join(coverage, coverage.id == check.coverage_id)
            .join(patient, patient.id == check.patient_id)
            .outerjoin(Appointment, Appointment.id == check.appointment_id)
            .where(
                check.id.in_(ids),
                check.payer_id == self._payer_id,
                check.status == CheckStatus.PENDING,
            )
            .order_by(check.id)
        )
        with self._factory() as session:
            rows = session.execute(query).all()
            self._add_providers(session, {row[8] for row in rows})
            copays = _previous_copays(session, {row[4] for row in rows})
        return [self._job(row, copays) for row in rows]

    def _add_providers(self, session: Session, ids: set[int]) -> None:
        missing = sorted(ids - set(self._providers))
        if missing:
            rows = session.execute(
                select(Provider.id, Provider.npi, Provider.first_name, Provider.last_name).where(
                    Provider.id.in_(missing)
                )
            )
            self._providers.update((pid, (npi, first, last)) for pid, npi, first, last in rows)

    def _job(self, row: Any, copays: dict[int, Decimal]) -> _Job:
        (check_id, trace, attempts, appointment_id, coverage_id, patient_id, dos, stc) = row[:8]
        provider_id, start_at, relationship, member_id, group, copay_on_file = row[8:14]
        npi, provider_first, provider_last = self._providers[provider_id]
        context = AlertContext(
            date_of_service=dos,
            service_type=stc,
            today=self._today,
            appointment_id=appointment_id,
            patient_id=patient_id,
            rendering_npi=npi,
            copay_on_file=copay_on_file,
            previous_copay=copays.get(coverage_id),
            deductible_threshold=self._threshold,
        )
        if appointment_id is not None:
            entity: tuple[str, int] = ("appointment", appointment_id)
        else:
            entity, start_at = ("patient", patient_id), None
        first, last, born, sex, middle, suffix = row[18:24]
        patient = Person(
            first_name=first,
            last_name=last,
            date_of_birth=born,
            sex=sex,
            middle_name=middle,
            suffix=suffix,
        )
        try:
            subscriber, dependent = _insured(
                patient,
                coverage_id=coverage_id,
                relationship_code=relationship,
                member_id=member_id,
                group_number=group,
                subscriber=(row[14], row[15], row[16], row[17]),
            )
        except MissingSubscriber as exc:
            return _Job(check_id, attempts, entity, start_at, context, None, str(exc))
        request = EligibilityRequest(
            trace=trace,
            payer_id=self._payer.payer_id,
            payer_name=self._payer.name,
            provider_npi=npi,
            provider_name=provider_last,
            provider_first_name=provider_first,
            subscriber=subscriber,
            dependent=dependent,
            date_of_service=dos,
            service_type=stc,
        )
        return _Job(check_id, attempts, entity, start_at, context, request)


def _previous_copays(session: Session, coverage_ids: Iterable[int]) -> dict[int, Decimal]:
    """The visit copay the latest active answer found, per coverage."""
    found: dict[int, tuple[datetime, Decimal]] = {}
    for chunk in _chunks(sorted(coverage_ids)):
        rows = session.execute(
            select(
                EligibilityCheck.coverage_id, EligibilityCheck.checked_at, EligibilityCheck.copay
            ).where(
                EligibilityCheck.coverage_id.in_(chunk),
                EligibilityCheck.status == CheckStatus.ACTIVE,
                EligibilityCheck.copay.is_not(None),
                EligibilityCheck.checked_at.is_not(None),
            )
        )
        for coverage_id, checked_at, copay in rows:
            if checked_at is None or copay is None:
                continue
            if coverage_id not in found or checked_at > found[coverage_id][0]:
                found[coverage_id] = (checked_at, copay)
    return {coverage_id: copay for coverage_id, (_at, copay) in found.items()}


class _Recorder:
    """Stores answers as they arrive, in small transactions, without stalling the requests.

    On SQLite the writes run on the event loop's own thread: in a worker thread each
    SQLite step waits for the GIL behind the HTTP work, a convoy that cost seconds per
    thousand checks. On PostgreSQL they run on one writer thread, in order: the driver
    lets go of the GIL while the server works, so the requests go on meanwhile instead
    of waiting for each commit. Answers are written once `max_rows` wait or `max_wait`
    seconds after the first, so a crash loses at most those; their checks are still
    pending and a retried batch asks again.
    """

    def __init__(
        self, factory: sessionmaker[Session], *, max_rows: int = 100, max_wait: float = 0.2
    ) -> None:
        self._factory = factory
        self._max_rows = max_rows
        self._max_wait = max_wait
        self._queue: list[_Answer] = []
        self._timer: asyncio.TimerHandle | None = None
        self._error: BaseException | None = None
        self._writer = (
            None
            if factory.kw["bind"].dialect.name == "sqlite"
            else concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="answers")
        )
        self._writes: list[asyncio.Future[None]] = []

    def add(self, answer: _Answer) -> None:
        self._raise_failure()
        self._queue.append(answer)
        if len(self._queue) >= self._max_rows:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._max_wait, self._flush)

    async def close(self) -> None:
        self._flush()
        try:
            if self._writes:
                await asyncio.gather(*self._writes, return_exceptions=True)
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
        self._raise_failure()

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._queue = self._queue, []
        if not batch or self._error is not None:
            return
        if self._writer is None:
            self._store(batch)
            return
        self._writes = [write for write in self._writes if not write.done()]
        self._writes.append(
            asyncio.get_running_loop().run_in_executor(self._writer, self._store, batch)
        )

    def _store(self, batch: list[_Answer]) -> None:
        if self._error is not None:
            return
        try:
            store_answers(self._factory, batch)
        except SQLAlchemyError as exc:
            # SQLAlchemy puts the statement's parameters (raw 271s, names) in its message, and
            # Prefect records whatever a task raises: keep the kind, drop the text.
            self._error = AnswersNotStored(len(batch), type(exc).__name__)
        except BaseException as exc:
            # Raised at the next add or at close: a timer callback has no caller to tell.
            self._error = exc

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error


def store_answers(factory: sessionmaker[Session], answers: Sequence[_Answer]) -> None:
    """Write answers and the work items they raise in one transaction."""
    with transaction(factory) as session:
        session.execute(update(EligibilityCheck), [_row(answer) for answer in answers])
        _open_work_items(session, answers)


def _open_work_items(session: Session, answers: Sequence[_Answer]) -> None:
    """`ledgers.open_work_item` for many alerts at once: one read, one insert, one update.

    The same rules: one item per (kind, record); a repeat refreshes it; done reopens;
    dismissed stays dismissed. Should another writer insert one of the same keys meanwhile,
    the insert is undone and each item goes through `open_work_item` itself.
    """
    wanted: dict[str, dict[str, Any]] = {}
    for answer in answers:
        entity, entity_id = answer.entity
        for alert in answer.alerts:
            key = f"{alert.kind.value}:{entity}:{entity_id}"
            wanted[key] = {
                "kind": alert.kind.value,
                "entity": entity,
                "entity_id": entity_id,
                "summary": alert.summary,
                "role": alert.role,
                "due_at": answer.due_at,
                "detail": {"check_id": answer.check_id, **alert.detail},
            }
    if not wanted:
        return
    now = utcnow()
    existing: dict[str, tuple[int, WorkStatus]] = {}
    for chunk in _chunks(sorted(wanted)):
        rows = session.execute(
            select(WorkItem.dedupe_key, WorkItem.id, WorkItem.status).where(
                WorkItem.dedupe_key.in_(chunk)
            )
        )
        existing.update((key, (item_id, status)) for key, item_id, status in rows)
    refreshed = []
    for key, (item_id, status) in existing.items():
        item = wanted[key]
        row = {
            "id": item_id,
            "summary": item["summary"],
            "due_at": item["due_at"],
            "detail": item["detail"],
            "updated_at": now,
        }
        if status is WorkStatus.DONE:
            row.update(status=WorkStatus.OPEN, closed_at=None, closed_by=None)
        refreshed.append(row)
    if refreshed:
        session.execute(update(WorkItem), refreshed)
    fresh = [
        {**item, "dedupe_key": key, "status": WorkStatus.OPEN, "created_at": now, "updated_at": now}
        for key, item in wanted.items()
        if key not in existing
    ]
    if not fresh:
        return
    try:
        with session.begin_nested():
            session.execute(insert(WorkItem), fresh)
    except IntegrityError:
        for item in fresh:
            open_work_item(
                session,
                kind=item["kind"],
                entity=item["entity"],
                entity_id=item["entity_id"],
                summary=item["summary"],
                role=item["role"],
                due_at=item["due_at"],
                detail=item["detail"],
            )


def _row(answer: _Answer) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": answer.check_id,
        "status": answer.status,
        "attempts": answer.attempts,
        "error": answer.error,
    }
    if answer.status is not CheckStatus.PENDING:
        result = answer.result
        row.update(
            checked_at=answer.checked_at,
            raw=answer.raw,
            raw_format=answer.raw_format,
            result=result.to_json() if result is not None else None,
            copay=answer.copay,
            deductible_remaining=answer.deductible_remaining,
            plan_end=answer.plan_end,
        )
    return row


def summarize(session: Session, check_ids: Sequence[int]) -> Counter[str]:
    """Counts for a run, read back from what was stored: outcomes and alerts by kind.

    Read from the database rather than added up in memory, so a batch that was retried (or
    a run that was restarted) is counted once, as it ended.
    """
    counts: Counter[str] = Counter(dict.fromkeys(OUTCOMES, 0))
    counts["due"] = len(check_ids)
    wanted = set(check_ids)
    entities: dict[str, set[int]] = {}
    for chunk in _chunks(sorted(wanted)):
        rows = session.execute(
            select(
                EligibilityCheck.status,
                EligibilityCheck.appointment_id,
                EligibilityCheck.patient_id,
            ).where(EligibilityCheck.id.in_(chunk))
        )
        for status, appointment_id, patient_id in rows:
            if status is CheckStatus.PENDING:
                counts["pending"] += 1
                continue
            counts["checked"] += 1
            counts["errors" if status is CheckStatus.ERROR else status.value] += 1
            if appointment_id is not None:
                entities.setdefault("appointment", set()).add(appointment_id)
            else:
                entities.setdefault("patient", set()).add(patient_id)
    for entity, ids in entities.items():
        for chunk in _chunks(sorted(ids)):
            items = session.execute(
                select(WorkItem.kind, WorkItem.detail).where(
                    WorkItem.entity == entity, WorkItem.entity_id.in_(chunk)
                )
            )
            for kind, detail in items:
                if (detail or {}).get("check_id") in wanted:
                    counts["alerts"] += 1
                    counts[f"alert_{kind}"] += 1
    return counts


def _chunks(items: Sequence[_T], size: int = _CHUNK) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
