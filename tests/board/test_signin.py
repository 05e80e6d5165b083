"""Signing in over HTTP: the cookie's flags, one answer for every refusal, lockout, CSRF on the
sign-in forms, idle timeout, sign-out, and choosing a password through a one-time link."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.webapp import create_app
from office.db import transaction
from office.models import StaffLogin, StaffSession
from office.settings import Settings
from office.staff_auth import LOCKED, WRONG, add_login, issue_link
from tests.board.conftest import CSRF, Clock, csrf_of, sign_in
from tests.board.practice import NOW, PASSWORD, add_board_login

pytestmark = pytest.mark.anyio


@pytest.fixture
def login_id(factory: sessionmaker[Session]) -> int:
    with transaction(factory) as session:
        return add_board_login(session, "dana@clinic.test", "front_desk")


def _sessions(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).select_from(StaffSession)) or 0


async def test_create_app_serves_the_board_behind_a_login(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    app = create_app(settings, factory)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        today = await client.get("/staff/today?kind=not_active")
        assert today.status_code == 303
        assert today.headers["location"] == "/staff/login?next=%2Fstaff%2Ftoday%3Fkind%3Dnot_active"
        form = await client.get("/staff/login")
    assert form.status_code == 200
    assert 'name="password"' in form.text
    assert form.headers["cache-control"] == "no-store"
    assert "script-src" not in form.headers["content-security-policy"]
    assert "default-src 'none'" in form.headers["content-security-policy"]


@pytest.mark.usefixtures("login_id")
async def test_the_session_cookie_is_http_only_strict_and_never_holds_the_stored_hash(
    client: httpx.AsyncClient, factory: sessionmaker[Session]
) -> None:
    answer = await sign_in(client, "dana@clinic.test")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/staff/today"
    cookie = next(
        value
        for value in answer.headers.get_list("set-cookie")
        if value.startswith("office_staff=")
    )
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/staff" in flags
    assert "secure" not in flags  # plain http to this machine
    token = cookie.split(";")[0].split("=", 1)[1]
    with factory() as session:
        stored = session.scalars(select(StaffSession.token_hash)).one()
    assert token not in stored
    assert len(token) >= 40


@pytest.mark.usefixtures("login_id")
async def test_cookies_are_secure_when_served_over_https(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    secure = settings.model_copy(update={"public_url": "https://board.clinic.test"})
    app = create_app(secure, factory)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        answer = await sign_in(client, "dana@clinic.test")
    assert answer.status_code == 303
    for cookie in answer.headers.get_list("set-cookie"):
        assert "secure" in {part.strip().lower() for part in cookie.split(";")}


@pytest.mark.usefixtures("login_id")
async def test_unknown_email_and_wrong_password_read_the_same_then_lock(
    client: httpx.AsyncClient,
) -> None:
    unknown = await sign_in(client, "nobody@clinic.test")
    wrong = await sign_in(client, "dana@clinic.test", "not the password")
    assert unknown.status_code == wrong.status_code == 401
    assert WRONG in unknown.text
    assert WRONG in wrong.text
    # The same page but for the email typed back and the form's token.
    assert CSRF.sub("", unknown.text).replace("nobody@clinic.test", "") == CSRF.sub(
        "", wrong.text
    ).replace("dana@clinic.test", "")
    for _ in range(4):
        await sign_in(client, "dana@clinic.test", "still not it")
    locked = await sign_in(client, "dana@clinic.test")  # the right password, too late
    assert locked.status_code == 429
    assert LOCKED in locked.text
    assert "office_staff=" not in str(locked.headers.get_list("set-cookie"))


@pytest.mark.usefixtures("login_id")
async def test_the_sign_in_form_refuses_a_post_without_its_token(
    client: httpx.AsyncClient, factory: sessionmaker[Session]
) -> None:
    answer = await client.post(
        "/staff/login", data={"email": "dana@clinic.test", "password": PASSWORD}
    )
    assert answer.status_code == 403
    assert "did not come from the board" in answer.text
    await client.get("/staff/login")  # the form's cookie is set, but the field is wrong
    forged = await client.post(
        "/staff/login", data={"email": "dana@clinic.test", "password": PASSWORD, "csrf": "x"}
    )
    assert forged.status_code == 403
    assert _sessions(factory) == 0


@pytest.mark.usefixtures("login_id")
async def test_a_session_ends_after_fifteen_idle_minutes(
    client: httpx.AsyncClient, clock: Clock, factory: sessionmaker[Session]
) -> None:
    await sign_in(client, "dana@clinic.test")
    for _ in range(3):  # used every 14 minutes, it stays
        clock.now += timedelta(minutes=14)
        assert (await client.get("/staff/today")).status_code == 200
    clock.now += timedelta(minutes=15)
    gone = await client.get("/staff/today")
    assert gone.status_code == 303
    assert gone.headers["location"].startswith("/staff/login")
    assert _sessions(factory) == 0


@pytest.mark.usefixtures("login_id")
async def test_signing_out_deletes_the_session_and_needs_its_token(
    client: httpx.AsyncClient, factory: sessionmaker[Session]
) -> None:
    await sign_in(client, "dana@clinic.test")
    page = await client.get("/staff/today")
    assert (await client.post("/staff/logout", data={"csrf": "forged"})).status_code == 403
    assert _sessions(factory) == 1
    answer = await client.post("/staff/logout", data={"csrf": csrf_of(page.text)})
    assert answer.status_code == 303
    assert _sessions(factory) == 0
    assert (await client.get("/staff/today")).status_code == 303


async def test_a_one_time_link_sets_the_password_once(
    client: httpx.AsyncClient, factory: sessionmaker[Session]
) -> None:
    with transaction(factory) as session:
        added = add_login(
            session, "new@clinic.test", "billing", now=NOW, first_name="N", last_name="W"
        )
        token = issue_link(session, added.login_id, now=NOW, valid=timedelta(hours=48))
    form = await client.get(f"/staff/set-password?token={token}")
    assert form.status_code == 200
    assert "new@clinic.test" in form.text
    assert form.headers["referrer-policy"] == "no-referrer"
    fields = {"token": token, "csrf": csrf_of(form.text)}
    short = await client.post(
        "/staff/set-password", data={**fields, "password": "short", "repeated": "short"}
    )
    assert short.status_code == 400
    assert "at least 12" in short.text
    done = await client.post(
        "/staff/set-password", data={**fields, "password": PASSWORD, "repeated": PASSWORD}
    )
    assert done.status_code == 200
    assert "Password set" in done.text
    again = await client.get(f"/staff/set-password?token={token}")
    assert again.status_code == 410
    with factory() as session:
        assert session.get_one(StaffLogin, added.login_id).password_hash
    assert (await sign_in(client, "new@clinic.test")).status_code == 303


async def test_board_pages_are_never_cached_framed_or_indexed(client: httpx.AsyncClient) -> None:
    from app.page_headers import PRIVATE_PAGE_HEADERS

    page = await client.get("/staff/login")
    assert page.status_code == 200
    for name, value in PRIVATE_PAGE_HEADERS.items():
        assert page.headers[name] == value
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
