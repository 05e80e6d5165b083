"""The one HTTP client payer adapters get, and the connection pools behind it."""

from __future__ import annotations

import functools
import itertools
import ssl
from typing import Any

import httpx

__all__ = ["PayerClient", "PooledTransport", "default_client"]


class PayerClient(httpx.AsyncClient):
    """httpx's client, keeping the transport it was built on: what payer adapters get.

    `post_capped` builds a payer request itself (the client's headers and timeouts
    included) and hands it straight to `transport`. The client's own send path (auth and
    redirect steps, cookie jar, stream wrapper, a request built from strings) cost 0.75 ms
    of CPU a request on top of the transport's 1.9 ms, at 2,000 inquiries 50 at a time,
    and a payer request needs none of it: redirects are not followed, a payer sets no
    cookie we keep, and the credential is a header.
    """

    def __init__(self, *, transport: httpx.AsyncBaseTransport, **kwargs: Any) -> None:
        super().__init__(transport=transport, **kwargs)
        self.transport = transport


def default_client(connections: int = 50) -> PayerClient:
    """A client for `connections` requests in flight at once; its owner closes it.

    Payers answer in 1-5 s typically and CORE allows 60 s, so reads wait 90 s (the
    eligibility brief's timeouts); the pool wait matches, as a burst queues behind it.
    """
    return PayerClient(
        transport=PooledTransport(connections),
        timeout=httpx.Timeout(connect=10.0, read=90.0, write=10.0, pool=90.0),
        headers={"User-Agent": "officeflows"},
        follow_redirects=False,
    )


class PooledTransport(httpx.AsyncBaseTransport):
    """httpx's own transport, as several small connection pools taking requests in turn.

    httpcore looks at every connection of its pool, with a syscall each, whenever a request
    starts or ends; at 50 connections that costs more CPU than the request itself. Pools of
    about five keep the same concurrency cheap. Each pool has a little headroom so an uneven
    turn seldom makes a request wait while another pool is idle; the callers' semaphore still
    bounds how many requests are in flight.
    """

    def __init__(self, connections: int, *, per_pool: int = 5) -> None:
        count = max(1, -(-connections // per_pool))
        size = -(-connections // count) + 2
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self._pools = [httpx.AsyncHTTPTransport(verify=_tls(), limits=limits) for _ in range(count)]
        self._turn = itertools.cycle(self._pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await next(self._turn).handle_async_request(request)

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()


@functools.cache
def _tls() -> ssl.SSLContext:
    """The verifying TLS context every pool shares, built at first use and kept: loading the
    CA bundle took a quarter to a third of a second here, on the event loop, before a payer
    batch's first request, once for each payer of a run."""
    return httpx.create_ssl_context()
