"""The x12 adapter: raw and CAQH CORE request shapes, both answer shapes, and its edges."""

from __future__ import annotations

import re
import uuid
from email import policy
from email.parser import BytesParser
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from integrations.payers import get_payer
from integrations.payers.x12 import X12Payer, read_core_envelope
from integrations.x12 import Scenario, build_271, parse_270
from office.contracts.payers import (
    PayerConfigError,
    PayerRejected,
    PayerResponseInvalid,
    PayerRetryableError,
)
from office.eligibility.types import AaaAction, CoverageStatus

from .conftest import MEMBER_ID, Handler, check_with, inquiry_of, make_request, x12_answer

pytestmark = pytest.mark.anyio

URL = "https://clearinghouse.test/realtime"
CORE_FIELDS = {
    "PayloadType",
    "ProcessingMode",
    "PayloadID",
    "TimeStamp",
    "SenderID",
    "ReceiverID",
    "CORERuleVersion",
    "Payload",
}


class Recorder:
    """Keeps every request the far side saw, then answers through `answer`."""

    def __init__(self, answer: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.answer(request)


def config(**extra: Any) -> dict[str, Any]:
    return {"url": URL, **extra}


def multipart_response(fields: dict[str, str]) -> httpx.Response:
    boundary = "b0undary"
    body = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    )
    body += f"--{boundary}--\r\n"
    return httpx.Response(
        200,
        content=body.encode(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )


async def test_raw_mode_posts_the_270_as_edi_with_the_auth_header() -> None:
    far = Recorder(x12_answer(Scenario()))
    settings = config(auth_header="X-Api-Key", auth_value="s3cret", control_start=41)
    response = await check_with("x12", settings, far, make_request("TRACE-RAW"))
    (sent,) = far.requests
    assert sent.method == "POST"
    assert str(sent.url) == URL
    assert sent.headers["content-type"] == "application/edi-x12"
    assert sent.headers["x-api-key"] == "s3cret"
    text = sent.content.decode()
    assert text.startswith("ISA*")
    assert "*000000041*" in text[:110]
    (inquiry,) = parse_270(text)
    assert (inquiry.trace, inquiry.member_id, inquiry.payer_code) == (
        "TRACE-RAW",
        MEMBER_ID,
        "60054",
    )
    assert response.raw.startswith("ISA*")
    assert response.raw_format == "x12"
    assert response.result.trace == "TRACE-RAW"


async def test_core_mode_posts_the_caqh_core_envelope() -> None:
    far = Recorder(x12_answer(Scenario()))
    settings = config(
        mode="core", sender_id="CLINIC01", auth_header="Authorization", auth_value="Basic abc"
    )
    response = await check_with("x12", settings, far, make_request("TRACE-CORE"))
    (sent,) = far.requests
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert sent.headers["authorization"] == "Basic abc"
    header = f"Content-Type: {sent.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(header + sent.content)
    parts = list(message.iter_parts())
    assert [p.get_param("name", header="content-disposition") for p in parts] == [
        "PayloadType",
        "ProcessingMode",
        "PayloadID",
        "TimeStamp",
        "SenderID",
        "ReceiverID",
        "CORERuleVersion",
        "Payload",
    ]
    assert all(p.get_param("filename", header="content-disposition") is None for p in parts)
    fields = read_core_envelope(sent.headers["content-type"], sent.content)
    assert fields is not None
    assert set(fields) == CORE_FIELDS
    assert fields["PayloadType"] == "X12_270_Request_005010X279A1"
    assert fields["ProcessingMode"] == "RealTime"
    assert fields["CORERuleVersion"] == "2.2.0"
    assert fields["SenderID"] == "CLINIC01"
    assert fields["ReceiverID"] == "60054"  # the payer code when no receiver_id is set
    uuid.UUID(fields["PayloadID"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", fields["TimeStamp"])
    (inquiry,) = parse_270(fields["Payload"])
    assert inquiry.trace == "TRACE-CORE"
    assert "*ZZ*CLINIC01       *" in fields["Payload"][:110]
    assert response.result.status is CoverageStatus.ACTIVE


async def test_core_mode_uses_configured_receiver_and_fresh_payload_ids() -> None:
    far = Recorder(x12_answer(Scenario()))
    async with httpx.AsyncClient(transport=httpx.MockTransport(far)) as client:
        adapter = get_payer("x12", config=config(mode="core", receiver_id="CH123"), client=client)
        await adapter.check(make_request("T1"))
        await adapter.check(make_request("T2"))
    envelopes = [read_core_envelope(r.headers["content-type"], r.content) for r in far.requests]
    assert all(e is not None and e["ReceiverID"] == "CH123" for e in envelopes)
    assert envelopes[0]["PayloadID"] != envelopes[1]["PayloadID"]  # type: ignore[index]


async def test_a_core_multipart_answer_is_read_from_its_payload() -> None:
    def far(request: httpx.Request) -> httpx.Response:
        answer = build_271(inquiry_of(request), interchange_control=9, scenario=Scenario())
        return multipart_response(
            {
                "PayloadType": "X12_271_Response_005010X279A1",
                "ErrorCode": "Success",
                "Payload": answer,
            }
        )

    for mode in ("core", "raw"):
        response = await check_with("x12", config(mode=mode), far, make_request())
        assert response.result.status is CoverageStatus.ACTIVE
        assert response.raw.startswith("ISA*"), "the stored raw text is the 271, not the envelope"


async def test_a_raw_answer_to_a_core_request_is_read_too() -> None:
    response = await check_with("x12", config(mode="core"), x12_answer(Scenario()), make_request())
    assert response.result.member_id == MEMBER_ID


async def test_core_envelope_error_without_payload_is_rejected() -> None:
    def far(request: httpx.Request) -> httpx.Response:
        return multipart_response({"ErrorCode": "PayloadTypeIncorrect", "ErrorMessage": "no"})

    with pytest.raises(PayerRejected, match="PayloadTypeIncorrect"):
        await check_with("x12", config(mode="core"), far, make_request())


async def test_core_envelope_without_payload_is_invalid_and_keeps_the_body() -> None:
    def far(request: httpx.Request) -> httpx.Response:
        return multipart_response({"ErrorCode": "Success"})

    with pytest.raises(PayerResponseInvalid) as caught:
        await check_with("x12", config(mode="core"), far, make_request())
    assert "ErrorCode" in caught.value.raw


def two_patient_271(first: str, second: str) -> str:
    """One interchange with two 271 transaction sets, one per patient."""
    body = second[second.index("ST*") : second.index("GE*")].replace("*0001", "*0002")
    cut = first.index("GE*")
    return first[:cut] + body + first[cut:].replace("GE*1*", "GE*2*", 1)


async def test_the_patient_loop_matching_our_trace_is_picked() -> None:
    other = build_271(
        make_request("OTHER", member_id="M2"),
        interchange_control=1,
        scenario=Scenario(status="inactive"),
    )

    def far(request: httpx.Request) -> httpx.Response:
        ours = build_271(inquiry_of(request), interchange_control=1, scenario=Scenario())
        return httpx.Response(200, text=two_patient_271(other, ours))

    response = await check_with("x12", config(), far, make_request("OURS"))
    assert (response.result.trace, response.result.status) == ("OURS", CoverageStatus.ACTIVE)

    def unknown(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text=two_patient_271(other, other))

    response = await check_with("x12", config(), unknown, make_request("NOT-THERE"))
    assert response.result.trace == "OTHER", "without a match the first loop answers"


async def test_provider_level_aaa_is_a_result_for_a_setup_work_item() -> None:
    scenario = Scenario(aaa=(("2100B", "43", "C"),))
    response = await check_with("x12", config(), x12_answer(scenario), make_request())
    assert response.result.status is CoverageStatus.UNVERIFIED
    assert [(a.loop, a.code, a.action) for a in response.result.aaa] == [
        ("2100B", "43", AaaAction.FIX_PROVIDER_SETUP)
    ]


async def test_payer_level_79_is_a_result_not_a_retry() -> None:
    scenario = Scenario(aaa=(("2100A", "79", "C"),))
    response = await check_with("x12", config(), x12_answer(scenario), make_request())
    assert [a.action for a in response.result.aaa] == [AaaAction.FIX_PROVIDER_SETUP]


async def test_a_4xx_carrying_a_271_with_aaa_is_read_as_an_answer() -> None:
    scenario = Scenario(aaa=(("2100C", "75", "C"),))
    response = await check_with("x12", config(), x12_answer(scenario, status=400), make_request())
    assert [a.code for a in response.result.aaa] == ["75"]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_a_4xx_without_a_271_is_rejected(status: int) -> None:
    def far(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text="<html>nope</html>")

    with pytest.raises(PayerRejected) as caught:
        await check_with("x12", config(), far, make_request())
    assert caught.value.status_code == status
    assert "nope" not in str(caught.value)


async def test_a_redirect_is_not_followed_and_not_read_as_an_answer() -> None:
    def far(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": "https://elsewhere.test/"})

    with pytest.raises(PayerResponseInvalid, match="302"):
        await check_with("x12", config(), far, make_request())


async def test_inactive_answer_is_inactive() -> None:
    response = await check_with(
        "x12", config(), x12_answer(Scenario(status="inactive")), make_request()
    )
    assert response.result.status is CoverageStatus.INACTIVE


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ConnectError("refused"), PayerRetryableError),
        (httpx.RemoteProtocolError("dropped"), PayerRetryableError),
        (httpx.ConnectTimeout("slow"), PayerRetryableError),
        (httpx.PoolTimeout("busy"), PayerRetryableError),
        (httpx.UnsupportedProtocol("ftp"), PayerConfigError),
    ],
)
async def test_transport_failures_are_translated(
    error: Exception, expected: type[Exception]
) -> None:
    def far(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(expected) as caught:
        await check_with("x12", config(), far, make_request())
    assert caught.value.__cause__ is error


async def test_a_request_the_codec_cannot_build_is_rejected_without_sending() -> None:
    far = Recorder(x12_answer(Scenario()))
    request = make_request(member_id="M" * 81)  # longer than NM109 allows
    with pytest.raises(PayerRejected, match="270"):
        await check_with("x12", config(), far, request)
    assert far.requests == []


async def test_control_numbers_count_up_per_adapter() -> None:
    far = Recorder(x12_answer(Scenario()))
    async with httpx.AsyncClient(transport=httpx.MockTransport(far)) as client:
        adapter = X12Payer(config(control_start=999_999_998), client)
        for index in range(3):
            await adapter.check(make_request(f"T{index}"))
    isa13 = [r.content.decode().split("*")[13] for r in far.requests]
    assert isa13 == ["999999998", "999999999", "000000001"]


def test_a_secret_str_auth_value_is_accepted() -> None:
    adapter = get_payer(
        "x12", config=config(auth_header="Authorization", auth_value=SecretStr("Bearer t"))
    )
    assert isinstance(adapter, X12Payer)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({}, "url"),
        ({"url": None}, "url"),
        ({"url": 5}, "url"),
        ({"url": "ftp://clearinghouse.test"}, "url"),
        ({"url": URL, "mode": "soap"}, "mode"),
        ({"url": URL, "usage": "X"}, "usage"),
        ({"url": URL, "auth_header": "Authorization"}, "auth_value"),
        ({"url": URL, "auth_value": "secret-value"}, "auth_header"),
        ({"url": URL, "control_start": 10**10}, "control_start"),
    ],
)
def test_bad_settings_fail_fast_naming_the_setting(settings: dict[str, Any], named: str) -> None:
    with pytest.raises(PayerConfigError, match=named) as caught:
        get_payer("x12", config=settings)
    assert "secret-value" not in str(caught.value)
