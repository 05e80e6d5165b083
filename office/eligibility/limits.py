"""Each payer's limits, and the gate a request passes beyond this process's own.

A payer row may set requests in flight (`concurrency_limit`) and requests per second
(`rate_per_second`); the practice's settings give both for payers that set none. A batch
holds them in-process (a semaphore and a token bucket in `ask_payers`), inside what the
`PayerGate` it is given grants it: the flows give one backed by Prefect's global
concurrency limits, so that runs on several workers together stay within the payer's
limits; without one (`NO_GATE`) the in-process limits are all there is.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from office.models import Payer

__all__ = ["NO_GATE", "PayerGate", "PayerLimit", "RateTokens", "payer_limit", "payer_limits"]


@dataclass(frozen=True, slots=True)
class PayerLimit:
    """What every asker together may send one payer: requests in flight, and per second."""

    payer_code: str
    concurrency: int
    rate: float

    def slots_for(self, checks: int) -> int:
        """The slots a batch of `checks` holds: one per inquiry in flight, up to the limit."""
        return min(self.concurrency, checks)


def payer_limit(payer: Payer, *, concurrency: int, rate: float) -> PayerLimit:
    """The payer's own limits, or the practice's defaults where the row sets none."""
    return PayerLimit(
        payer_code=payer.payer_code,
        concurrency=max(1, payer.concurrency_limit or concurrency),
        rate=payer.rate_per_second or rate,
    )


def payer_limits(
    session: Session, *, concurrency: int, rate: float, payer_ids: Sequence[int] | None = None
) -> dict[int, PayerLimit]:
    """Every payer's limits (or those of `payer_ids`) by payer id, in payer code order."""
    query = select(Payer).order_by(Payer.payer_code)
    if payer_ids is not None:
        query = query.where(Payer.id.in_(payer_ids))
    return {
        p.id: payer_limit(p, concurrency=concurrency, rate=rate) for p in session.scalars(query)
    }


class RateTokens(Protocol):
    """A batch's share of the payer's shared rate: one token per request."""

    async def take(self) -> None: ...


class PayerGate(Protocol):
    """The payer's limits shared with every other run, held by one batch while it asks.

    `hold(limit, slots)` waits until `slots` of the payer's requests in flight are free
    for this batch, keeps them until the block ends, and yields the batch's rate tokens.
    A batch holds its slots from start to end, so a second run asking the same payer
    meanwhile waits for them, and together they never exceed the payer's limits.
    """

    def hold(self, limit: PayerLimit, slots: int) -> AbstractAsyncContextManager[RateTokens]: ...


class _Unlimited:
    async def take(self) -> None:
        return None


class _NoGate:
    def hold(self, limit: PayerLimit, slots: int) -> AbstractAsyncContextManager[RateTokens]:
        return nullcontext(_Unlimited())


NO_GATE: PayerGate = _NoGate()
"""Only the in-process limits: for one process alone (tests, a command run by hand)."""
