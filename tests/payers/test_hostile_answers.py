"""Hostile payer answers: too large (plain, streamed or inflating), amounts no rule can hold,
and parsing that must leave the event loop to the other payers' requests."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from integrations.payers import stedi as stedi_module
from integrations.payers import x12 as x12_module
from integrations.payers.base import INLINE_READ_BYTES, MAX_ANSWER_BYTES
from integrations.x12 import Scenario, build_271
from office.contracts.payers import PayerConfigError, PayerResponseInvalid
from tests.payers.conftest import (
    STEDI_CONFIG,
    X12_CONFIG,
    check_with,
    inquiry_of,
    make_request,
    stedi_document,
)

pytestmark = pytest.mark.anyio

ADAPTERS = {"x12": X12_CONFIG, "stedi": STEDI_CONFIG}


def _answer(name: str, request: httpx.Request, padding: int) -> bytes:
    """A genuine answer to `request`, grown by `padding` bytes its reader ignores."""
    if name == "x12":
        text = build_271(inquiry_of(request), interchange_control=7, scenario=Scenario())
        return text.encode() + b"\n" * padding
    sent = json.loads(request.read())
    return json.dumps(stedi_document(sent, padding="x" * padding)).encode()


def _far_side(name: str, padding: int, how: str) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        body = _answer(name, request, padding)
        if how == "gzip":
            return httpx.Response(
                200, content=gzip.compress(body), headers={"content-encoding": "gzip"}
            )
        if how == "stream":  # no Content-Length: chunks until the reader stops

            async def chunks() -> AsyncIterator[bytes]:
                for at in range(0, len(body), 65536):
                    yield body[at : at + 65536]

            return httpx.Response(200, content=chunks())
        return httpx.Response(200, content=body)

    return handler


@pytest.mark.parametrize("how", ["plain", "stream", "gzip"])
@pytest.mark.parametrize("name", sorted(ADAPTERS))
async def test_an_answer_over_the_cap_is_a_clear_error_for_that_check(name: str, how: str) -> None:
    config = {**ADAPTERS[name], "max_answer_bytes": 64 * 1024}
    fine = await check_with(name, config, _far_side(name, 1024, how), make_request())
    assert fine.result.benefits

    with pytest.raises(PayerResponseInvalid, match=r"larger than 65536 bytes") as caught:
        await check_with(name, config, _far_side(name, 200 * 1024, how), make_request())
    assert caught.value.raw == ""


@pytest.mark.parametrize("name", sorted(ADAPTERS))
async def test_every_adapter_has_a_cap_by_default(name: str) -> None:
    with pytest.raises(PayerResponseInvalid, match="larger than"):
        await check_with(
            name, ADAPTERS[name], _far_side(name, MAX_ANSWER_BYTES, "stream"), make_request()
        )


@pytest.mark.parametrize("limit", [0, 10, 2**40, "big", True])
@pytest.mark.parametrize("name", sorted(ADAPTERS))
async def test_an_unusable_cap_is_a_setting_error(name: str, limit: object) -> None:
    config = {**ADAPTERS[name], "max_answer_bytes": limit}
    with pytest.raises(PayerConfigError, match="max_answer_bytes"):
        await check_with(name, config, _far_side(name, 0, "plain"), make_request())


@dataclass(frozen=True)
class Raw:
    literal: str


@pytest.mark.parametrize(
    ("given", "read"),
    [
        ("25", Decimal("25")),
        ("10.50", Decimal("10.50")),
        (".2", Decimal(".2")),
        (30, Decimal("30")),
        ("1E+999999999", None),
        ("1E+50000000", None),
        ("1e3", None),
        ("NaN", None),
        ("Infinity", None),
        ("-Infinity", None),
        ("1234567890123456789012", None),
        (Raw("1E+999999999"), None),
        (Raw("1e400"), None),
        (Raw("-1e-400"), None),
        (Raw("12.5"), Decimal("12.5")),
        ("0x10", None),
        ("1_000", None),
    ],
)
async def test_json_amounts_are_read_as_x12_amounts_are(given: object, read: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.read())
        document = stedi_document(sent)
        value = "@number@" if isinstance(given, Raw) else given
        document["benefitsInformation"][1]["benefitAmount"] = value
        document["benefitsInformation"][1]["benefitPercent"] = value
        document["benefitsInformation"][1]["benefitQuantity"] = value
        text = json.dumps(document)
        if isinstance(given, Raw):  # a JSON number literal, as a hostile payer writes it
            text = text.replace('"@number@"', given.literal)
        return httpx.Response(200, text=text)

    answer = await check_with("stedi", STEDI_CONFIG, handler, make_request())
    (copay,) = [b for b in answer.result.benefits if b.code == "B"]
    assert (copay.amount, copay.percent, copay.quantity) == (read, read, read)


def _watch_reading(
    name: str, monkeypatch: pytest.MonkeyPatch, wait: threading.Event | None
) -> list[bool]:
    """Record, for each answer `name`'s adapter reads, whether it was read on the event loop;
    with `wait`, each read first waits for it (for up to a minute)."""
    read_on_loop: list[bool] = []
    module: Any = x12_module if name == "x12" else stedi_module
    attribute = "response_from_271" if name == "x12" else "_read"
    real = getattr(module, attribute)

    def watched(*args: Any, **kwargs: Any) -> Any:
        read_on_loop.append(_on_event_loop())
        if wait is not None:
            assert wait.wait(timeout=60), "the other payer's exchange never finished"
        return real(*args, **kwargs)

    monkeypatch.setattr(module, attribute, watched)
    return read_on_loop


@pytest.mark.parametrize("name", sorted(ADAPTERS))
async def test_one_payers_long_answer_leaves_the_event_loop_to_the_others(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Payer A's long answer is read only once payer B's exchange has finished on the loop.

    Were A's parsing on the event loop, B could never finish, and A's wait would fail.
    """
    other_done = threading.Event()
    read_on_loop = _watch_reading(name, monkeypatch, other_done)

    async def other_payer() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(_pong)) as client:
            for _ in range(3):
                assert (await client.get("https://other-payer.test/")).status_code == 200
        other_done.set()

    long = _far_side(name, INLINE_READ_BYTES + 1, "plain")
    first, _ = await asyncio.gather(
        check_with(name, ADAPTERS[name], long, make_request()), other_payer()
    )
    assert first.result.benefits
    assert read_on_loop == [False]


@pytest.mark.parametrize("name", sorted(ADAPTERS))
async def test_a_short_answer_is_read_on_the_event_loop(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hand-off to a thread costs more than reading a 271 of a few kilobytes."""
    read_on_loop = _watch_reading(name, monkeypatch, None)
    answer = await check_with(name, ADAPTERS[name], _far_side(name, 0, "plain"), make_request())
    assert answer.result.benefits
    assert read_on_loop == [True]


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _pong(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, text="pong")
