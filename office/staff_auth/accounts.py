"""Board logins: adding one, its one-time set-password links, setting the password.

A login is tied to the staff record with the same email, so items can be assigned to the
person; one is created when the practice has none yet. A link's token is shown once (the
caller prints or mails it) and stored only as a hash; it expires, and works once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from office.models import Staff, StaffLogin, StaffLoginLink, StaffSession
from office.staff_auth.errors import AuthError
from office.staff_auth.passwords import check_new_password, hash_password
from office.staff_auth.roles import require_role
from office.staff_auth.tokens import new_token, token_hash

__all__ = [
    "NewLogin",
    "add_login",
    "disable_login",
    "find_login",
    "issue_link",
    "link_login",
    "normalize_email",
    "set_password",
    "use_link",
]

# Bad links all read the same: which one of unknown, used or expired is nobody's business.
BAD_LINK = "this link cannot be used; ask for a new one"


@dataclass(frozen=True, slots=True)
class NewLogin:
    login_id: int
    staff_id: int
    staff_created: bool


def normalize_email(email: str) -> str:
    address = email.strip().lower()
    local, _, domain = address.rpartition("@")
    if not local or not domain or " " in address or len(address) > 254:
        raise AuthError("an email address looks like name@example.org")
    return address


def find_login(session: Session, email: str) -> StaffLogin | None:
    try:
        address = normalize_email(email)
    except AuthError:
        return None
    return session.scalars(select(StaffLogin).where(StaffLogin.email == address)).first()


def add_login(
    session: Session,
    email: str,
    role: str,
    *,
    now: datetime,
    first_name: str | None = None,
    last_name: str | None = None,
) -> NewLogin:
    """A login for `email`, tied to its staff record (made from the names when missing)."""
    address = normalize_email(email)
    require_role(role)
    if find_login(session, address) is not None:
        raise AuthError("a login with this email exists already")
    staff = session.scalars(select(Staff).where(Staff.email.ilike(address))).first()
    created = staff is None
    if staff is None:
        if not (first_name and last_name):
            raise AuthError("no staff record has this email: give the person's first and last name")
        staff = Staff(
            first_name=first_name.strip(),
            last_name=last_name.strip(),
            email=address,
            role=role,
            start_date=now.date(),
        )
        session.add(staff)
        session.flush()
    login = StaffLogin(email=address, role=role, staff_id=staff.id, created_at=now)
    session.add(login)
    session.flush()
    return NewLogin(login_id=login.id, staff_id=staff.id, staff_created=created)


def issue_link(session: Session, login_id: int, *, now: datetime, valid: timedelta) -> str:
    """A new one-time link token for the login; earlier unused links stop working."""
    session.execute(
        update(StaffLoginLink)
        .where(StaffLoginLink.login_id == login_id, StaffLoginLink.used_at.is_(None))
        .values(used_at=now)
    )
    token = new_token()
    session.add(
        StaffLoginLink(
            login_id=login_id, token_hash=token_hash(token), created_at=now, expires_at=now + valid
        )
    )
    session.flush()
    return token


def link_login(session: Session, token: str, *, now: datetime) -> StaffLogin:
    """The active login a usable link belongs to; AuthError(BAD_LINK) otherwise."""
    link = _usable_link(session, token, now)
    login = session.get(StaffLogin, link.login_id)
    if login is None or not login.active:
        raise AuthError(BAD_LINK)
    return login


def use_link(
    session: Session, token: str, password: str, repeated: str, *, now: datetime
) -> StaffLogin:
    """Set the password through a one-time link, and spend the link."""
    check_new_password(password, repeated)
    link = _usable_link(session, token, now, lock=True)
    login = session.get(StaffLogin, link.login_id)
    if login is None or not login.active:
        raise AuthError(BAD_LINK)
    link.used_at = now
    set_password(session, login, password, now=now)
    return login


def set_password(session: Session, login: StaffLogin, password: str, *, now: datetime) -> None:
    """Store the new hash and end the login's sessions: whoever had them must sign in again."""
    login.password_hash = hash_password(password)
    login.password_set_at = now
    session.execute(delete(StaffSession).where(StaffSession.login_id == login.id))


def disable_login(session: Session, email: str, *, now: datetime) -> StaffLogin:
    """Stop a login: no sign-in, every session ended, every unused link spent."""
    login = find_login(session, email)
    if login is None:
        raise AuthError("no login has this email")
    login.active = False
    session.execute(delete(StaffSession).where(StaffSession.login_id == login.id))
    session.execute(
        update(StaffLoginLink)
        .where(StaffLoginLink.login_id == login.id, StaffLoginLink.used_at.is_(None))
        .values(used_at=now)
    )
    return login


def _usable_link(session: Session, token: str, now: datetime, lock: bool = False) -> StaffLoginLink:
    query = select(StaffLoginLink).where(StaffLoginLink.token_hash == token_hash(token))
    if lock:
        query = query.with_for_update()
    link = session.scalars(query).first()
    if link is None or link.used_at is not None or link.expires_at <= now:
        raise AuthError(BAD_LINK)
    return link
