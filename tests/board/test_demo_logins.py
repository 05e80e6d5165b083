"""The demo's board logins: one per role, each signing in with the password printed once."""

from __future__ import annotations

from datetime import timedelta

from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from app.board.demo_logins import add_demo_logins
from office.db import transaction
from office.models import Staff
from office.settings import Settings
from office.staff_auth import ROLES, SessionPolicy, sign_in
from tests.board.practice import NOW


def test_one_login_per_role_printed_once_with_the_board(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    with transaction(factory) as session:
        session.add(
            Staff(
                first_name="Bo",
                last_name="Li",
                email="Bo.Li@clinic.test",
                role="billing",
                start_date=NOW.date(),
            )
        )
    console = Console(record=True, width=200)
    logins = add_demo_logins(settings, factory, console=console, now=NOW)
    printed = console.export_text()
    assert [login.role for login in logins] == list(ROLES)
    assert "bo.li@clinic.test" in [login.email for login in logins]
    assert "http://127.0.0.1:8400/staff/" in printed
    policy = SessionPolicy(idle=timedelta(minutes=15), lifetime=timedelta(hours=1))
    for login in logins:
        assert login.password in printed
        with transaction(factory) as session:
            result = sign_in(
                session, login.email, login.password, client=None, now=NOW, policy=policy
            )
        assert result.token, login.role
