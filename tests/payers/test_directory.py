"""The payer directory: the clearinghouse settings meet an x12 payer's own, one client a batch."""

from __future__ import annotations

import httpx
import pytest

from integrations.payers import Payers, PooledTransport, default_client, payers_from_settings
from integrations.payers.x12 import X12Payer
from integrations.x12 import Scenario
from office.contracts.payers import PayerConfigError
from office.eligibility.types import CoverageStatus
from office.settings import Settings

from .conftest import make_request, x12_answer

pytestmark = pytest.mark.anyio


def test_clearinghouse_settings_fill_in_only_for_x12() -> None:
    settings = Settings(
        clearinghouse_url="https://clearinghouse.test/270",
        clearinghouse_auth="sekrit",  # type: ignore[arg-type]
    )
    payers = payers_from_settings(settings)
    assert payers.settings_for("x12", {"mode": "multipart"}) == {
        "url": "https://clearinghouse.test/270",
        "auth_header": "Authorization",
        "auth_value": "sekrit",
        "mode": "multipart",
    }
    own = {"url": "https://b.test/270", "auth_value": "theirs"}
    assert payers.settings_for("x12", own) == {**payers.settings_for("x12", {}), **own}
    assert payers.settings_for("sandbox", {"latency_ms": 5}) == {"latency_ms": 5}


def test_without_a_clearinghouse_x12_payers_bring_their_own() -> None:
    own = {"url": "https://b.test/270"}
    assert payers_from_settings(Settings()).settings_for("x12", own) == own


@pytest.mark.parametrize(
    ("own", "refused"),
    [
        ({"url": "http://payer.example/270"}, "url"),  # patient data in the clear
        ({"url": "https://elsewhere.test/270"}, "OFFICE_CLEARINGHOUSE_AUTH"),  # our credential
    ],
)
async def test_an_x12_payer_row_that_would_leak_is_refused_before_a_client_is_made(
    own: dict[str, str], refused: str
) -> None:
    settings = Settings(
        clearinghouse_url="https://clearinghouse.test/270",
        clearinghouse_auth="sekrit",  # type: ignore[arg-type]
    )
    with pytest.raises(PayerConfigError, match=refused) as caught:
        async with payers_from_settings(settings).open("x12", own, connections=1):
            pass  # pragma: no cover - never entered
    assert "sekrit" not in str(caught.value)


async def test_open_builds_the_adapter_over_its_own_client_and_closes_it() -> None:
    made: list[tuple[int, httpx.AsyncClient]] = []

    def client(connections: int) -> httpx.AsyncClient:
        made.append((connections, httpx.AsyncClient(transport=httpx.MockTransport(answer))))
        return made[-1][1]

    answer = x12_answer(Scenario())
    payers = Payers({"x12": {"url": "https://clearinghouse.test/270"}}, client=client)
    async with payers.open("x12", {"mode": "raw"}, connections=7) as adapter:
        assert isinstance(adapter, X12Payer)
        response = await adapter.check(make_request())
        assert response.result.status is CoverageStatus.ACTIVE
        [(connections, used)] = made
        assert connections == 7
        assert not used.is_closed
    assert used.is_closed


async def test_an_unknown_adapter_is_a_config_error_and_its_client_is_closed() -> None:
    made: list[httpx.AsyncClient] = []

    def client(connections: int) -> httpx.AsyncClient:
        made.append(httpx.AsyncClient())
        return made[-1]

    with pytest.raises(PayerConfigError, match="'availity'"):
        async with Payers(client=client).open("availity", {}, connections=1):
            pass  # pragma: no cover - never entered
    assert [c.is_closed for c in made] == [True]


async def test_the_default_client_pools_its_connections_in_fives() -> None:
    async with default_client(12) as client:
        transport = client._transport
        assert isinstance(transport, PooledTransport)
        assert len(transport._pools) == 3
