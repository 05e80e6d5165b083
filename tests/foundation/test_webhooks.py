"""POST /webhooks/{source}: each case answers the right status and stores exactly what it should."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.webapp import MAX_BODY_BYTES, create_app
from office.models import InboxItem, InboxStatus
from office.settings import Settings
from tests.foundation.helpers import WEBHOOK_SECRET, signed_headers

BODY = b'{"event": "booked", "external_id": "PM-7"}'


@pytest.fixture
def dispatched() -> list[tuple[int, str]]:
    return []


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def asgi_client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://office.test")


@pytest.fixture
async def client(
    settings: Settings, factory: sessionmaker[Session], dispatched: list[tuple[int, str]]
) -> AsyncIterator[httpx.AsyncClient]:
    async def dispatcher(inbox_id: int, key: str) -> str:
        # The payload must already be stored when the flow is asked to run.
        with factory() as session:
            assert session.get(InboxItem, inbox_id) is not None
        dispatched.append((inbox_id, key))
        return "run-1"

    async with asgi_client(create_app(settings, factory, dispatcher=dispatcher)) as test_client:
        yield test_client


def stored(factory: sessionmaker[Session]) -> list[InboxItem]:
    with factory() as session:
        return list(session.scalars(select(InboxItem).order_by(InboxItem.id)))


async def test_good_webhook_is_stored_then_accepted(
    client: httpx.AsyncClient, factory: sessionmaker[Session], dispatched: list[tuple[int, str]]
) -> None:
    response = await client.post(
        "/webhooks/bookings", content=BODY, headers=signed_headers(BODY, key="k1")
    )
    assert response.status_code == 202
    [item] = stored(factory)
    assert response.json()["inbox_id"] == item.id
    assert item.body == BODY
    assert item.source == "webhook:bookings"
    assert item.idempotency_key == "k1"
    assert item.status is InboxStatus.PENDING
    assert dispatched == [(item.id, f"inbox-{item.id}-0")]


async def test_bad_signature_is_refused_and_nothing_stored(
    client: httpx.AsyncClient, factory: sessionmaker[Session]
) -> None:
    headers = signed_headers(BODY)
    headers["X-Office-Signature"] = "sha256=" + "0" * 64
    assert (
        await client.post("/webhooks/bookings", content=BODY, headers=headers)
    ).status_code == 401
    tampered = signed_headers(BODY)
    assert (
        await client.post("/webhooks/bookings", content=BODY + b" ", headers=tampered)
    ).status_code == 401
    unsigned = {"Content-Type": "application/json"}
    assert (
        await client.post("/webhooks/bookings", content=BODY, headers=unsigned)
    ).status_code == 401
    assert stored(factory) == []


async def test_stale_timestamp_is_refused(
    client: httpx.AsyncClient, factory: sessionmaker[Session]
) -> None:
    stale = signed_headers(BODY, at=int(time.time()) - 301)
    assert (await client.post("/webhooks/bookings", content=BODY, headers=stale)).status_code == 401
    future = signed_headers(BODY, at=int(time.time()) + 301)
    assert (
        await client.post("/webhooks/bookings", content=BODY, headers=future)
    ).status_code == 401
    assert stored(factory) == []


async def test_oversize_body_is_refused(
    client: httpx.AsyncClient, factory: sessionmaker[Session]
) -> None:
    big = b"x" * (MAX_BODY_BYTES + 1)
    response = await client.post("/webhooks/bookings", content=big, headers=signed_headers(big))
    assert response.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the limit must hold while streaming too.
        for _ in range(17):
            yield b"y" * 65536

    streamed = await client.post(
        "/webhooks/bookings", content=chunks(), headers={"X-Office-Timestamp": "1"}
    )
    assert streamed.status_code == 413
    assert stored(factory) == []


async def test_body_of_exactly_one_mib_is_accepted(
    client: httpx.AsyncClient, factory: sessionmaker[Session]
) -> None:
    body = b"z" * MAX_BODY_BYTES
    response = await client.post("/webhooks/bookings", content=body, headers=signed_headers(body))
    assert response.status_code == 202
    assert len(stored(factory)) == 1


async def test_repeated_key_gives_2xx_and_no_second_record(
    client: httpx.AsyncClient, factory: sessionmaker[Session], dispatched: list[tuple[int, str]]
) -> None:
    first = await client.post(
        "/webhooks/bookings", content=BODY, headers=signed_headers(BODY, key="same")
    )
    other_body = BODY.replace(b"PM-7", b"PM-8")
    again = await client.post(
        "/webhooks/bookings", content=other_body, headers=signed_headers(other_body, key="same")
    )
    assert first.status_code == 202
    assert 200 <= again.status_code < 300
    assert again.json() == {"inbox_id": first.json()["inbox_id"], "duplicate": True}
    assert [item.body for item in stored(factory)] == [BODY]
    assert len(dispatched) == 1


async def test_without_a_key_the_body_hash_dedupes(
    client: httpx.AsyncClient, factory: sessionmaker[Session]
) -> None:
    for _ in range(2):
        await client.post("/webhooks/bookings", content=BODY, headers=signed_headers(BODY))
    [item] = stored(factory)
    assert item.idempotency_key == hashlib.sha256(BODY).hexdigest()


async def test_same_key_from_two_sources_is_two_records(
    client: httpx.AsyncClient, factory: sessionmaker[Session]
) -> None:
    for source in ("bookings", "forms"):
        response = await client.post(
            f"/webhooks/{source}",
            content=BODY,
            headers=signed_headers(BODY, key="k", source=source),
        )
        assert response.status_code == 202
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(InboxItem)) == 2


async def test_dispatch_failure_still_accepts_and_leaves_it_pending(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    async def down(inbox_id: int, key: str) -> str:
        raise ConnectionError("prefect is down")

    async with asgi_client(create_app(settings, factory, dispatcher=down)) as test_client:
        response = await test_client.post(
            "/webhooks/bookings", content=BODY, headers=signed_headers(BODY)
        )
    assert response.status_code == 202
    [item] = stored(factory)
    assert item.status is InboxStatus.PENDING


async def test_unknown_source_shape_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/webhooks/..%2Fetc", content=BODY, headers=signed_headers(BODY))
    assert response.status_code == 404


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_a_signed_request_cannot_be_replayed_under_another_key_or_source(
    client: httpx.AsyncClient, factory: sessionmaker[Session]
) -> None:
    headers = signed_headers(BODY, key="k1")
    assert (
        await client.post("/webhooks/bookings", content=BODY, headers=headers)
    ).status_code == 202
    other_key = {**headers, "Idempotency-Key": "k2"}
    no_key = {k: v for k, v in headers.items() if k != "Idempotency-Key"}
    for path, replayed in [
        ("/webhooks/bookings", other_key),
        ("/webhooks/bookings", no_key),
        ("/webhooks/forms", headers),
    ]:
        response = await client.post(path, content=BODY, headers=replayed)
        assert response.status_code == 401, (path, replayed)
    assert [item.idempotency_key for item in stored(factory)] == ["k1"]


async def test_the_old_signature_form_is_refused(
    client: httpx.AsyncClient, factory: sessionmaker[Session]
) -> None:
    now = int(time.time())
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{now}.".encode() + BODY, hashlib.sha256)
    headers = {"X-Office-Timestamp": str(now), "X-Office-Signature": "sha256=" + mac.hexdigest()}
    assert (
        await client.post("/webhooks/bookings", content=BODY, headers=headers)
    ).status_code == 401
    assert stored(factory) == []


def probe(**replace: bytes) -> dict[str, bytes]:
    """Signed headers for BODY with some header values replaced by raw bytes."""
    headers = {k: v.encode() for k, v in signed_headers(BODY, key="k1").items()}
    return {**headers, **replace}


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/webhooks/bookings", probe(**{"X-Office-Timestamp": b"9" * 400}), 401),
        ("/webhooks/bookings", probe(**{"X-Office-Signature": "sha256=é".encode() * 9}), 401),
        ("/webhooks/bookings", probe(**{"X-Office-Signature": b"sha256=\xff" + b"0" * 63}), 401),
        ("/webhooks/bookings%0A", probe(), 404),
        ("/webhooks/bookings%20", probe(), 404),
        ("/webhooks/Bookings", probe(), 404),
        ("/webhooks/bookings", probe(**{"Content-Type": b"application/json;" + b"x" * 104}), 400),
        ("/webhooks/bookings", probe(**{"Content-Type": "text/plain; charset=é".encode()}), 400),
        ("/webhooks/bookings", probe(**{"Idempotency-Key": b"k" * 201}), 400),
        ("/webhooks/bookings", probe(**{"Idempotency-Key": b"k.1"}), 400),
        ("/webhooks/bookings", probe(**{"Idempotency-Key": "ké".encode()}), 400),
        ("/webhooks/bookings", probe(**{"Content-Length": b"4" * 5000}), 400),
        ("/webhooks/bookings", probe(**{"Content-Length": b"-1"}), 400),
    ],
)
async def test_malformed_headers_get_4xx_and_store_nothing(
    client: httpx.AsyncClient,
    factory: sessionmaker[Session],
    path: str,
    headers: dict[str, bytes],
    status: int,
) -> None:
    response = await client.post(path, content=BODY, headers=headers)
    assert response.status_code == status
    assert stored(factory) == []


async def test_a_content_type_as_long_as_its_column_is_stored(
    client: httpx.AsyncClient, factory: sessionmaker[Session]
) -> None:
    """InboxItem.content_type is String(120): the longest accepted value fits it (PostgreSQL)."""
    content_type = "application/json;" + "x" * 103
    headers = {**signed_headers(BODY, key="k1"), "Content-Type": content_type}
    assert (
        await client.post("/webhooks/bookings", content=BODY, headers=headers)
    ).status_code == 202
    assert [item.content_type for item in stored(factory)] == [content_type]


HEADER_NAMES = [
    "X-Office-Timestamp",
    "X-Office-Signature",
    "Idempotency-Key",
    "Content-Type",
    "Content-Length",
]


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.dictionaries(
        st.sampled_from(HEADER_NAMES),
        st.binary(max_size=300) | st.from_regex(rb"\A[0-9]{1,600}\Z"),
        min_size=1,
    ),
    source=st.sampled_from(["bookings", "bookings\n", "b\u00e9", "x" * 41, "-", "forms"]),
)
async def test_no_header_value_makes_the_app_fail(
    client: httpx.AsyncClient,
    factory: sessionmaker[Session],
    values: dict[str, bytes],
    source: str,
) -> None:
    """Any value, of any length or alphabet, is answered; only a valid request is stored."""
    before = len(stored(factory))
    path = "/webhooks/" + quote(source, safe="")
    response = await client.post(path, content=BODY, headers=probe(**values))
    assert response.status_code in (200, 202) or 400 <= response.status_code < 500
    if response.status_code >= 400:
        assert len(stored(factory)) == before


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_the_public_app_publishes_no_schema_or_docs(
    client: httpx.AsyncClient, path: str
) -> None:
    assert (await client.get(path)).status_code == 404
