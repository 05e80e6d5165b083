"""`office staff` (board logins) and `office audit` (who saw which patient on the board)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import func, select

from app.cli_support import command_group, console, database, fail, settings_or_fail
from office.db import transaction
from office.models import StaffLogin, StaffSession, utcnow
from office.settings import Settings
from office.staff_auth import (
    ROLES,
    AuthError,
    access_log,
    add_login,
    check_new_password,
    disable_login,
    find_login,
    issue_link,
    set_password,
)

__all__ = ["audit_app", "set_password_url", "staff_app"]

staff_app = command_group("Logins for the staff board (office serve, under /staff).")
audit_app = command_group("Audit records: who saw which patient's data on the staff board.")


def set_password_url(settings: Settings, token: str) -> str:
    """The one-time link a person opens to choose a password."""
    return f"{settings.public_url.rstrip('/')}/staff/set-password?token={token}"


def _link_hours(settings: Settings) -> timedelta:
    return timedelta(hours=settings.staff_link_hours)


@staff_app.command("login-add")
def login_add(
    email: Annotated[str, typer.Argument(help="The person's email; it is their user name.")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    first_name: Annotated[
        str | None, typer.Option(help="Needed when no staff record has this email.")
    ] = None,
    last_name: Annotated[
        str | None, typer.Option(help="Needed when no staff record has this email.")
    ] = None,
    prompt: Annotated[
        bool, typer.Option("--prompt", help="Type the password here instead of a link.")
    ] = False,
) -> None:
    """Add a board login; prints a one-time link that sets its password (or asks for it)."""
    settings = settings_or_fail()
    password = _ask_password() if prompt else None
    now = utcnow()
    with database(settings) as factory:
        try:
            with transaction(factory) as session:
                added = add_login(
                    session, email, role, now=now, first_name=first_name, last_name=last_name
                )
                if password is not None:
                    login = session.get_one(StaffLogin, added.login_id)
                    set_password(session, login, password, now=now)
                    token = None
                else:
                    token = issue_link(
                        session, added.login_id, now=now, valid=_link_hours(settings)
                    )
        except AuthError as exc:
            fail(str(exc))
    out = console()
    made = " (and a staff record)" if added.staff_created else ""
    out.print(f"login {added.login_id} added for {email.strip().lower()} as {role}{made}")
    if token is None:
        out.print(f"password set; sign in at {settings.public_url.rstrip('/')}/staff/login")
    else:
        out.print(
            f"send this one-time link to the person (works once, for "
            f"{settings.staff_link_hours} hours):",
        )
        out.print(set_password_url(settings, token), markup=False, soft_wrap=True)


@staff_app.command("login-link")
def login_link(
    email: Annotated[str, typer.Argument(help="The login's email.")],
) -> None:
    """A new one-time set-password link (a forgotten password); earlier links stop working."""
    settings = settings_or_fail()
    with database(settings) as factory, transaction(factory) as session:
        login = find_login(session, email)
        if login is None or not login.active:
            fail("no active login has this email")
        token = issue_link(session, login.id, now=utcnow(), valid=_link_hours(settings))
    console().print(set_password_url(settings, token), markup=False, soft_wrap=True)


@staff_app.command("login-disable")
def login_disable(
    email: Annotated[str, typer.Argument(help="The login's email.")],
) -> None:
    """Stop a login at once: its sessions end and its links stop working."""
    with database(settings_or_fail()) as factory:
        try:
            with transaction(factory) as session:
                login = disable_login(session, email, now=utcnow())
        except AuthError as exc:
            fail(str(exc))
    console().print(f"login {login.id} disabled")


@staff_app.command("logins")
def logins() -> None:
    """Every board login: role, whether a password is set, its open sessions."""
    with database(settings_or_fail()) as factory, factory() as session:
        sessions = (
            select(StaffSession.login_id, func.count().label("n"))
            .group_by(StaffSession.login_id)
            .subquery()
        )
        rows = session.execute(
            select(StaffLogin, func.coalesce(sessions.c.n, 0))
            .outerjoin(sessions, sessions.c.login_id == StaffLogin.id)
            .order_by(StaffLogin.email)
        ).all()
    if not rows:
        console().print("no board logins; add one with `office staff login-add EMAIL --role ROLE`")
        return
    table = Table("id", "email", "role", "password", "active", "sessions", title="Board logins")
    for login, count in rows:
        table.add_row(
            str(login.id),
            login.email,
            login.role,
            "set" if login.password_hash else "not set",
            "yes" if login.active else "no",
            str(count),
        )
    console().print(table)


@audit_app.command("access")
def audit_access(
    patient: Annotated[str, typer.Option(help="The patient's MRN.")],
    since: Annotated[
        str | None, typer.Option(help="Only from this day on (YYYY-MM-DD, UTC).")
    ] = None,
) -> None:
    """Who saw this patient's data on the staff board, when, on which page (164.312(b))."""
    start = _day(since) if since else None
    with database(settings_or_fail()) as factory, factory() as session:
        records = access_log(session, patient, since=start)
    if records is None:
        fail("no patient has this MRN")
    if not records:
        console().print("nobody has seen this patient's data on the board")
        return
    table = Table("when (UTC)", "who", "role", "page", "visit", "from", title="Board access")
    for record in records:
        table.add_row(
            record.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            record.email,
            record.role,
            record.page,
            str(record.appointment_id or ""),
            record.client or "",
        )
    console().print(table)
    console().print(f"{len(records)} record{'' if len(records) == 1 else 's'}")


def _day(text: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
    except ValueError:
        fail("--since must be a date, YYYY-MM-DD")


def _ask_password() -> str:
    first = typer.prompt("password", hide_input=True)
    second = typer.prompt("again", hide_input=True)
    try:
        return check_new_password(first, second)
    except AuthError as exc:
        fail(str(exc))
