"""Each payer's limits as Prefect global concurrency limits, held by every run on every worker.

Two limits per payer, because Prefect cannot make one limit do both (a decaying limit's
slots are also freed by the decay, so it would count fewer requests in flight than there are):

- `payer:<code>`: requests in flight; a batch holds as many slots as it sends at once until
  it ends (with a lease, so a killed worker's slots come back after `LEASE_SECONDS`);
- `payer:<code>:rate`: requests per second; each request spends one slot, which decays at
  the payer's rate (`slot_decay_per_second`), up to a burst of its concurrency.

`sync_payer_limits` creates or updates them from the payers table: `office serve` and
`office prefect setup` for every payer, each eligibility run for the payers it asks, so a
payer added since is never asked without its limits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import httpx
from prefect.client.orchestration import PrefectClient, get_client
from prefect.concurrency.asyncio import concurrency, rate_limit
from prefect.exceptions import ObjectAlreadyExists

from office.eligibility import PayerLimit, RateTokens

__all__ = ["LEASE_SECONDS", "PrefectPayerGate", "limit_names", "sync_payer_limits"]

LEASE_SECONDS = 60  # the shortest lease Prefect's API grants


def limit_names(payer_code: str) -> tuple[str, str]:
    """The payer's (in flight, per second) global concurrency limit names."""
    return f"payer:{payer_code}", f"payer:{payer_code}:rate"


async def sync_payer_limits(limits: Iterable[PayerLimit]) -> list[str]:
    """Create each payer's two limits, or bring them to the payers table's values."""
    names = []
    async with get_client() as client:
        for limit in limits:
            in_flight, per_second = limit_names(limit.payer_code)
            await _upsert(client, in_flight, limit.concurrency, None)
            await _upsert(client, per_second, limit.concurrency, limit.rate)
            names += [in_flight, per_second]
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
    """A batch holds its slots of `payer:<code>` while it asks, and takes rate tokens in chunks.

    Holding per batch, not per request, keeps Prefect out of the request path: one
    acquisition and one release per batch (renewed while it runs), and one rate call per
    `slots` requests, where a call per request would be two writes to Prefect's database
    for every inquiry. A missing limit is an error, never a silent pass (`strict=True`).
    """

    @asynccontextmanager
    async def hold(self, limit: PayerLimit, slots: int) -> AsyncIterator[RateTokens]:
        in_flight, per_second = limit_names(limit.payer_code)
        async with concurrency(in_flight, occupy=slots, strict=True, lease_duration=LEASE_SECONDS):
            yield _Tokens(per_second, chunk=slots)


class _Tokens:
    """Rate tokens taken from the payer's shared rate `chunk` at a time, spent one a request."""

    def __init__(self, name: str, *, chunk: int) -> None:
        self.name = name
        self.chunk = chunk
        self.left = 0
        self.lock = asyncio.Lock()

    async def take(self) -> None:
        async with self.lock:
            if self.left == 0:
                await rate_limit(self.name, occupy=self.chunk, strict=True)
                self.left = self.chunk
            self.left -= 1
