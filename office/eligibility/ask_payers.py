"""Asking one payer about a batch of checks: its limits, quick retries, every answer stored.

`run_batch` asks with asyncio, within the slots and rate tokens the run's `PayerGate`
grants the batch (the payer's limits, shared with every other run): a semaphore at those
slots, a token bucket at the payer's rate, and a few quick retries per check. The adapter
comes from the `PayerDirectory` the batch is given; the parameters every batch of a run
shares travel as one `BatchConfig`. What it returns is counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from time import monotonic
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from office.contracts.payers import (
    PayerConfigError,
    PayerDirectory,
    PayerError,
    PayerResponse,
    PayerResponseInvalid,
    PayerRetryableError,
)
from office.eligibility.alerts import failure_alert, registration_alert
from office.eligibility.inquiry import Inquiries, Inquiry, PayerRef
from office.eligibility.limits import NO_GATE, PayerGate, PayerLimit, RateTokens, payer_limit
from office.eligibility.select_due import local_today
from office.eligibility.store import Answer, Recorder, answered, failed
from office.eligibility.types import AaaAction, CoverageStatus, EligibilityResult
from office.models import CheckStatus, Payer, utcnow
from office.writes import Writer

if TYPE_CHECKING:
    from office.contracts.payers import PayerAdapter
    from office.settings import Settings

__all__ = [
    "BatchConfig",
    "BatchOutcome",
    "ChecksStillPending",
    "RetryPolicy",
    "TokenBucket",
    "run_batch",
]

log = logging.getLogger("office.eligibility")


class ChecksStillPending(Exception):
    """Some checks of a batch are still waiting on their payer; asking later may answer them."""

    def __init__(self, payer_id: int, pending: int) -> None:
        super().__init__(f"payer {payer_id}: {pending} checks still waiting on the payer")
        self.payer_id = payer_id
        self.pending = pending


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


@dataclass(frozen=True, slots=True)
class BatchConfig:
    """What every payer batch of a run shares.

    Args:
        payers: Opens each payer's adapter.
        final: Whether this is the last try: a check the payer still cannot answer is then
            recorded unverified with a work item; otherwise it stays pending and is counted
            as `retryable`, for a later batch retry.
        practice_timezone: Whose calendar says what "today" is.
        deductible_threshold: Deductible left above which a visit raises an alert.
        concurrency: Requests in flight for a payer that sets no limit of its own.
        rate: Requests per second for a payer that sets no rate of its own.
        policy: In-process retries per check.
        gate: Grants each batch its share of the payer's limits, shared with other runs
            and machines.
        clock: The time answers are stored at (a test's or a replay's fixed moment).
        sleep: How to wait between retries (tests record the waits instead).
        rng: Jitter source.
    """

    payers: PayerDirectory
    final: bool
    practice_timezone: str
    deductible_threshold: Decimal
    concurrency: int
    rate: float
    policy: RetryPolicy = RetryPolicy()
    gate: PayerGate = NO_GATE
    clock: Callable[[], datetime] = utcnow
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        payers: PayerDirectory,
        final: bool,
        now: datetime | None = None,
        **overrides: Any,
    ) -> BatchConfig:
        """The practice's defaults; `now` fixes the clock, `overrides` any other field."""
        config = cls(
            payers=payers,
            final=final,
            practice_timezone=settings.practice_timezone,
            deductible_threshold=Decimal(settings.deductible_alert_threshold),
            concurrency=settings.payer_concurrency,
            rate=settings.payer_rate_per_second,
        )
        if now is not None:
            overrides["clock"] = lambda: now
        return replace(config, **overrides)


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

    def add(self, answer: Answer) -> None:
        if answer.status is CheckStatus.PENDING:
            self.counts["retryable"] += 1
            return
        self.counts["checked"] += 1
        self.counts["errors" if answer.status is CheckStatus.ERROR else answer.status.value] += 1
        for alert in answer.alerts:
            self.counts["alerts"] += 1
            self.counts[f"alert_{alert.kind.value}"] += 1


@dataclass(frozen=True, slots=True)
class _Payer:
    """The payer row as a batch uses it: who it is, its adapter, and its limits."""

    ref: PayerRef
    adapter: str
    settings: dict[str, Any]
    limit: PayerLimit

    @property
    def concurrency(self) -> int:
        return self.limit.concurrency

    @property
    def rate(self) -> float:
        return self.limit.rate


async def run_batch(
    factory: sessionmaker[Session],
    payer_id: int,
    check_ids: Sequence[int],
    config: BatchConfig,
) -> BatchOutcome:
    """Ask one payer about the still-pending checks among `check_ids`, storing each answer.

    Args:
        factory: Sessions on the office database.
        payer_id: The payer (database id) every check belongs to.
        check_ids: Checks recorded by `record_pending`; answered ones are skipped.
        config: What the batches of this run share.

    Raises:
        PayerConfigError: The payer's adapter is not set up; every check of the batch is first
            recorded unverified, with a work item.
        AnswersNotStored: The database refused answers; their checks stay pending.
    """
    outcome = BatchOutcome()
    if not check_ids:
        return outcome
    payer = _load_payer(factory, payer_id, config)
    inquiries = Inquiries(
        factory,
        payer.ref,
        check_ids,
        today=local_today(config.clock(), config.practice_timezone),
        deductible_threshold=config.deductible_threshold,
    )
    async with Writer(factory) as writer:
        recorder = Recorder(writer)
        try:
            await _ask_all(payer, inquiries, config, recorder, outcome)
        finally:
            await recorder.close()
    log.info("payer %d: %s", payer_id, dict(outcome.counts))
    return outcome


def _load_payer(factory: sessionmaker[Session], payer_id: int, config: BatchConfig) -> _Payer:
    with factory() as session:
        payer = session.get(Payer, payer_id)
        if payer is None:
            raise ValueError(f"payer {payer_id} does not exist")
        return _Payer(
            ref=PayerRef(payer.id, payer.payer_code, payer.name),
            adapter=payer.adapter,
            settings=dict(payer.adapter_settings or {}),
            limit=payer_limit(payer, concurrency=config.concurrency, rate=config.rate),
        )


async def _ask_all(
    payer: _Payer,
    inquiries: Inquiries,
    config: BatchConfig,
    recorder: Recorder,
    outcome: BatchOutcome,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        try:
            adapter = await stack.enter_async_context(
                config.payers.open(payer.adapter, payer.settings, connections=payer.concurrency)
            )
        except PayerConfigError as exc:
            for inquiry in inquiries:
                alert = failure_alert(inquiry.context, "payer_config")
                error = f"payer adapter is not set up: {exc}"
                done = failed(inquiry, config.clock(), alert, error, 0)
                outcome.add(done)
                recorder.add(done)
            raise
        slots = payer.limit.slots_for(len(inquiries))
        tokens = await stack.enter_async_context(config.gate.hold(payer.limit, slots))
        asker = _Asker(adapter, payer, config, slots=slots, tokens=tokens)
        queue: Iterator[Inquiry] = iter(inquiries)

        async def worker() -> None:
            for inquiry in queue:
                done = await asker.ask(inquiry)
                outcome.add(done)
                recorder.add(done)

        # More workers than slots, so checks sleeping between retries leave no slot idle.
        workers = min(len(inquiries), slots * 4)
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(worker())


class _Asker:
    """Sends one check at a time under the payer's limits; retries what is worth retrying."""

    def __init__(
        self,
        adapter: PayerAdapter,
        payer: _Payer,
        config: BatchConfig,
        *,
        slots: int,
        tokens: RateTokens,
    ) -> None:
        self.adapter = adapter
        self.config = config
        self.slots = asyncio.Semaphore(slots)
        self.bucket = TokenBucket(payer.rate, burst=payer.concurrency, sleep=config.sleep)
        self.tokens = tokens

    async def ask(self, inquiry: Inquiry) -> Answer:
        clock, policy = self.config.clock, self.config.policy
        if inquiry.request is None:
            alert = registration_alert(inquiry.context, "missing_subscriber")
            error = inquiry.problem or "inquiry could not be built"
            return failed(inquiry, clock(), alert, error, 0, status=CheckStatus.ERROR)
        last: PayerResponse | None = None
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            problem = ""
            async with self.slots:
                await self.bucket.take()
                await self.tokens.take()
                try:
                    response = await self.adapter.check(inquiry.request)
                except PayerRetryableError as exc:
                    retry_after = exc.retry_after
                    problem = f"{type(exc).__name__}: {exc}"
                    if exc.raw is not None:
                        # A payer-level AAA 42 is still an answer worth keeping.
                        last = _answer_in(exc)
                except PayerResponseInvalid as exc:
                    alert = failure_alert(inquiry.context, "payer_response_invalid")
                    error = f"payer answer could not be read: {exc}"
                    status = CheckStatus.ERROR
                    return failed(
                        inquiry, clock(), alert, error, attempt, status=status, raw=exc.raw
                    )
                except PayerConfigError:
                    raise
                except PayerError as exc:
                    alert = failure_alert(inquiry.context, "payer_rejected")
                    error = f"payer refused the inquiry ({type(exc).__name__}): {exc}"
                    return failed(inquiry, clock(), alert, error, attempt)
                else:
                    if response.result.trace not in (None, inquiry.request.trace):
                        alert = failure_alert(inquiry.context, "trace_mismatch")
                        error = "payer answer is for another inquiry (its trace is not ours)"
                        return failed(
                            inquiry,
                            clock(),
                            alert,
                            error,
                            attempt,
                            status=CheckStatus.ERROR,
                            response=response,
                        )
                    if not _retry_later(response.result):
                        return answered(inquiry, clock(), response, attempt)
                    last, problem = response, "payer asked to retry later (AAA)"
            if attempt >= policy.attempts:
                return self._give_up(inquiry, last, problem, attempt)
            await self.config.sleep(policy.delay(attempt, retry_after, self.config.rng))

    def _give_up(
        self, inquiry: Inquiry, last: PayerResponse | None, problem: str, attempts: int
    ) -> Answer:
        if not self.config.final:
            return Answer(
                check_id=inquiry.check_id,
                status=CheckStatus.PENDING,
                attempts=inquiry.attempts + attempts,
                checked_at=None,
                entity=inquiry.entity,
                due_at=inquiry.due_at,
                error=problem,
            )
        at = self.config.clock()
        if last is not None:
            return answered(inquiry, at, last, attempts, exhausted=True)
        context = replace(inquiry.context, retries_exhausted=True)
        return failed(inquiry, at, failure_alert(context, "payer_unavailable"), problem, attempts)


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
