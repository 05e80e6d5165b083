"""The shared boundary: the error tree, Retry-After, statuses, transport errors, settings."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from integrations.payers import PayerClient
from integrations.payers.base import (
    ControlNumbers,
    error_for_status,
    parse_retry_after,
    pick_result,
    post_capped,
    secret_setting,
    setting,
    translate_transport_error,
)
from office.contracts.payers import (
    PayerConfigError,
    PayerError,
    PayerFinalError,
    PayerRejected,
    PayerResponseInvalid,
    PayerRetryableError,
)
from office.eligibility.types import CoverageStatus, EligibilityResult

NOW = datetime(2025, 3, 4, 12, 0, 0, tzinfo=UTC)


def test_the_error_tree_has_the_documented_shape() -> None:
    assert issubclass(PayerRetryableError, PayerError)
    assert issubclass(PayerFinalError, PayerError)
    assert not issubclass(PayerRetryableError, PayerFinalError)
    for final in (PayerRejected, PayerResponseInvalid, PayerConfigError):
        assert issubclass(final, PayerFinalError)
    assert PayerResponseInvalid("x", raw="body").raw == "body"
    assert PayerRetryableError("x", retry_after=3.0).retry_after == 3.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 3.5 ", 3.5),
        ("-4", 0.0),
        ("Tue, 04 Mar 2025 12:00:30 GMT", 30.0),
        ("Tue, 04 Mar 2025 11:00:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_reads_seconds_and_dates(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


@given(st.text(max_size=40))
def test_retry_after_never_raises_and_is_never_negative(header: str) -> None:
    value = parse_retry_after(header, now=NOW)
    assert value is None or value >= 0


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, None),
        (204, None),
        (408, PayerRetryableError),
        (429, PayerRetryableError),
        (500, PayerRetryableError),
        (599, PayerRetryableError),
        (400, PayerRejected),
        (401, PayerRejected),
        (404, PayerRejected),
        (302, PayerResponseInvalid),
        (101, PayerResponseInvalid),
    ],
)
def test_statuses_map_onto_the_tree(status: int, expected: type[PayerError] | None) -> None:
    error = error_for_status(httpx.Response(status), "")
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected
        assert error.status_code == status


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (httpx.ReadTimeout("t"), PayerRetryableError),
        (httpx.WriteTimeout("t"), PayerRetryableError),
        (httpx.ConnectError("c"), PayerRetryableError),
        (httpx.ReadError("r"), PayerRetryableError),
        (httpx.RemoteProtocolError("p"), PayerRetryableError),
        (httpx.ProxyError("p"), PayerRetryableError),
        (httpx.UnsupportedProtocol("u"), PayerConfigError),
        (httpx.InvalidURL("u"), PayerConfigError),
        (httpx.DecodingError("d"), PayerResponseInvalid),
        (httpx.TooManyRedirects("r"), PayerRejected),
    ],
)
def test_transport_errors_map_onto_the_tree(
    error: httpx.HTTPError | httpx.InvalidURL, expected: type[PayerError]
) -> None:
    assert type(translate_transport_error(error)) is expected


def test_control_numbers_wrap_and_random_starts_are_in_range() -> None:
    numbers = ControlNumbers(999_999_999)
    assert [numbers.next() for _ in range(3)] == [999_999_999, 1, 2]
    assert all(1 <= ControlNumbers().next() <= 999_999_999 for _ in range(50))
    with pytest.raises(PayerConfigError):
        ControlNumbers(0)


def test_pick_result_prefers_our_trace_else_the_first() -> None:
    first = EligibilityResult(status=CoverageStatus.INACTIVE, trace="A")
    ours = EligibilityResult(status=CoverageStatus.ACTIVE, trace="B")
    assert pick_result([first, ours], "B") is ours
    assert pick_result([first, ours], "C") is first


@pytest.mark.parametrize(
    ("config", "kind", "default", "expected"),
    [
        ({"k": "v"}, str, None, "v"),
        ({}, str, "d", "d"),
        ({"k": 3}, float, 0.0, 3.0),
        ({"k": None}, str, "d", "d"),
    ],
)
def test_setting_reads_typed_values(
    config: dict[str, Any], kind: type, default: Any, expected: Any
) -> None:
    assert setting(config, "demo", "k", kind, default) == expected


@pytest.mark.parametrize("config", [{}, {"k": None}, {"k": 5}, {"k": True}, {"k": ["hunter2"]}])
def test_setting_errors_name_the_key_never_the_value(config: dict[str, Any]) -> None:
    with pytest.raises(PayerConfigError, match="'k'") as caught:
        setting(config, "demo", "k", str)
    assert "hunter2" not in str(caught.value)


def test_secret_setting_unwraps_secret_str() -> None:
    assert secret_setting({"s": SecretStr("x")}, "demo", "s") == "x"
    with pytest.raises(PayerConfigError):
        secret_setting({"s": SecretStr("")}, "demo", "s")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        {"content": b"ISA*00*raw~", "headers": {"Content-Type": "application/edi-x12"}},
        {"json": {"tradingPartnerServiceId": "P1"}, "headers": {"Authorization": "Key k"}},
        {"files": {"Payload": (None, "ISA*00*core~")}, "headers": {}},
    ],
    ids=["content", "json", "files"],
)
async def test_a_payer_clients_post_is_the_request_httpx_would_send(body: dict[str, Any]) -> None:
    seen: list[httpx.Request] = []

    def far(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b"answer " * 100)

    timeout = httpx.Timeout(connect=1.0, read=2.0, write=3.0, pool=4.0)
    answers = []
    for client in (
        PayerClient(transport=httpx.MockTransport(far), timeout=timeout, headers={"X-A": "1"}),
        httpx.AsyncClient(
            transport=httpx.MockTransport(far), timeout=timeout, headers={"X-A": "1"}
        ),
    ):
        async with client:
            answers.append(
                await post_capped(client, "https://payer.test/x?y=1", limit=4096, **dict(body))
            )
    direct, stock = seen
    assert direct.method == stock.method == "POST"
    assert direct.url == stock.url
    assert direct.extensions["timeout"] == stock.extensions["timeout"] == timeout.as_dict()
    boundary = "; boundary=" in stock.headers.get("content-type", "")
    if not boundary:  # a multipart body has a fresh boundary each time
        assert direct.read() == stock.read()
        assert list(direct.headers.multi_items()) == list(stock.headers.multi_items())
    assert direct.headers["x-a"] == "1"
    assert [(r.status_code, b) for r, b in answers] == [(200, b"answer " * 100)] * 2


@pytest.mark.anyio
async def test_a_payer_clients_answer_over_the_limit_is_refused_and_closed() -> None:
    closed: list[bool] = []

    class Endless(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[override]
            while True:
                yield b"x" * 1024

        async def aclose(self) -> None:
            closed.append(True)

    def far(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Endless())

    async with PayerClient(transport=httpx.MockTransport(far)) as client:
        with pytest.raises(PayerResponseInvalid, match="larger than 2048 bytes"):
            await post_capped(client, "https://payer.test/", limit=2048, content=b"q")
    assert closed == [True]
