"""A batch sends at its share of the payer's rate, the share of the payer's slots it holds: runs
holding every slot between them send at the payer's rate at most, with no Prefect call."""

from __future__ import annotations

import asyncio

import pytest

from flows.payer_limits import rate_share
from office.eligibility import PayerLimit


class FakeClock:
    """Time that moves only when a request sleeps, so the test reads sends, not timing."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def _send_times(limit: PayerLimit, slots: int, requests: int) -> list[float]:
    clock = FakeClock()
    bucket = rate_share(limit, slots, clock=clock, sleep=clock.sleep)
    sent = []

    async def send_all() -> None:
        for _ in range(requests):
            await bucket.take()
            sent.append(clock.now)

    asyncio.run(send_all())
    return sent


@pytest.mark.parametrize(("slots", "spacing"), [(10, 0.5), (5, 1.0), (2, 2.5), (1, 5.0)])
def test_a_batch_sends_at_its_share_of_the_rate(slots: int, spacing: float) -> None:
    limit = PayerLimit("SHARE", concurrency=10, rate=2.0)
    sent = _send_times(limit, slots, requests=6)
    assert sent == pytest.approx([spacing * n for n in range(6)])


def test_shares_of_every_slot_add_up_to_the_payers_rate() -> None:
    limit = PayerLimit("SHARE", concurrency=10, rate=4.0)
    # Three runs at once hold 5, 3 and 2 of the 10 slots; over 10 s each sends its share.
    sends = [sum(t < 10.0 for t in _send_times(limit, slots, requests=100)) for slots in (5, 3, 2)]
    assert sends == [20, 12, 8]
    assert sum(sends) == 4.0 * 10.0  # the payer's rate, never more


def test_a_batch_starts_with_no_burst() -> None:
    limit = PayerLimit("SHARE", concurrency=50, rate=1000.0)
    sent = _send_times(limit, 50, requests=3)
    assert sent == pytest.approx([0.0, 0.001, 0.002])
