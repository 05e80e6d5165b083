"""Far sides for the payer adapters: small vendor apps behind httpx.MockTransport.

Each built-in adapter has a `Harness` saying how to make its far side behave one way
(`Case`); the contract suite runs every case against every registered adapter.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import httpx
import pytest
from hypothesis import strategies as st

from integrations.payers import PayerClient, get_payer
from integrations.payers.x12 import read_core_envelope
from integrations.x12 import Scenario, build_271, parse_270
from office.contracts.payers import PayerResponse
from office.eligibility.types import EligibilityRequest, Person

Case = Literal[
    "active",
    "http_5xx",
    "http_429",
    "timeout",
    "malformed",
    "payer_aaa42",
    "subscriber_aaa72",
]
CASES: tuple[Case, ...] = (
    "active",
    "http_5xx",
    "http_429",
    "timeout",
    "malformed",
    "payer_aaa42",
    "subscriber_aaa72",
)
Handler = Callable[[httpx.Request], httpx.Response]

MEMBER_ID = "ZQX90817263"
FIRST, LAST = "TESTFIRST", "TESTLAST"
MALFORMED_X12 = "ISA*00*this is not an interchange~"
MALFORMED_JSON = '{"benefitsInformation": [unterminated'


@pytest.fixture
def anyio_backend() -> str:
    """httpx's MockTransport and the adapters run on asyncio."""
    return "asyncio"


def make_request(
    trace: str = "TRACE0001",
    *,
    member_id: str | None = MEMBER_ID,
    service_type: str = "30",
    dependent: Person | None = None,
    provider_first_name: str | None = None,
) -> EligibilityRequest:
    return EligibilityRequest(
        trace=trace,
        payer_code="60054",
        provider_npi="1234567893",
        provider_name="TESTCLINIC",
        subscriber=Person(
            first_name=FIRST,
            last_name=LAST,
            date_of_birth=date(1980, 2, 3),
            sex="F",
            member_id=member_id,
        ),
        date_of_service=date(2025, 3, 4),
        service_type=service_type,
        provider_first_name=provider_first_name,
        dependent=dependent,
    )


def unreachable(request: httpx.Request) -> httpx.Response:
    raise AssertionError("this adapter must not make HTTP requests")


def timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


# --- x12 -----------------------------------------------------------------------------------


def inquiry_of(request: httpx.Request) -> EligibilityRequest:
    """The 270 inside a raw or CORE multipart request, read back with the codec."""
    body = request.read()
    fields = read_core_envelope(request.headers.get("content-type", ""), body)
    payload = fields["Payload"] if fields is not None else body.decode()
    (inquiry,) = parse_270(payload)
    return inquiry


def x12_answer(scenario: Scenario, *, status: int = 200) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        text = build_271(inquiry_of(request), interchange_control=7, scenario=scenario)
        return httpx.Response(status, text=text, headers={"content-type": "application/edi-x12"})

    return handler


def x12_far_side(case: Case) -> Handler:
    if case == "active":
        return x12_answer(Scenario())
    if case == "payer_aaa42":
        return x12_answer(Scenario(aaa=(("2100A", "42", "P"),)))
    if case == "subscriber_aaa72":
        return x12_answer(Scenario(aaa=(("2100C", "72", "C"),)))
    return common_far_side(case, MALFORMED_X12)


# --- stedi ---------------------------------------------------------------------------------


def stedi_document(sent: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A v3 answer echoing the request, active for STC 30 with the usual figures."""
    subscriber = sent["subscriber"]
    document: dict[str, Any] = {
        "controlNumber": sent["controlNumber"],
        "tradingPartnerServiceId": sent["tradingPartnerServiceId"],
        "payer": {"name": "TEST INSURANCE", "payorIdentification": "60054"},
        "subscriber": {
            "memberId": subscriber.get("memberId"),
            "firstName": subscriber["firstName"],
            "lastName": subscriber["lastName"],
        },
        "planStatus": [
            {"statusCode": "1", "status": "Active Coverage", "serviceTypeCodes": ["30"]}
        ],
        "planInformation": {"groupNumber": "GRP77"},
        "planDateInformation": {"planBegin": "20250101", "planEnd": "20251231"},
        "benefitsInformation": [
            {
                "code": "1",
                "name": "Active Coverage",
                "coverageLevelCode": "IND",
                "serviceTypeCodes": ["30"],
                "insuranceTypeCode": "PR",
                "planCoverage": "GOLD PPO",
            },
            {
                "code": "B",
                "serviceTypeCodes": ["98"],
                "timeQualifierCode": "27",
                "benefitAmount": "25",
                "inPlanNetworkIndicatorCode": "Y",
            },
        ],
        "errors": [],
    }
    document.update(extra)
    return document


def stedi_answer(status: int = 200, **extra: Any) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.read())
        return httpx.Response(status, json=stedi_document(sent, **extra))

    return handler


def aaa_error(
    code: str, location: str, followup: str = "Please Correct and Resubmit"
) -> dict[str, Any]:
    return {
        "code": code,
        "description": "a payer's description",
        "field": "AAA",
        "followupAction": followup,
        "location": location,
        "possibleResolutions": "free text nobody should parse",
    }


def stedi_far_side(case: Case) -> Handler:
    if case == "active":
        return stedi_answer()
    if case == "payer_aaa42":
        error = aaa_error("42", "Loop 2100A", "Please Resubmit Original Transaction")
        return stedi_answer(errors=[error], planStatus=[], benefitsInformation=[])
    if case == "subscriber_aaa72":
        error = aaa_error("72", "Loop 2100C")
        return stedi_answer(
            400,
            errors=[error],
            planStatus=[],
            benefitsInformation=[],
            subscriber={"aaaErrors": [error]},
        )
    return common_far_side(case, MALFORMED_JSON)


def common_far_side(case: Case, malformed: str) -> Handler:
    """The cases every HTTP vendor answers alike."""

    def handler(request: httpx.Request) -> httpx.Response:
        if case == "http_5xx":
            return httpx.Response(502, text="<html>bad gateway</html>")
        if case == "http_429":
            return httpx.Response(429, headers={"Retry-After": "7"}, json={"code": "TOO_MANY"})
        if case == "timeout":
            return timeout(request)
        if case == "malformed":
            return httpx.Response(200, text=malformed)
        raise AssertionError(f"no far side for {case}")

    return handler


# --- harnesses -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Harness:
    """How to set one adapter up for each contract case, and a strategy for fuzzing it."""

    config: dict[str, Any]
    far_side: Callable[[Case], Handler | None]
    # Cases with a reason they cannot apply (the sandbox has no HTTP far side).
    not_applicable: dict[Case, str] = field(default_factory=dict)
    case_config: dict[Case, dict[str, Any]] = field(default_factory=dict)
    fuzz: st.SearchStrategy[tuple[dict[str, Any], Handler]] | None = None


def http_fuzz(
    config: dict[str, Any], valid: Callable[[], Handler]
) -> st.SearchStrategy[tuple[dict[str, Any], Handler]]:
    """Random statuses with random, truncated or mangled bodies and headers."""
    statuses = st.sampled_from([200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 408, 409, 422])
    statuses = statuses | st.integers(min_value=100, max_value=599)
    bodies = st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(str.encode),
        st.just(b""),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "errors",
                            "subscriber",
                            "payer",
                            "provider",
                            "dependents",
                            "benefitsInformation",
                            "planStatus",
                            "planDateInformation",
                            "planInformation",
                            "controlNumber",
                            "code",
                            "location",
                            "aaaErrors",
                            "statusCode",
                            "serviceTypeCodes",
                            "benefitAmount",
                            "benefitsDateInformation",
                            "benefitsRelatedEntities",
                        ]
                    ),
                    inner,
                    max_size=5,
                )
            ),
            max_leaves=20,
        ).map(lambda value: json.dumps(value).encode()),
    )
    content_types = st.sampled_from(
        [
            "application/json",
            "application/edi-x12",
            "text/plain",
            "multipart/form-data; boundary=zz",
            "multipart/form-data",
        ]
    )
    retry_after = st.none() | st.sampled_from(["7", "-3", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"])

    @st.composite
    def handlers(draw: st.DrawFn) -> tuple[dict[str, Any], Handler]:
        mode = draw(st.sampled_from(["random", "valid", "mangled"]))
        if mode == "valid":
            return config, valid()
        status, body = draw(statuses), draw(bodies)
        headers = {"content-type": draw(content_types)}
        after = draw(retry_after)
        if after is not None:
            headers["retry-after"] = after
        cut = draw(st.integers(min_value=0, max_value=4000))
        noise = draw(st.binary(max_size=8))

        def handler(request: httpx.Request) -> httpx.Response:
            if mode == "mangled":
                good = valid()(request)
                content = good.content[:cut] + noise + good.content[cut:]
                return httpx.Response(status, content=content, headers=headers)
            return httpx.Response(status, content=body, headers=headers)

        return config, handler

    return handlers()


def sandbox_fuzz() -> st.SearchStrategy[tuple[dict[str, Any], Handler]]:
    rate = st.sampled_from([0.0, 0.5, 1.0]) | st.floats(min_value=0.0, max_value=1.0)
    profile = st.fixed_dictionaries(
        {},
        optional={
            name: rate
            for name in (
                "aaa42_rate",
                "timeout_rate",
                "inactive_rate",
                "not_found_rate",
                "invalid_member_rate",
                "auth_rate",
                "corrected_rate",
                "other_payer_rate",
            )
        },
    )
    return profile.map(lambda config: (config, unreachable))


X12_CONFIG = {"url": "https://clearinghouse.test/realtime", "mode": "raw"}
STEDI_CONFIG = {"api_key": "test-key", "base_url": "https://stedi.test"}
SANDBOX_NOT_APPLICABLE = "the sandbox has no HTTP far side"

HARNESSES: dict[str, Harness] = {
    "x12": Harness(
        config=X12_CONFIG,
        far_side=x12_far_side,
        fuzz=http_fuzz(X12_CONFIG, lambda: x12_far_side("active")),
    ),
    "stedi": Harness(
        config=STEDI_CONFIG,
        far_side=stedi_far_side,
        fuzz=http_fuzz(STEDI_CONFIG, lambda: stedi_far_side("active")),
    ),
    "sandbox": Harness(
        config={},
        far_side=lambda case: unreachable,
        not_applicable={
            "http_5xx": SANDBOX_NOT_APPLICABLE,
            "http_429": SANDBOX_NOT_APPLICABLE,
            "malformed": SANDBOX_NOT_APPLICABLE + "; it only reads 271s it built",
        },
        case_config={
            "timeout": {"timeout_rate": 1.0},
            "payer_aaa42": {"aaa42_rate": 1.0},
            "subscriber_aaa72": {"invalid_member_rate": 1.0},
        },
        fuzz=sandbox_fuzz(),
    ),
}


ClientKind = Literal["payer", "plain"]
"""The client an adapter is given: the `PayerClient` payers get, or any httpx client (a
plugin's caller may give one), whose requests take httpx's own send path."""


def mock_client(handler: Handler, kind: ClientKind = "payer") -> httpx.AsyncClient:
    """A client of that kind over a MockTransport answering with `handler`."""
    transport = httpx.MockTransport(handler)
    if kind == "plain":
        return httpx.AsyncClient(transport=transport)
    return PayerClient(transport=transport, headers={"User-Agent": "officeflows"})


async def check_with(
    name: str,
    config: dict[str, Any],
    handler: Handler,
    request: EligibilityRequest,
    client: ClientKind = "payer",
) -> PayerResponse:
    """Build the adapter through the registry over a MockTransport and ask once."""
    async with mock_client(handler, client) as client_:
        adapter = get_payer(name, config=config, client=client_)
        return await adapter.check(request)
