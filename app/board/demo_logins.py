"""The demo's board logins: one per role, for the demo's staff, printed once with the URL."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from office.db import transaction
from office.models import Staff, StaffLogin
from office.settings import Settings
from office.staff_auth import ROLES, add_login, normalize_email, set_password

__all__ = ["DemoLogin", "add_demo_logins", "create_demo_logins"]


@dataclass(frozen=True, slots=True)
class DemoLogin:
    email: str
    role: str
    password: str  # shown once; only its hash is stored


def create_demo_logins(session: Session, *, now: datetime) -> list[DemoLogin]:
    """A login with a fresh random password for the first staff member of each role."""
    made = []
    for role in ROLES:
        staff = session.scalars(
            select(Staff).where(Staff.role == role).order_by(Staff.id).limit(1)
        ).first()
        email = staff.email if staff is not None else f"{role.replace('_', '.')}@demo.test"
        added = add_login(session, email, role, now=now, first_name="Demo", last_name=role.title())
        password = secrets.token_urlsafe(12)
        set_password(session, session.get_one(StaffLogin, added.login_id), password, now=now)
        made.append(DemoLogin(email=normalize_email(email), role=role, password=password))
    return made


def add_demo_logins(
    settings: Settings, factory: sessionmaker[Session], *, console: Console, now: datetime
) -> list[DemoLogin]:
    """Create the demo's logins and print them, with the board's address, this once."""
    with transaction(factory) as session:
        logins = create_demo_logins(session, now=now)
    board = f"{settings.public_url.rstrip('/')}/staff/"
    say = console.print
    say(f"staff board logins, one per role, for {board} (under `office serve`):", markup=False)
    width = max(len(login.role) for login in logins)
    for login in logins:
        say(
            f"  {login.role:<{width}}  {login.email}  {login.password}",
            markup=False,
            soft_wrap=True,
        )
    say(
        "these passwords are shown only now; `office staff login-link EMAIL` makes a new one",
        markup=False,
        soft_wrap=True,
    )
    return logins
