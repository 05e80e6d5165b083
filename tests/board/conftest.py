"""The board behind `create_app`, a fake re-check dispatcher, and signing in over httpx."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from app.board import board_router
from office.settings import Settings
from tests.board.practice import NOW, PASSWORD

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Clock:
    """Now, moved by the test."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakeRecheck:
    """Records each re-check asked for; starts nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []
        self.fail = False

    async def __call__(self, appointment_id: int, key: str) -> str | None:
        if self.fail:
            raise ConnectionError("prefect down")
        self.calls.append((appointment_id, key))
        return f"run-{len(self.calls)}"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def recheck() -> FakeRecheck:
    return FakeRecheck()


@pytest.fixture
def board_app(
    settings: Settings, factory: sessionmaker[Session], recheck: FakeRecheck, clock: Clock
) -> FastAPI:
    """The board as `create_app` mounts it, on a clock the test moves."""
    app = FastAPI()
    app.include_router(
        board_router(settings, factory, recheck=recheck, clock=clock), prefix="/staff"
    )
    return app


@pytest.fixture
async def client(board_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=board_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    client.cookies.clear()  # whoever was signed in on this client, signs in afresh
    form = await client.get("/staff/login")
    return await client.post(
        "/staff/login",
        data={"email": email, "password": password, "csrf": csrf_of(form.text)},
    )
