"""What every payer adapter shares at its boundary: settings, HTTP errors, 271 answers.

The contract and its error tree live in the domain (`office.contracts.payers`); this
module turns the far side's failures into that tree, the same way for every adapter.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ParamSpec, TypeVar

import httpx

from integrations.payers.client import PayerClient
from integrations.x12 import X12Error, parse_271
from office.contracts.payers import (
    PayerConfigError,
    PayerError,
    PayerRejected,
    PayerResponse,
    PayerResponseInvalid,
    PayerRetryableError,
)
from office.eligibility.types import AaaAction, EligibilityRequest, EligibilityResult

__all__ = [
    "INLINE_READ_BYTES",
    "MAX_ANSWER_BYTES",
    "PAYER_LOOPS",
    "ControlNumbers",
    "answer_limit",
    "error_for_status",
    "parse_retry_after",
    "pick_result",
    "post_capped",
    "raise_for_payer_aaa",
    "read_answer",
    "response_from_271",
    "secret_setting",
    "setting",
    "translate_transport_error",
]

PAYER_LOOPS = frozenset({"2000A", "2100A"})
_MAX_CONTROL = 999_999_999

MAX_ANSWER_BYTES = 2 * 1024 * 1024
"""The largest answer an adapter reads (decoded), unless its `max_answer_bytes` setting says.

A 271 for one patient runs to a few kilobytes, one listing every benefit of a rich plan to
a few hundred; anything near this is an answer no check needs, and reading it whole would
let one payer's answer fill the memory and the CPU every other payer's checks share.
"""

INLINE_READ_BYTES = 8 * 1024
"""Answers up to this size are read on the event loop; longer ones in a worker thread.

Reading runs at 100-400 ns a byte, so an answer this size holds the loop for 3 ms at
most, while a thread hand-off costs 50-100 us and two GIL switches for every answer: more
than reading the usual 271 of one or two kilobytes (0.1-0.4 ms).
"""

_P = ParamSpec("_P")
_T = TypeVar("_T")


class ControlNumbers:
    """Interchange control numbers for one adapter: a counter from a random or given start.

    ``next()`` on an ``itertools.count`` runs without yielding to the event loop, so tasks
    sharing one adapter never draw the same number.
    """

    def __init__(self, start: int | None = None) -> None:
        if start is None:
            start = 100_000_000 + secrets.randbelow(_MAX_CONTROL - 100_000_000)
        if not 1 <= start <= _MAX_CONTROL:
            raise PayerConfigError("setting 'control_start' must be 1..999999999")
        self._counter = itertools.count(start - 1)

    def next(self) -> int:
        """The next number, wrapping from 999999999 back to 1 as ISA13 requires."""
        return next(self._counter) % _MAX_CONTROL + 1


def setting(
    config: Mapping[str, Any], adapter: str, key: str, kind: type, default: Any = None
) -> Any:
    """Read one adapter setting, checking its type; missing (or null) with no default is an error.

    Messages name the adapter and the key, never the value (it may be a secret).
    """
    value = config.get(key)
    if value is None:
        if default is None:
            raise PayerConfigError(f"payer adapter {adapter!r} needs setting {key!r}")
        return default
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PayerConfigError(
            f"payer adapter {adapter!r}: setting {key!r} must be {kind.__name__}"
        )
    return value


def secret_setting(config: Mapping[str, Any], adapter: str, key: str) -> str:
    """A required secret, given as a string or as anything with ``get_secret_value()``."""
    value = config.get(key)
    reveal = getattr(value, "get_secret_value", None)
    if callable(reveal):
        value = reveal()
    if not isinstance(value, str) or not value:
        raise PayerConfigError(f"payer adapter {adapter!r} needs setting {key!r} (a string)")
    return value


def answer_limit(config: Mapping[str, Any], adapter: str) -> int:
    """The adapter's `max_answer_bytes` setting: 1 KiB to 64 MiB, `MAX_ANSWER_BYTES` by default."""
    limit: int = setting(config, adapter, "max_answer_bytes", int, MAX_ANSWER_BYTES)
    if not 1024 <= limit <= 64 * 1024 * 1024:
        raise PayerConfigError(
            f"payer adapter {adapter!r}: setting 'max_answer_bytes' must be 1024..67108864"
        )
    return limit


async def post_capped(
    client: httpx.AsyncClient, url: str, *, limit: int, **kwargs: Any
) -> tuple[httpx.Response, bytes]:
    """POST, then read the answer's body as it arrives, never more than `limit` bytes.

    The limit counts decoded bytes, so a small compressed answer that inflates past it is
    refused as well; a Content-Length over it is refused before the body is read.

    Raises:
        PayerResponseInvalid: the answer is larger than `limit` (for this check only).
        PayerError: the exchange failed (`translate_transport_error`).
    """

    def too_large(status: int) -> PayerResponseInvalid:
        return PayerResponseInvalid(
            f"payer answer larger than {limit} bytes; not read", raw="", status_code=status
        )

    chunks: list[bytes] = []
    try:
        async with _posted(client, url, kwargs) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and len(declared) < 20 and int(declared) > limit:
                raise too_large(response.status_code)
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise too_large(response.status_code)
                chunks.append(chunk)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise translate_transport_error(exc) from exc
    return response, b"".join(chunks)


@asynccontextmanager
async def _posted(
    client: httpx.AsyncClient, url: str, kwargs: dict[str, Any]
) -> AsyncIterator[httpx.Response]:
    """The answer to a POST, its body not yet read; closed when the block ends.

    A `PayerClient`'s request goes straight to its transport (see there); any other client
    sends it its own way.
    """
    if not isinstance(client, PayerClient):
        async with client.stream("POST", url, **kwargs) as response:
            yield response
        return
    headers = httpx.Headers(client.headers)
    headers.update(kwargs.pop("headers", None) or {})
    request = httpx.Request(
        "POST",
        _parsed_url(url),
        headers=headers,
        extensions={"timeout": client.timeout.as_dict()},
        **kwargs,
    )
    response = await client.transport.handle_async_request(request)
    response.request = request
    try:
        yield response
    finally:
        await response.aclose()


@functools.lru_cache(maxsize=256)
def _parsed_url(url: str) -> httpx.URL:
    # An adapter posts every inquiry to the same endpoint; parsing it once saves 30 us a request.
    return httpx.URL(url)


async def read_answer(size: int, read: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """`read(*args, **kwargs)`: inline for an answer of `size` up to `INLINE_READ_BYTES`, else
    in a worker thread, so one long answer holds up no other payer's requests."""
    if size <= INLINE_READ_BYTES:
        return read(*args, **kwargs)
    return await asyncio.to_thread(read, *args, **kwargs)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if value is None:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)


def translate_transport_error(exc: httpx.HTTPError | httpx.InvalidURL) -> PayerError:
    """The payer error for an httpx failure; the caller raises it ``from exc``."""
    if isinstance(exc, httpx.TimeoutException):
        return PayerRetryableError(f"payer did not answer in time ({type(exc).__name__})")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return PayerConfigError("payer endpoint URL is not usable")
    if isinstance(exc, httpx.DecodingError):
        return PayerResponseInvalid("payer answer has an undecodable content encoding", raw="")
    if isinstance(exc, httpx.TooManyRedirects):
        return PayerRejected("payer endpoint redirected too many times")
    # Connect, read, write, protocol and proxy failures: the exchange broke, not the request.
    return PayerRetryableError(f"payer exchange failed ({type(exc).__name__})")


def error_for_status(response: httpx.Response, raw: str) -> PayerError | None:
    """The error an HTTP status means before the body is read, or None for a 2xx.

    4xx other than 408/429 are returned as `PayerRejected`; adapters that find AAA in
    a 4xx body read those first and only fall back to this.
    """
    status = response.status_code
    if 200 <= status < 300:
        return None
    if status == 429 or status == 408 or status >= 500:
        reason = "rate limited" if status == 429 else "unavailable"
        return PayerRetryableError(
            f"payer {reason} (HTTP {status})",
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            status_code=status,
        )
    if 400 <= status < 500:
        return PayerRejected(f"payer refused the request (HTTP {status})", status_code=status)
    return PayerResponseInvalid(f"unexpected HTTP status {status}", raw=raw, status_code=status)


def pick_result(results: list[EligibilityResult], trace: str) -> EligibilityResult:
    """The patient loop answering our trace, else the first one."""
    for result in results:
        if result.trace == trace:
            return result
    return results[0]


def raise_for_payer_aaa(
    result: EligibilityResult,
    raw: str,
    *,
    retry_after: float | None = None,
    status_code: int | None = None,
) -> None:
    """Raise `PayerRetryableError` when the payer itself said it cannot answer now."""
    retry = tuple(
        aaa for aaa in result.aaa if aaa.loop in PAYER_LOOPS and aaa.action is AaaAction.RETRY_LATER
    )
    if retry:
        codes = ",".join(sorted({aaa.code for aaa in retry}))
        raise PayerRetryableError(
            f"payer cannot answer now (AAA {codes})",
            retry_after=retry_after,
            status_code=status_code,
            aaa=result.aaa,
            raw=raw,
        )


def response_from_271(
    request: EligibilityRequest, raw: str, *, status_code: int | None = None
) -> PayerResponse:
    """Read a 271 answer to `request` the way every X12-speaking adapter must.

    Raises:
        PayerResponseInvalid: The text is not a readable 271 or names no patient.
        PayerRetryableError: A payer-level AAA asks to try again later.
    """
    try:
        results = parse_271(raw, service_type=request.service_type)
    except X12Error as exc:
        raise PayerResponseInvalid(
            f"unreadable 271: {exc}", raw=raw, status_code=status_code
        ) from exc
    except Exception as exc:
        # The codec promises X12Error only; foreign input must still never escape untyped.
        raise PayerResponseInvalid(
            f"unreadable 271 ({type(exc).__name__})", raw=raw, status_code=status_code
        ) from exc
    if not results:
        raise PayerResponseInvalid("271 holds no answer", raw=raw, status_code=status_code)
    result = pick_result(results, request.trace)
    raise_for_payer_aaa(result, raw, status_code=status_code)
    return PayerResponse(result=result, raw=raw, raw_format="x12")
