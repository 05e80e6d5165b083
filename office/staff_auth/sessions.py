"""Board sessions: a random token in the browser's cookie, its hash and last use here.

A session ends after `idle` without a request, after `lifetime` whatever the use, on
sign-out, and when its login's password changes or the login is disabled. The CSRF token
forms carry is derived from the session's token, so it is per session and never stored.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from office.models import StaffLogin, StaffSession
from office.staff_auth.tokens import derive, new_token, token_hash

__all__ = [
    "SessionPolicy",
    "SignedIn",
    "check_csrf",
    "csrf_token",
    "end_session",
    "resume_session",
    "start_session",
]

_CSRF = "officeflows staff board csrf"
# last_seen_at is written at most this often: idle timeouts are minutes, pages are many.
_TOUCH_EVERY = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: timedelta = timedelta(minutes=15)
    lifetime: timedelta = timedelta(hours=12)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who is behind a request: enough to show and act, nothing secret but the CSRF token."""

    session_id: int
    login_id: int
    staff_id: int | None
    email: str
    role: str
    csrf: str


def start_session(
    session: Session, login: StaffLogin, *, client: str | None, now: datetime, policy: SessionPolicy
) -> str:
    """A new session for `login`; returns the token for the cookie (stored only hashed)."""
    token = new_token()
    session.add(
        StaffSession(
            login_id=login.id,
            token_hash=token_hash(token),
            client=client,
            created_at=now,
            last_seen_at=now,
            expires_at=now + policy.lifetime,
        )
    )
    session.flush()
    return token


def resume_session(
    session: Session, token: str | None, *, now: datetime, policy: SessionPolicy
) -> SignedIn | None:
    """The signed-in person behind a cookie's token, or None (an expired session is deleted)."""
    if not token:
        return None
    row = session.execute(
        select(StaffSession, StaffLogin)
        .join(StaffLogin, StaffLogin.id == StaffSession.login_id)
        .where(StaffSession.token_hash == token_hash(token))
    ).first()
    if row is None:
        return None
    found, login = row.tuple()
    if not login.active or found.expires_at <= now or now - found.last_seen_at >= policy.idle:
        session.delete(found)
        return None
    if now - found.last_seen_at >= _TOUCH_EVERY:
        found.last_seen_at = now
    return SignedIn(
        session_id=found.id,
        login_id=login.id,
        staff_id=login.staff_id,
        email=login.email,
        role=login.role,
        csrf=csrf_token(token),
    )


def end_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(StaffSession).where(StaffSession.token_hash == token_hash(token)))


def csrf_token(token: str) -> str:
    return derive(token, _CSRF)


def check_csrf(expected: str, submitted: str | None) -> bool:
    """Constant-time comparison of the form's token with the session's."""
    return bool(submitted) and hmac.compare_digest(expected, submitted or "")
