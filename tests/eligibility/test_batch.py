"""Asking one payer for a batch: limits, retries, faults, and every answer stored once."""

from __future__ import annotations

import asyncio
import random
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from office.contracts.payers import PayerConfigError
from office.db import transaction
from office.eligibility import (
    AnswersNotStored,
    BatchConfig,
    BatchOutcome,
    RetryPolicy,
    TokenBucket,
    record_pending,
    run_batch,
    select_due,
    summarize,
)
from office.eligibility.types import EligibilityRequest
from office.models import CheckStatus, EligibilityCheck, WorkItem, WorkStatus
from office.settings import Settings
from tests.eligibility.builders import (
    NOW,
    TODAY,
    FakePayer,
    appointment,
    clinic,
    days,
    first_name,
    patient,
)

QUICK = RetryPolicy(attempts=3, base_delay=1.0, jitter=0.5)


class Sleeps:
    """Records each wait instead of waiting: no test depends on time passing."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


def prepare(
    factory: sessionmaker[Session], count: int, *, run_key: str = "run-1", **place: Any
) -> tuple[int, list[int]]:
    with transaction(factory) as session:
        clinic_ = clinic(session, **place)
        for n in range(count):
            person, _ = patient(session, clinic_, n)
            appointment(session, clinic_, person, day=TODAY + days(1))
        due = select_due(session, now=NOW, today=TODAY, days_ahead=3, refresh_after_days=7)
        [(payer_id, ids)] = record_pending(session, due, run_key=run_key, now=NOW).items()
    return payer_id, ids


def config(
    settings: Settings,
    payers: Any,
    *,
    final: bool = True,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    policy: RetryPolicy = QUICK,
) -> BatchConfig:
    return BatchConfig.from_settings(
        settings,
        payers=payers,
        final=final,
        now=NOW,
        policy=policy,
        sleep=sleep or Sleeps(),
        rng=random.Random(1),
    )


def run(
    factory: sessionmaker[Session],
    settings: Settings,
    payer_id: int,
    ids: list[int],
    fake: FakePayer,
    *,
    final: bool = True,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    policy: RetryPolicy = QUICK,
) -> BatchOutcome:
    batch = config(settings, fake, final=final, sleep=sleep, policy=policy)
    return asyncio.run(run_batch(factory, payer_id, ids, batch))


def checks(factory: sessionmaker[Session]) -> list[EligibilityCheck]:
    with factory() as session:
        return list(session.scalars(select(EligibilityCheck).order_by(EligibilityCheck.id)))


def work(factory: sessionmaker[Session]) -> list[WorkItem]:
    with factory() as session:
        return list(session.scalars(select(WorkItem).order_by(WorkItem.id)))


def test_answers_are_stored_with_result_raw_and_figures(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    payer_id, ids = prepare(factory, 3)
    fake = FakePayer()
    outcome = run(factory, settings, payer_id, ids, fake)
    assert outcome.counts["checked"] == 3
    assert outcome.counts["active"] == 3
    rows = checks(factory)
    for row in rows:
        assert row.status is CheckStatus.ACTIVE
        assert row.raw is not None
        assert row.raw.startswith("ISA")
        assert row.raw_format == "x12"
        assert row.result is not None
        assert row.result["status"] == "active"
        assert row.copay == Decimal("25")
        assert row.deductible_remaining == Decimal("500")
        assert row.plan_end is not None
        assert row.checked_at == NOW
        assert row.attempts == 1
    # The request carried the row's own trace.
    assert set(fake.requests) == {row.trace for row in rows}
    # The default sandbox-like answer is an HMO-free PPO with the copay on file: no alerts.
    assert work(factory) == []
    # The adapter was opened once, with the payer's own settings and its concurrency.
    assert (fake.settings, fake.connections, fake.open_now) == ([{}], [4], 0)


def test_faults_end_verified_or_unverified_with_one_work_item(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    payer_id, ids = prepare(factory, 40)
    fake = FakePayer(fault_rate=0.2, seed=3)
    for _round in range(2):
        run(factory, settings, payer_id, ids, fake)
    assert sum(fake.outcomes[f] for f in ("5xx", "429", "timeout", "aaa42")) > 0
    items = work(factory)
    by_appointment = Counter(item.entity_id for item in items)
    for row in checks(factory):
        if row.status is CheckStatus.ACTIVE:
            assert row.appointment_id not in by_appointment
        else:
            assert row.status is CheckStatus.UNVERIFIED
            assert by_appointment[row.appointment_id] == 1
            assert row.attempts == QUICK.attempts
    assert all(item.kind == "unverified" for item in items)
    assert len({item.dedupe_key for item in items}) == len(items)


def test_a_retried_batch_sends_only_what_is_still_pending(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    payer_id, ids = prepare(factory, 4)
    first_trace: list[str] = []

    def decide(request: EligibilityRequest, attempt: int) -> str:
        if not first_trace:
            first_trace.append(request.trace)
        # One check's payer is down for the whole first run, then recovers.
        return "5xx" if request.trace == first_trace[0] and attempt <= 3 else "ok"

    fake = FakePayer(decide=decide)
    outcome = run(factory, settings, payer_id, ids, fake, final=False)
    assert outcome.pending == 1
    assert outcome.counts["active"] == 3
    pending = [row for row in checks(factory) if row.status is CheckStatus.PENDING]
    assert [row.trace for row in pending] == first_trace
    assert pending[0].attempts == 3
    assert "HTTP 503" in (pending[0].error or "")
    assert work(factory) == [], "nothing is unverified before the last try"

    again = run(factory, settings, payer_id, ids, fake, final=True)
    assert again.counts["checked"] == 1
    assert again.pending == 0
    assert sum(fake.attempts.values()) == 3 + 3 + 1
    assert all(row.status is CheckStatus.ACTIVE for row in checks(factory))
    assert checks(factory)[0].attempts == 4


def test_last_try_records_unverified_with_the_payers_aaa(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    payer_id, ids = prepare(factory, 2)
    fake = FakePayer(decide=lambda request, attempt: "aaa42")
    outcome = run(factory, settings, payer_id, ids, fake)
    assert outcome.counts["unverified"] == 2
    for row in checks(factory):
        assert row.status is CheckStatus.UNVERIFIED
        assert row.raw is not None
        assert "AAA*Y**42*R" in row.raw
    items = work(factory)
    assert [i.kind for i in items] == ["unverified", "unverified"]
    assert all(i.detail["reason"] == "payer_unavailable" for i in items)
    assert all("after retries" in i.summary for i in items)


def test_malformed_answer_is_an_error_and_the_others_continue(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    payer_id, ids = prepare(factory, 5)
    fake = FakePayer(decide=lambda request, attempt: "ok")
    bad: list[str] = []

    def decide(request: EligibilityRequest, attempt: int) -> str:
        if not bad:
            bad.append(request.trace)
        return "malformed" if request.trace == bad[0] else "ok"

    fake.decide = decide
    outcome = run(factory, settings, payer_id, ids, fake)
    assert outcome.counts["errors"] == 1
    assert outcome.counts["active"] == 4
    broken = next(row for row in checks(factory) if row.trace == bad[0])
    assert broken.status is CheckStatus.ERROR
    assert broken.error is not None
    assert broken.error.startswith("payer answer could not be read")
    assert broken.raw == "ISA*00*this is not a 271~"
    assert fake.attempts[bad[0]] == 1, "an unreadable answer is not asked again"
    [item] = work(factory)
    assert item.kind == "unverified"
    assert item.detail["reason"] == "payer_response_invalid"


def test_patient_answers_raise_their_alerts(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    payer_id, ids = prepare(factory, 3)
    order: list[str] = []

    def decide(request: EligibilityRequest, attempt: int) -> str:
        if request.trace not in order:
            order.append(request.trace)
        return ("inactive", "aaa72", "aaa76")[order.index(request.trace)]

    run(factory, settings, payer_id, ids, FakePayer(decide=decide))
    statuses = {row.trace: row.status for row in checks(factory)}
    assert [statuses[t] for t in order] == [
        CheckStatus.INACTIVE,
        CheckStatus.UNVERIFIED,
        CheckStatus.UNVERIFIED,
    ]
    kinds = sorted(item.kind for item in work(factory))
    assert kinds == ["ambiguous_match", "fix_patient_data", "not_active"]
    # Patient-level problems: one item for the patient, listing the visit, due before it.
    assert all(item.entity == "patient" and item.due_at is not None for item in work(factory))


def test_retry_after_is_honoured_and_backoff_grows(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    payer_id, ids = prepare(factory, 1)
    sleeps = Sleeps()
    fake = FakePayer(decide=lambda request, attempt: "429" if attempt == 1 else "5xx")
    policy = RetryPolicy(attempts=4, base_delay=1.0, jitter=0.5, max_retry_after=60)
    run(factory, settings, payer_id, ids, fake, sleep=sleeps, policy=policy)
    first, second, third = [w for w in sleeps.waits if w > 0]
    assert first >= 2.0, "the payer's Retry-After of 2 s is a floor"
    assert 1.0 <= second <= 3.0
    assert 2.0 <= third <= 6.0


def test_concurrency_never_exceeds_the_payer_limit(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    payer_id, ids = prepare(factory, 30, concurrency=4)
    fake = FakePayer()
    run(factory, settings, payer_id, ids, fake)
    assert fake.max_in_flight == 4
    assert len(fake.attempts) == 30


def test_unconfigured_payer_records_every_check_then_raises(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    payer_id, ids = prepare(factory, 3)

    class Unconfigured:
        @asynccontextmanager
        async def open(
            self, adapter: str, settings: Mapping[str, Any], *, connections: int
        ) -> AsyncIterator[FakePayer]:
            raise PayerConfigError("payer adapter 'fake' needs setting 'url'")
            yield FakePayer()  # pragma: no cover - never reached

    with pytest.raises(PayerConfigError):
        asyncio.run(run_batch(factory, payer_id, ids, config(settings, Unconfigured())))
    assert {row.status for row in checks(factory)} == {CheckStatus.UNVERIFIED}
    assert [i.detail["reason"] for i in work(factory)] == ["payer_config"] * 3


def test_dependent_without_subscriber_name_is_an_error_to_fix(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    with transaction(factory) as session:
        place = clinic(session)
        person, _ = patient(session, place, 1, relationship="19", subscriber_name=False)
        appointment(session, place, person, day=TODAY + days(1))
        due = select_due(session, now=NOW, today=TODAY, days_ahead=3, refresh_after_days=7)
        [(payer_id, ids)] = record_pending(session, due, run_key="r", now=NOW).items()
    fake = FakePayer()
    run(factory, settings, payer_id, ids, fake)
    [row] = checks(factory)
    assert row.status is CheckStatus.ERROR
    assert "subscriber" in (row.error or "")
    assert fake.attempts == Counter(), "nothing was sent"
    [item] = work(factory)
    assert item.kind == "fix_patient_data"
    assert item.role == "front_desk"


def test_summary_counts_outcomes_and_alert_kinds(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    payer_id, ids = prepare(factory, 3)
    order: list[str] = []

    def decide(request: EligibilityRequest, attempt: int) -> str:
        if request.trace not in order:
            order.append(request.trace)
        return ("ok", "inactive", "malformed")[order.index(request.trace)]

    run(factory, settings, payer_id, ids, FakePayer(decide=decide))
    with factory() as session:
        counts = summarize(session, ids)
    assert counts == Counter(
        due=3,
        checked=3,
        active=1,
        inactive=1,
        errors=1,
        alerts=2,
        alert_not_active=1,
        alert_unverified=1,
    )


def test_a_problem_back_after_its_item_was_done_opens_a_new_item(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    payer_id, ids = prepare(factory, 1)
    fake = FakePayer(decide=lambda request, attempt: "inactive")
    run(factory, settings, payer_id, ids, fake)
    with transaction(factory) as session:
        item = session.scalars(select(WorkItem)).one()
        item.status = WorkStatus.DONE
        later = NOW + days(8)
        due = select_due(session, now=later, today=TODAY, days_ahead=3, refresh_after_days=7)
        [(_payer, again)] = record_pending(session, due, run_key="run-2", now=NOW).items()
    run(factory, settings, payer_id, again, fake)
    with factory() as session:
        first, second = session.scalars(select(WorkItem).order_by(WorkItem.id)).all()
        assert (first.id, first.status) == (item.id, WorkStatus.DONE)
        assert second.status is WorkStatus.OPEN
        assert second.detail["check_id"] == again[0]


# --- the token bucket -----------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock, sleep=clock.sleep)

    async def take(n: int) -> list[float]:
        moments = []
        for _ in range(n):
            await bucket.take()
            moments.append(round(clock.now - 100.0, 6))
        return moments

    assert asyncio.run(take(6)) == [0.0, 0.0, 0.0, 0.1, 0.2, 0.3]


def test_token_bucket_waiters_do_not_queue_behind_each_other() -> None:
    """Concurrent takers each reserve their own slot: 20 at 10/s finish within 2 s."""
    clock = FakeClock()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    bucket = TokenBucket(rate=10, burst=1, clock=clock, sleep=sleep)

    async def main() -> None:
        await asyncio.gather(*(bucket.take() for _ in range(20)))

    asyncio.run(main())
    assert sorted(waits) == pytest.approx([n / 10 for n in range(1, 20)])


def test_token_bucket_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucket(rate=0, burst=1)


REFUSE_SQLITE = """
CREATE TRIGGER refuse BEFORE UPDATE ON eligibility_checks
BEGIN SELECT RAISE(ABORT, 'refused'); END
"""
REFUSE_FUNCTION_PG = """
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql
AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$
"""
REFUSE_TRIGGER_PG = """
CREATE TRIGGER refuse BEFORE UPDATE ON eligibility_checks
FOR EACH ROW EXECUTE FUNCTION refuse()
"""


def test_a_database_failure_keeps_checks_pending_and_says_nothing_of_the_patient(
    factory: sessionmaker[Session], settings: Settings
) -> None:
    payer_id, ids = prepare(factory, 3)
    with transaction(factory) as session:
        # The database now refuses every answer, as it would when full or read-only; the
        # refused statement carries the raw 271, names and all.
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text(REFUSE_SQLITE))
        else:
            session.execute(text(REFUSE_FUNCTION_PG))
            session.execute(text(REFUSE_TRIGGER_PG))
    fake = FakePayer(decide=lambda request, attempt: "inactive")
    with pytest.raises(AnswersNotStored) as raised:
        run(factory, settings, payer_id, ids, fake)
    message = "".join(traceback.format_exception(raised.value))
    assert "Quillfeather" not in message
    assert first_name(0) not in message
    assert "ISA" not in message
    assert {row.status for row in checks(factory)} == {CheckStatus.PENDING}
