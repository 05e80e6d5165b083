"""testkit/mock_clearinghouse.py as a real subprocess on loopback, driven by the x12 adapter."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from integrations.payers import get_payer
from office.contracts.payers import PayerRejected, PayerRetryableError
from office.eligibility.types import CoverageStatus
from testkit.mock_clearinghouse import running

from .conftest import make_request

pytestmark = pytest.mark.anyio

AUTH = ("X-Api-Key", "bench-secret")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running(latency_ms=5, auth=AUTH) as url:
        yield url


@pytest.fixture(scope="module")
def faulty_server() -> Iterator[str]:
    with running(latency_ms=0, fault_rate=1.0, fault_kind="mixed", seed=3) as url:
        yield url


@pytest.mark.parametrize("mode", ["raw", "core"])
async def test_concurrent_checks_through_the_real_server(server: str, mode: str) -> None:
    config = {"url": f"{server}/270", "mode": mode, "auth_header": AUTH[0], "auth_value": AUTH[1]}
    async with httpx.AsyncClient() as client:
        adapter = get_payer("x12", config=config, client=client)
        requests = [make_request(f"BENCH{i}", member_id=f"M{i}") for i in range(8)]
        responses = await asyncio.gather(*(adapter.check(r) for r in requests))
    for request, response in zip(requests, responses, strict=True):
        assert response.result.status is CoverageStatus.ACTIVE
        assert response.result.trace == request.trace
        assert response.result.member_id == request.member_id
        assert response.raw.startswith("ISA*")


async def test_the_server_checks_credentials(server: str) -> None:
    async with httpx.AsyncClient() as client:
        adapter = get_payer("x12", config={"url": f"{server}/270"}, client=client)
        with pytest.raises(PayerRejected) as caught:
            await adapter.check(make_request())
    assert caught.value.status_code == 401


async def test_a_body_that_is_not_a_270_is_refused(server: str) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{server}/270", content=b"hello", headers={AUTH[0]: AUTH[1]})
    assert response.status_code == 400


async def test_faults_are_retryable_503s_and_payer_aaa_42s(faulty_server: str) -> None:
    kinds = set()
    async with httpx.AsyncClient() as client:
        adapter = get_payer("x12", config={"url": f"{faulty_server}/270"}, client=client)
        for index in range(10):
            with pytest.raises(PayerRetryableError) as caught:
                await adapter.check(make_request(f"FAULT{index}"))
            if caught.value.status_code == 503:
                assert caught.value.retry_after == 1.0
                kinds.add("503")
            else:
                assert [a.code for a in caught.value.aaa] == ["42"]
                kinds.add("aaa42")
    assert kinds == {"503", "aaa42"}
