"""Each payer's limits, held by every run on every worker through one Prefect global
concurrency limit.

`payer:<code>` counts the payer's requests in flight: a batch holds as many slots as it
sends at once until it ends (with a lease, so a killed worker's slots come back after
`LEASE_SECONDS`). The flows take them before the batch's task starts, and the task's own
hold finds them held (see `PrefectPayerGate`). The payer's requests per second are shared
the same way: a batch holding `slots` of the payer's `concurrency` sends at most
`rate * slots / concurrency` a second, and since all runs together never hold more than
`concurrency` slots, together they never send more than `rate` a second, with no call to
Prefect per request or per chunk of them.

`sync_payer_limits` creates or updates the limits from the payers table: `office serve` and
`office prefect setup` for every payer, each eligibility run for the payers it asks, so a
payer added since is never asked without its limit.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from time import monotonic

import httpx
from prefect.client.orchestration import PrefectClient, get_client
from prefect.concurrency.asyncio import concurrency
from prefect.exceptions import ObjectAlreadyExists

from office.eligibility import PayerLimit, RateTokens, TokenBucket

__all__ = ["LEASE_SECONDS", "PrefectPayerGate", "limit_name", "rate_share", "sync_payer_limits"]

LEASE_SECONDS = 60  # the shortest lease Prefect's API grants


def limit_name(payer_code: str) -> str:
    """The payer's global concurrency limit (requests in flight)."""
    return f"payer:{payer_code}"


async def sync_payer_limits(limits: Iterable[PayerLimit]) -> list[str]:
    """Create each payer's limit, or bring it to the payers table's value."""
    names = []
    async with get_client() as client:
        for limit in limits:
            name = limit_name(limit.payer_code)
            await _upsert(client, name, limit.concurrency, None)
            names.append(name)
    return names


async def _upsert(client: PrefectClient, name: str, limit: int, decay: float | None) -> None:
    """Prefect's upsert reads, then creates: a run that lost the race to create updates."""
    try:
        await client.upsert_global_concurrency_limit_by_name(name, limit, decay)
    except (ObjectAlreadyExists, httpx.HTTPStatusError) as exc:
        if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code != 409:
            raise
        await client.upsert_global_concurrency_limit_by_name(name, limit, decay)


class PrefectPayerGate:
    """A batch holds its slots of `payer:<code>` while it asks, and with them its share of the
    payer's rate.

    Holding per batch, not per request, keeps Prefect out of the request path: one
    acquisition and one release per batch (renewed while it runs). A missing limit is an
    error, never a silent pass (`strict=True`).

    A hold made where the same payer's slots are already held (in this asyncio task, or one
    it started) takes nothing more: it yields the outer hold's rate tokens. The flows take a
    payer's slots before its batch's task starts and the task's hold finds them (its retries
    too, so a batch waiting to retry keeps its slots rather than queue behind another run for
    them). Taken inside the task instead, the acquisition met the server's write of the
    task's new state; on a SQLite-backed server (`office serve`) that write made the
    acquisition's transaction fail with "database is locked", answered 503, and Prefect's
    client retried it 2 s later: in two of three benchmark rounds, before the batch's first
    inquiry.
    """

    @asynccontextmanager
    async def hold(self, limit: PayerLimit, slots: int) -> AsyncIterator[RateTokens]:
        held = _HELD.get({}).get(limit.payer_code)
        if held is not None and held.slots >= slots:
            yield held.tokens
            return
        async with concurrency(
            limit_name(limit.payer_code),
            occupy=slots,
            strict=True,
            lease_duration=LEASE_SECONDS,
        ):
            tokens = rate_share(limit, slots)
            mark = _HELD.set({**_HELD.get({}), limit.payer_code: _Held(slots, tokens)})
            try:
                yield tokens
            finally:
                _HELD.reset(mark)


@dataclass(frozen=True, slots=True)
class _Held:
    slots: int
    tokens: RateTokens


_HELD: ContextVar[Mapping[str, _Held]] = ContextVar("officeflows_payer_slots_held")
"""The payers' slots the current asyncio task holds, by payer code."""


def rate_share(
    limit: PayerLimit,
    slots: int,
    *,
    clock: Callable[[], float] = monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> TokenBucket:
    """The rate a batch holding `slots` of the payer's slots may send at: its share of them.

    Runs hold at most `limit.concurrency` slots between them, so their shares add up to the
    payer's rate at most. No bursts: each request is spaced from the last, so a batch that
    follows another brings no burst of its own. (Taking tokens from a shared Prefect rate
    limit a chunk at a time held every request up for the call's round trip 40 times per
    2,000 inquiries, and for about two seconds whenever it met another write on a
    SQLite-backed Prefect server.)
    """
    slots = max(1, min(slots, limit.concurrency))
    return TokenBucket(limit.rate * slots / limit.concurrency, burst=1, clock=clock, sleep=sleep)
