"""The Stedi v3 adapter: the request it sends, how it reads answers, and both error channels."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from integrations.payers import get_payer
from integrations.payers.stedi import STEDI_ELIGIBILITY_PATH, control_number
from office.contracts.payers import (
    PayerConfigError,
    PayerRejected,
    PayerResponseInvalid,
    PayerRetryableError,
)
from office.eligibility.types import AaaAction, CoverageStatus, Entity, Person

from .conftest import (
    FIRST,
    LAST,
    MEMBER_ID,
    STEDI_CONFIG,
    aaa_error,
    check_with,
    make_request,
    stedi_answer,
    stedi_document,
)

pytestmark = pytest.mark.anyio


class Recorder:
    def __init__(self, status: int = 200, **extra: Any) -> None:
        self.sent: list[httpx.Request] = []
        self.answer = stedi_answer(status, **extra)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.sent.append(request)
        return self.answer(request)


async def test_request_json_follows_the_v3_shape() -> None:
    far = Recorder()
    await check_with("stedi", STEDI_CONFIG, far, make_request("TRACE-S", service_type="98"))
    (sent,) = far.sent
    assert str(sent.url) == "https://stedi.test" + STEDI_ELIGIBILITY_PATH
    assert sent.headers["authorization"] == "test-key"
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content) == {
        "controlNumber": control_number("TRACE-S"),
        "tradingPartnerServiceId": "60054",
        "provider": {"organizationName": "TESTCLINIC", "npi": "1234567893"},
        "subscriber": {
            "memberId": MEMBER_ID,
            "firstName": FIRST,
            "lastName": LAST,
            "dateOfBirth": "19800203",
        },
        "encounter": {"serviceTypeCodes": ["98"], "dateOfService": "20250304"},
    }


async def test_request_json_for_a_person_provider_and_a_dependent() -> None:
    far = Recorder()
    child = Person(first_name="KIDFIRST", last_name=LAST, date_of_birth=date(2015, 6, 7))
    request = make_request(dependent=child, provider_first_name="DRFIRST")
    await check_with("stedi", STEDI_CONFIG, far, request)
    body = json.loads(far.sent[0].content)
    assert body["provider"] == {
        "firstName": "DRFIRST",
        "lastName": "TESTCLINIC",
        "npi": "1234567893",
    }
    assert body["dependents"] == [
        {"firstName": "KIDFIRST", "lastName": LAST, "dateOfBirth": "20150607"}
    ]


def test_control_number_is_nine_digits_and_stable_per_trace() -> None:
    assert control_number("A") == control_number("A")
    assert control_number("A") != control_number("B")
    assert all(len(control_number(t)) == 9 and control_number(t).isdigit() for t in "ABCDEFG")


RICH_BENEFITS = [
    {
        "code": "1",
        "coverageLevelCode": "IND",
        "serviceTypeCodes": ["30", "98"],
        "insuranceTypeCode": "HM",
        "planCoverage": "SILVER HMO",
        "authOrCertIndicator": "Y",
        "additionalInformation": [{"description": "PRIOR AUTHORIZATION REQUIRED"}],
        "benefitsDateInformation": {"benefitBegin": "20250101", "plan": "20250101-20251231"},
    },
    {
        "code": "C",
        "coverageLevelCode": "IND",
        "serviceTypeCodes": ["30"],
        "timeQualifierCode": "29",
        "benefitAmount": "500.50",
        "inPlanNetworkIndicatorCode": "Y",
    },
    {
        "code": "A",
        "serviceTypeCodes": ["30"],
        "benefitPercent": "0.2",
        "inPlanNetworkIndicatorCode": "W",
        "quantityQualifierCode": "VS",
        "benefitQuantity": "12",
        "compositeMedicalProcedureIdentifier": {
            "productOrServiceIdQualifierCode": "HC",
            "procedureCode": "99213",
        },
    },
    {
        "code": "L",
        "benefitsRelatedEntities": [
            {
                "entityIdentifier": "Primary Care Provider",
                "entityType": "Person",
                "entityName": "PCPLAST",
                "entityFirstname": "PCPFIRST",
                "entityIdentification": "XX",
                "entityIdentificationValue": "1999999992",
            }
        ],
    },
    {
        "code": "R",
        "serviceTypeCodes": ["30"],
        "benefitsRelatedEntity": {
            "entityIdentifier": "Primary Payer",
            "entityName": "MEDICARE",
            "entityIdentification": "PI",
            "entityIdentificationValue": "CMS",
        },
    },
    {"code": "B", "benefitAmount": "not a number", "benefitPercent": 0.1},
]


async def test_a_rich_answer_maps_onto_the_normalized_result() -> None:
    far = Recorder(
        benefitsInformation=RICH_BENEFITS,
        planDateInformation={"plan": "20250101-20251231", "eligibilityBegin": "20240601"},
        subscriber={"memberId": MEMBER_ID, "maintenanceReasonCode": "25"},
    )
    response = await check_with("stedi", STEDI_CONFIG, far, make_request("TR"))
    result = response.result
    assert response.raw_format == "json"
    assert json.loads(response.raw)["controlNumber"] == control_number("TR")
    assert result.status is CoverageStatus.ACTIVE
    assert (result.member_id, result.trace, result.payer_code) == (MEMBER_ID, "TR", "60054")
    assert (result.plan_name, result.insurance_type, result.group_number) == (
        "SILVER HMO",
        "HM",
        "GRP77",
    )
    assert (result.plan_begin, result.plan_end) == (date(2025, 1, 1), date(2025, 12, 31))
    assert (result.eligibility_begin, result.eligibility_end) == (date(2024, 6, 1), None)
    assert result.payer_corrected_data is True
    active, deductible, coinsurance, _pcp, _other, bad = result.benefits
    assert active.service_types == ("30", "98")
    assert active.authorization_required is True
    assert active.messages == ("PRIOR AUTHORIZATION REQUIRED",)
    assert active.dates == {"348": "2025-01-01", "291": "2025-01-01/2025-12-31"}
    assert (deductible.amount, deductible.time_period, deductible.network) == (
        Decimal("500.50"),
        "29",
        "in",
    )
    assert (coinsurance.percent, coinsurance.network, coinsurance.procedure) == (
        Decimal("0.2"),
        "both",
        "HC:99213",
    )
    assert (coinsurance.quantity_qualifier, coinsurance.quantity) == ("VS", Decimal("12"))
    assert result.pcp == Entity(
        role="P3", name="PCPLAST, PCPFIRST", id_qualifier="XX", identifier="1999999992"
    )
    assert result.other_payers == (
        Entity(role="PRP", name="MEDICARE", id_qualifier="PI", identifier="CMS"),
    )
    assert bad.amount is None
    assert bad.percent == Decimal("0.1")
    result.to_json()


async def test_trace_is_ours_only_when_our_control_number_comes_back() -> None:
    far = Recorder(controlNumber="000000001")
    response = await check_with("stedi", STEDI_CONFIG, far, make_request("TR"))
    assert response.result.trace is None


async def test_inactive_plan_status_is_inactive() -> None:
    far = Recorder(
        planStatus=[{"statusCode": "6", "status": "Inactive", "serviceTypeCodes": ["30"]}],
        benefitsInformation=[],
    )
    response = await check_with("stedi", STEDI_CONFIG, far, make_request())
    assert response.result.status is CoverageStatus.INACTIVE


async def test_no_status_at_all_is_unverified() -> None:
    far = Recorder(planStatus=[], benefitsInformation=[{"code": "B", "benefitAmount": "5"}])
    response = await check_with("stedi", STEDI_CONFIG, far, make_request())
    assert response.result.status is CoverageStatus.UNVERIFIED


@pytest.mark.parametrize("location", ["Loop 2100A", "2100A", "Loop 2000A", None])
async def test_a_200_with_payer_level_42_in_errors_is_retryable(location: str | None) -> None:
    error = aaa_error("42", location or "", "Please Resubmit Original Transaction")
    if location is None:
        del error["location"]  # no location: read as the payer's
    far = Recorder(errors=[error], planStatus=[], benefitsInformation=[])
    with pytest.raises(PayerRetryableError) as caught:
        await check_with("stedi", STEDI_CONFIG, far, make_request())
    (aaa,) = caught.value.aaa
    assert (aaa.code, aaa.followup, aaa.valid_request) == ("42", "P", True)
    assert caught.value.status_code == 200
    assert json.loads(caught.value.raw or "")["errors"]


async def test_a_400_with_payer_level_80_is_retryable_with_retry_after() -> None:
    def far(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.read())
        document = stedi_document(sent, errors=[aaa_error("80", "Loop 2100A")])
        return httpx.Response(400, json=document, headers={"Retry-After": "30"})

    with pytest.raises(PayerRetryableError) as caught:
        await check_with("stedi", STEDI_CONFIG, far, make_request())
    assert (caught.value.retry_after, caught.value.status_code) == (30, 400)


async def test_a_200_with_payer_level_79_is_a_setup_result() -> None:
    far = Recorder(errors=[aaa_error("79", "2100A")], planStatus=[], benefitsInformation=[])
    response = await check_with("stedi", STEDI_CONFIG, far, make_request())
    assert response.result.status is CoverageStatus.UNVERIFIED
    assert [(a.loop, a.code, a.action) for a in response.result.aaa] == [
        ("2100A", "79", AaaAction.FIX_PROVIDER_SETUP)
    ]


async def test_provider_aaa_is_read_from_its_container() -> None:
    error = aaa_error("43", "")
    del error["location"]
    far = Recorder(400, provider={"aaaErrors": [error]}, planStatus=[], benefitsInformation=[])
    response = await check_with("stedi", STEDI_CONFIG, far, make_request())
    assert [(a.loop, a.code) for a in response.result.aaa] == [("2100B", "43")]


async def test_the_same_aaa_in_errors_and_in_subscriber_is_kept_once() -> None:
    error = aaa_error("75", "Loop 2100C")
    far = Recorder(
        400,
        errors=[error],
        subscriber={"memberId": MEMBER_ID, "aaaErrors": [error]},
        planStatus=[],
        benefitsInformation=[],
    )
    response = await check_with("stedi", STEDI_CONFIG, far, make_request())
    assert [(a.loop, a.code, a.followup) for a in response.result.aaa] == [("2100C", "75", "C")]
    assert response.result.aaa[0].action is AaaAction.FIX_PATIENT_DATA


async def test_dependent_aaa_and_dependent_answers() -> None:
    child = Person(first_name="KIDFIRST", last_name=LAST, date_of_birth=date(2015, 6, 7))
    error = {"code": "67", "followupAction": "Please Correct and Resubmit"}
    far = Recorder(
        400,
        dependents=[{"firstName": "KIDFIRST", "aaaErrors": [error]}],
        planStatus=[],
        benefitsInformation=[],
    )
    response = await check_with("stedi", STEDI_CONFIG, far, make_request(dependent=child))
    assert [(a.loop, a.code) for a in response.result.aaa] == [("2100D", "67")]
    assert response.result.is_dependent is True
    assert response.result.member_id == MEMBER_ID  # the subscriber's id covers the dependent


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("Please Correct and Resubmit", "C"),
        ("Resubmission Not Allowed", "N"),
        ("Please Resubmit Original Transaction", "P"),
        ("Resubmission Allowed", "R"),
        ("Do Not Resubmit; Inquiry Initiated to a Third Party", "S"),
        ("Please Wait 30 Days and Resubmit", "W"),
        ("Please Wait 10 Days and Resubmit", "X"),
        ("Do Not Resubmit; We Will Hold Your Request and Respond Again Shortly", "Y"),
        ("something new", None),
    ],
)
async def test_followup_actions_map_to_x12_letters(text: str, letter: str | None) -> None:
    far = Recorder(400, errors=[aaa_error("73", "Loop 2100C", text)], planStatus=[])
    response = await check_with("stedi", STEDI_CONFIG, far, make_request())
    assert response.result.aaa[0].followup == letter


@pytest.mark.parametrize("status", [400, 403, 404])
async def test_a_4xx_without_aaa_is_rejected(status: int) -> None:
    def far(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"code": "BAD_REQUEST", "message": "memberId ZQX bad"})

    with pytest.raises(PayerRejected) as caught:
        await check_with("stedi", STEDI_CONFIG, far, make_request())
    assert caught.value.status_code == status
    assert "ZQX" not in str(caught.value)


async def test_a_200_with_only_non_aaa_errors_is_rejected() -> None:
    far = Recorder(
        errors=[{"code": "INVALID_FIELD", "description": "bad"}],
        planStatus=[],
        benefitsInformation=[],
    )
    with pytest.raises(PayerRejected, match="1 error"):
        await check_with("stedi", STEDI_CONFIG, far, make_request())


async def test_a_503_with_an_http_date_retry_after_is_retryable() -> None:
    def far(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})

    with pytest.raises(PayerRetryableError) as caught:
        await check_with("stedi", STEDI_CONFIG, far, make_request())
    assert caught.value.retry_after == 0.0  # a date in the past means "now"


@pytest.mark.parametrize("body", ["[]", '"text"', "", "{", "null"])
async def test_a_200_that_is_not_a_json_object_is_invalid(body: str) -> None:
    def far(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=body)

    with pytest.raises(PayerResponseInvalid) as caught:
        await check_with("stedi", STEDI_CONFIG, far, make_request())
    assert caught.value.raw == body


@pytest.mark.parametrize(
    "settings",
    [{}, {"api_key": ""}, {"api_key": 5}, {"api_key": "k", "base_url": "stedi.test"}],
)
def test_bad_settings_fail_fast(settings: dict[str, Any]) -> None:
    with pytest.raises(PayerConfigError):
        get_payer("stedi", config=settings)
