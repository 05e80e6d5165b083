"""Every registered payer adapter (built-ins and plugins) passes the same contract."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.payers import available_payers, get_payer
from office.contracts.payers import (
    PayerAdapter,
    PayerError,
    PayerResponse,
    PayerResponseInvalid,
    PayerRetryableError,
)
from office.eligibility.types import AaaAction, CoverageStatus

from .conftest import (
    FIRST,
    HARNESSES,
    LAST,
    MEMBER_ID,
    Case,
    ClientKind,
    Harness,
    check_with,
    make_request,
)

NAMES = available_payers()


def harness_for(name: str) -> Harness:
    harness = HARNESSES.get(name)
    if harness is None:
        pytest.fail(f"payer adapter {name!r} is registered but has no contract harness")
    return harness


@pytest.fixture(params=["payer", "plain"])
def client(request: pytest.FixtureRequest) -> ClientKind:
    """Each case runs over the `PayerClient` payers get and over a plain httpx client."""
    kind: ClientKind = request.param
    return kind


async def run_case(name: str, case: Case, client: ClientKind) -> PayerResponse:
    harness = harness_for(name)
    if case in harness.not_applicable:
        pytest.skip(harness.not_applicable[case])
    handler = harness.far_side(case)
    assert handler is not None
    config = {**harness.config, **harness.case_config.get(case, {})}
    # A fresh trace per run: the sandbox counts attempts per trace across the process.
    trace = f"T{uuid.uuid4().hex[:12]}"
    return await check_with(name, config, handler, make_request(trace), client)


def assert_no_phi(exc: BaseException) -> None:
    message = str(exc)
    for value in (MEMBER_ID, FIRST, LAST, "1980", "clearinghouse.test", "stedi.test", "http"):
        assert value not in message


def test_every_registered_adapter_has_a_harness() -> None:
    assert {"x12", "stedi", "sandbox"} <= set(NAMES)
    assert set(NAMES) <= set(HARNESSES), "add a contract harness for each registered adapter"


@pytest.mark.parametrize("name", NAMES)
def test_get_payer_builds_an_adapter_named_as_registered(name: str) -> None:
    adapter = get_payer(name, config=harness_for(name).config)
    assert isinstance(adapter, PayerAdapter)
    assert type(adapter).name == name


@pytest.mark.anyio
@pytest.mark.parametrize("name", NAMES)
async def test_active_answer_is_active_with_member_id(name: str, client: ClientKind) -> None:
    response = await run_case(name, "active", client)
    assert response.result.status is CoverageStatus.ACTIVE
    assert response.result.member_id == MEMBER_ID
    assert response.result.aaa == ()
    assert response.raw
    assert response.raw_format in ("x12", "json")


@pytest.mark.anyio
@pytest.mark.parametrize("name", NAMES)
async def test_server_error_is_retryable(name: str, client: ClientKind) -> None:
    with pytest.raises(PayerRetryableError) as caught:
        await run_case(name, "http_5xx", client)
    assert caught.value.status_code == 502
    assert_no_phi(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize("name", NAMES)
async def test_rate_limit_is_retryable_with_retry_after(name: str, client: ClientKind) -> None:
    with pytest.raises(PayerRetryableError) as caught:
        await run_case(name, "http_429", client)
    assert caught.value.retry_after == 7
    assert caught.value.status_code == 429


@pytest.mark.anyio
@pytest.mark.parametrize("name", NAMES)
async def test_timeout_is_retryable(name: str, client: ClientKind) -> None:
    with pytest.raises(PayerRetryableError) as caught:
        await run_case(name, "timeout", client)
    assert caught.value.aaa == ()
    assert_no_phi(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize("name", NAMES)
async def test_malformed_answer_is_invalid_and_keeps_raw(name: str, client: ClientKind) -> None:
    with pytest.raises(PayerResponseInvalid) as caught:
        await run_case(name, "malformed", client)
    assert caught.value.raw in (
        "ISA*00*this is not an interchange~",
        '{"benefitsInformation": [unterminated',
    )
    assert caught.value.raw not in str(caught.value)
    assert_no_phi(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize("name", NAMES)
async def test_payer_level_aaa_42_is_retryable(name: str, client: ClientKind) -> None:
    with pytest.raises(PayerRetryableError) as caught:
        await run_case(name, "payer_aaa42", client)
    assert [(a.loop[-1], a.code) for a in caught.value.aaa] == [("A", "42")]
    assert caught.value.aaa[0].action is AaaAction.RETRY_LATER
    assert caught.value.raw, "the raw answer travels with the error so it can be stored"
    assert_no_phi(caught.value)


@pytest.mark.anyio
@pytest.mark.parametrize("name", NAMES)
async def test_subscriber_aaa_72_is_an_unverified_result(name: str, client: ClientKind) -> None:
    response = await run_case(name, "subscriber_aaa72", client)
    assert response.result.status is CoverageStatus.UNVERIFIED
    assert [(a.loop, a.code, a.followup) for a in response.result.aaa] == [("2100C", "72", "C")]
    assert response.result.aaa[0].action is AaaAction.FIX_PATIENT_DATA


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=75, deadline=None)
@given(data=st.data())
def test_nothing_but_payer_error_escapes(name: str, data: st.DataObject) -> None:
    harness = harness_for(name)
    assert harness.fuzz is not None
    config, handler = data.draw(harness.fuzz)
    member = data.draw(st.none() | st.text(min_size=1, max_size=12))
    request = make_request(data.draw(st.text("ABC123", min_size=1, max_size=10)), member_id=member)
    failure: PayerError | None = None
    try:
        response = asyncio.run(check_with(name, config, handler, request))
    except PayerError as exc:
        failure = exc
    if failure is not None:
        assert str(failure)
        assert "\n" not in str(failure)
        if isinstance(failure, PayerResponseInvalid):
            assert isinstance(failure.raw, str)
        return
    assert isinstance(response, PayerResponse)
    assert isinstance(response.result.status, CoverageStatus)
    response.result.to_json()
