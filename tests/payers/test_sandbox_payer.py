"""The sandbox payer: reproducible answers through the real codec, and faults a retry can clear."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.payers import get_payer
from integrations.payers.sandbox import (
    AttemptLog,
    SandboxPayer,
    SandboxProfile,
    choose_scenario,
    transient_fault,
)
from integrations.x12 import parse_271
from office.contracts.payers import PayerConfigError, PayerError, PayerResponse, PayerRetryableError
from office.eligibility.types import AaaAction, CoverageStatus

from .conftest import MEMBER_ID, make_request

pytestmark = pytest.mark.anyio


def sandbox(**profile: Any) -> SandboxPayer:
    """A sandbox with its own attempt log, so tests never share retry counts."""
    return SandboxPayer(profile, attempts=AttemptLog())


def luhn_ok(npi: str) -> bool:
    digits = [int(c) for c in "80840" + npi]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 1:
            digit *= 2
            digit = digit - 9 if digit > 9 else digit
        total += digit
    return total % 10 == 0


async def test_the_answer_is_a_real_271_read_back_by_the_codec() -> None:
    response = await sandbox().check(make_request("TR1"))
    assert response.raw_format == "x12"
    assert response.raw.startswith("ISA*")
    assert "*HB*" in response.raw
    (parsed,) = parse_271(response.raw)
    assert parsed == response.result
    assert (response.result.status, response.result.trace) == (CoverageStatus.ACTIVE, "TR1")
    assert response.result.member_id == MEMBER_ID
    codes = {benefit.code for benefit in response.result.benefits}
    assert {"1", "B", "C", "A"} <= codes  # status, copay, deductible, coinsurance


async def test_same_member_and_date_answer_the_same_across_adapters_and_traces() -> None:
    profile = {"inactive_rate": 0.5, "auth_rate": 0.5, "other_payer_rate": 0.5}
    first = await sandbox(**profile).check(make_request("A1"))
    again = await sandbox(**profile).check(make_request("B2"))
    assert first.result.to_json() | {"trace": None} == again.result.to_json() | {"trace": None}


def test_members_get_different_plans() -> None:
    profile = SandboxProfile()
    copays = {
        choose_scenario(make_request(member_id=f"M{index}"), profile).copay for index in range(40)
    }
    plans = {
        choose_scenario(make_request(member_id=f"M{index}"), profile).plan_name
        for index in range(40)
    }
    assert len(copays) > 2
    assert len(plans) > 2


def test_hmo_plans_name_a_pcp_with_a_valid_npi() -> None:
    profile = SandboxProfile()
    scenarios = [choose_scenario(make_request(member_id=f"M{i}"), profile) for i in range(60)]
    hmo = [s for s in scenarios if s.insurance_type == "HM"]
    assert hmo, "some member must land on an HMO plan"
    assert all(s.pcp_npi is not None and luhn_ok(s.pcp_npi) for s in hmo)
    assert all(s.pcp_npi is None for s in scenarios if s.insurance_type != "HM")


def test_the_deductible_remaining_never_exceeds_the_deductible() -> None:
    profile = SandboxProfile()
    for index in range(60):
        scenario = choose_scenario(make_request(member_id=f"M{index}"), profile)
        assert scenario.deductible is not None
        assert scenario.deductible_remaining is not None
        assert 0 <= scenario.deductible_remaining <= scenario.deductible


async def test_a_transient_fault_clears_on_a_retry_of_the_same_trace() -> None:
    adapter = sandbox(aaa42_rate=0.5, timeout_rate=0.2)
    cleared = 0
    for index in range(20):
        request = make_request(f"RETRY{index}", member_id=f"M{index}")
        outcomes = []
        for _attempt in range(30):
            try:
                await adapter.check(request)
            except PayerRetryableError:
                outcomes.append("fault")
            else:
                outcomes.append("ok")
                break
        assert outcomes[-1] == "ok", "each retry draws afresh, so a transient fault clears"
        cleared += "fault" in outcomes
    assert cleared >= 5, "with these rates many traces meet a fault before clearing"


async def test_a_new_adapter_continues_the_attempt_count() -> None:
    request = make_request("SHARED-COUNT-TRACE", member_id="M-SHARED")
    profile = SandboxProfile(aaa42_rate=0.5)
    faults = [transient_fault(request, profile, attempt) for attempt in range(30)]
    first_ok = faults.index(None)
    assert first_ok >= 1, "pick a trace whose first attempt faults"
    log = AttemptLog()
    for _ in range(first_ok):
        with pytest.raises(PayerRetryableError):
            await SandboxPayer({"aaa42_rate": 0.5}, attempts=log).check(request)
    response = await SandboxPayer({"aaa42_rate": 0.5}, attempts=log).check(request)
    assert isinstance(response, PayerResponse)


async def test_stable_facts_do_not_change_between_attempts() -> None:
    adapter = sandbox(inactive_rate=0.5)
    seen = set()
    for index in range(12):
        request = make_request(f"SAME{index}", member_id=f"M{index}")
        statuses = {(await adapter.check(request)).result.status for _ in range(4)}
        assert len(statuses) == 1, "a member's plan is the same on every attempt"
        seen |= statuses
    assert seen == {CoverageStatus.ACTIVE, CoverageStatus.INACTIVE}


async def test_full_rates_produce_each_answer() -> None:
    assert (await sandbox(inactive_rate=1).check(make_request())).result.status is (
        CoverageStatus.INACTIVE
    )
    not_found = (await sandbox(not_found_rate=1).check(make_request())).result
    assert [(a.loop, a.code, a.action) for a in not_found.aaa] == [
        ("2100C", "75", AaaAction.FIX_PATIENT_DATA)
    ]
    invalid = (await sandbox(invalid_member_rate=1).check(make_request())).result
    assert [a.code for a in invalid.aaa] == ["72"]
    auth = (await sandbox(auth_rate=1).check(make_request())).result
    assert any(b.authorization_required for b in auth.benefits)
    corrected = (await sandbox(corrected_rate=1).check(make_request())).result
    assert corrected.payer_corrected_data is True
    other = (await sandbox(other_payer_rate=1).check(make_request())).result
    assert other.other_payers
    assert other.other_payers[0].role == "PRP"
    with pytest.raises(PayerRetryableError, match="in time"):
        await sandbox(timeout_rate=1).check(make_request())
    with pytest.raises(PayerRetryableError) as caught:
        await sandbox(aaa42_rate=1).check(make_request())
    assert [a.code for a in caught.value.aaa] == ["42"]


async def test_latency_is_an_asyncio_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("integrations.payers.sandbox.asyncio.sleep", fake_sleep)
    await sandbox(latency_ms=250).check(make_request())
    await sandbox().check(make_request())
    assert slept == [0.25]


async def test_the_seed_changes_the_story() -> None:
    requests = [make_request(f"S{i}", member_id=f"M{i}") for i in range(30)]
    one = [choose_scenario(r, SandboxProfile(inactive_rate=0.5)) for r in requests]
    two = [choose_scenario(r, SandboxProfile(inactive_rate=0.5, seed="other")) for r in requests]
    assert [s.status for s in one] != [s.status for s in two]


def test_attempt_log_counts_and_stays_bounded() -> None:
    log = AttemptLog(capacity=2)
    assert [log.next_attempt("a"), log.next_attempt("a"), log.next_attempt("b")] == [0, 1, 0]
    log.next_attempt("c")  # evicts "a", the least recently asked
    assert log.next_attempt("a") == 0


@pytest.mark.parametrize(
    "config",
    [
        {"aaa42_rate": 1.5},
        {"timeout_rate": -0.1},
        {"inactive_rate": "often"},
        {"latency_ms": -1},
        {"auth_rate": True},
        {"seed": 7},
        {"control_start": 0.5},
    ],
)
def test_bad_profiles_fail_fast(config: dict[str, Any]) -> None:
    with pytest.raises(PayerConfigError):
        get_payer("sandbox", config=config)


def test_integer_rates_and_latency_are_accepted() -> None:
    profile = SandboxProfile.from_config({"inactive_rate": 1, "latency_ms": 200})
    assert (profile.inactive_rate, profile.latency_ms) == (1.0, 200.0)


@settings(max_examples=60, deadline=None)
@given(
    member=st.none() | st.text(max_size=20),
    day=st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)),
    trace=st.text("ABCXYZ0123456789-", min_size=1, max_size=30),
)
def test_any_request_gets_a_scenario_the_codec_can_build(
    member: str | None, day: date, trace: str
) -> None:
    request = replace(make_request(trace, member_id=member), date_of_service=day)
    adapter = sandbox(not_found_rate=0.3, other_payer_rate=0.3, corrected_rate=0.3)
    try:
        response = asyncio.run(adapter.check(request))
    except PayerError:
        return
    assert response.result.status in set(CoverageStatus)
