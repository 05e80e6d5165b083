"""The staff-login domain: logins and their one-time links, sign-in throttling, sessions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.models import LoginThrottle, Staff, StaffLogin, StaffSession
from office.staff_auth import (
    BAD_LINK,
    LOCKED,
    WRONG,
    AuthError,
    SessionPolicy,
    add_login,
    check_csrf,
    check_new_password,
    disable_login,
    issue_link,
    link_login,
    resume_session,
    sign_in,
    use_link,
)

NOW = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
POLICY = SessionPolicy(idle=timedelta(minutes=15), lifetime=timedelta(hours=12))
PASSWORD = "correct horse battery"


def _login(factory: sessionmaker[Session], email: str = "dana@clinic.test") -> int:
    with transaction(factory) as session:
        added = add_login(session, email, "billing", now=NOW, first_name="Dana", last_name="Lee")
        token = issue_link(session, added.login_id, now=NOW, valid=timedelta(hours=48))
        use_link(session, token, PASSWORD, PASSWORD, now=NOW)
        return added.login_id


def _sign_in(
    factory: sessionmaker[Session],
    email: str,
    password: str,
    now: datetime = NOW,
    client: str = "10.0.0.5",
) -> tuple[str | None, str | None]:
    with transaction(factory) as session:
        result = sign_in(session, email, password, client=client, now=now, policy=POLICY)
        return result.token, result.refusal


def test_a_login_is_tied_to_the_staff_record_with_its_email(
    factory: sessionmaker[Session],
) -> None:
    with transaction(factory) as session:
        session.add(
            Staff(
                first_name="Ana",
                last_name="Ruiz",
                email="Ana.Ruiz@clinic.test",
                role="front_desk",
                start_date=NOW.date(),
            )
        )
    with transaction(factory) as session:
        added = add_login(session, " ANA.RUIZ@clinic.test ", "front_desk", now=NOW)
    assert not added.staff_created
    with factory() as session:
        login = session.get_one(StaffLogin, added.login_id)
        assert login.email == "ana.ruiz@clinic.test"
        assert login.password_hash is None
        staff = session.get_one(Staff, added.staff_id)
        assert staff.last_name == "Ruiz"


def test_a_login_without_a_staff_record_needs_the_names(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session, pytest.raises(AuthError, match="first and last"):
        add_login(session, "new@clinic.test", "billing", now=NOW)
    with transaction(factory) as session, pytest.raises(AuthError, match="role must be"):
        add_login(session, "new@clinic.test", "janitor", now=NOW, first_name="A", last_name="B")
    _login(factory, "twice@clinic.test")
    with transaction(factory) as session, pytest.raises(AuthError, match="exists already"):
        add_login(session, "Twice@clinic.test", "billing", now=NOW, first_name="A", last_name="B")


def test_a_set_password_link_works_once_and_expires(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        added = add_login(
            session, "dana@clinic.test", "billing", now=NOW, first_name="D", last_name="L"
        )
        first = issue_link(session, added.login_id, now=NOW, valid=timedelta(hours=48))
        token = issue_link(session, added.login_id, now=NOW, valid=timedelta(hours=48))
    with factory() as session, pytest.raises(AuthError, match=BAD_LINK):
        link_login(session, first, now=NOW)  # a newer link replaced it
    with transaction(factory) as session, pytest.raises(AuthError, match="differ"):
        use_link(session, token, PASSWORD, PASSWORD + "x", now=NOW)
    with transaction(factory) as session:
        use_link(session, token, PASSWORD, PASSWORD, now=NOW)
    with transaction(factory) as session, pytest.raises(AuthError, match=BAD_LINK):
        use_link(session, token, PASSWORD, PASSWORD, now=NOW)
    with factory() as session:
        stored = session.scalars(select(StaffLogin.password_hash)).one()
        assert stored is not None
        assert stored.startswith("$argon2id$")
        assert PASSWORD not in stored
    with transaction(factory) as session:
        late = issue_link(session, added.login_id, now=NOW, valid=timedelta(hours=48))
    with transaction(factory) as session, pytest.raises(AuthError, match=BAD_LINK):
        use_link(session, late, PASSWORD, PASSWORD, now=NOW + timedelta(hours=48))


@given(st.text(max_size=11))
def test_short_passwords_are_refused(password: str) -> None:
    with pytest.raises(AuthError):
        check_new_password(password)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_unknown_email_and_wrong_password_get_the_same_answer(
    factory: sessionmaker[Session],
) -> None:
    _login(factory)
    assert _sign_in(factory, "nobody@clinic.test", PASSWORD) == (None, WRONG)
    assert _sign_in(factory, "dana@clinic.test", "wrong password!!") == (None, WRONG)
    token, refusal = _sign_in(factory, "DANA@clinic.test", PASSWORD)
    assert token
    assert refusal is None


def test_five_failures_lock_the_account_for_fifteen_minutes(
    factory: sessionmaker[Session],
) -> None:
    _login(factory)
    for n in range(5):
        # A different address each time: the account's own count locks it.
        assert _sign_in(factory, "dana@clinic.test", "wrong", client=f"10.0.1.{n}") == (None, WRONG)
    later = NOW + timedelta(minutes=14)
    assert _sign_in(factory, "dana@clinic.test", PASSWORD, later, "10.0.2.1") == (None, LOCKED)
    after = NOW + timedelta(minutes=15, seconds=1)
    token, refusal = _sign_in(factory, "dana@clinic.test", PASSWORD, after, "10.0.2.1")
    assert token
    assert refusal is None
    with factory() as session:
        account = session.scalars(select(LoginThrottle).filter_by(scope="account")).all()
        assert account == []  # a success forgets the account's failures


def test_five_failures_from_one_address_lock_the_address(factory: sessionmaker[Session]) -> None:
    _login(factory)
    for n in range(5):
        _sign_in(factory, f"guess{n}@clinic.test", "wrong", client="10.9.9.9")
    assert _sign_in(factory, "dana@clinic.test", PASSWORD, client="10.9.9.9") == (None, LOCKED)
    token, _ = _sign_in(factory, "dana@clinic.test", PASSWORD, client="10.9.9.8")
    assert token
    with factory() as session:
        keys = session.scalars(select(LoginThrottle.key)).all()
        assert all(len(key) == 64 and "@" not in key for key in keys)


def test_a_session_ends_after_the_idle_timeout_and_the_lifetime(
    factory: sessionmaker[Session],
) -> None:
    _login(factory)
    token, _ = _sign_in(factory, "dana@clinic.test", PASSWORD)

    def resume(at: datetime) -> bool:
        with transaction(factory) as session:
            return resume_session(session, token, now=at, policy=POLICY) is not None

    moment = NOW
    for _ in range(50):  # used every 14 minutes, it lives on ...
        moment += timedelta(minutes=14)
        if moment - NOW >= timedelta(hours=12):
            break
        assert resume(moment)
    assert not resume(NOW + timedelta(hours=12))  # ... until its absolute lifetime
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(StaffSession)) == 0

    token, _ = _sign_in(factory, "dana@clinic.test", PASSWORD)
    assert resume(NOW + timedelta(minutes=14, seconds=59))
    assert not resume(NOW + timedelta(minutes=30))  # 15 idle minutes since the last use


def test_csrf_token_is_per_session(factory: sessionmaker[Session]) -> None:
    _login(factory)
    one, _ = _sign_in(factory, "dana@clinic.test", PASSWORD)
    two, _ = _sign_in(factory, "dana@clinic.test", PASSWORD)
    with factory() as session:
        first = resume_session(session, one, now=NOW, policy=POLICY)
        second = resume_session(session, two, now=NOW, policy=POLICY)
    assert first
    assert second
    assert first.csrf != second.csrf
    assert check_csrf(first.csrf, first.csrf)
    assert not check_csrf(first.csrf, second.csrf)
    assert not check_csrf(first.csrf, None)
    assert not check_csrf(first.csrf, "")


def test_disabling_a_login_ends_its_sessions(factory: sessionmaker[Session]) -> None:
    _login(factory)
    token, _ = _sign_in(factory, "dana@clinic.test", PASSWORD)
    with transaction(factory) as session:
        disable_login(session, "dana@clinic.test", now=NOW)
    with transaction(factory) as session:
        assert resume_session(session, token, now=NOW, policy=POLICY) is None
    assert _sign_in(factory, "dana@clinic.test", PASSWORD) == (None, WRONG)
