"""Signing in: the throttle first, then the password, with one answer for every refusal.

An unknown email and a wrong password get the same message and cost the same argon2
verify; a locked email or address is refused before any password is tried.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from office.staff_auth.accounts import find_login
from office.staff_auth.passwords import upgraded_hash, verify_password
from office.staff_auth.sessions import SessionPolicy, start_session
from office.staff_auth.throttle import (
    DEFAULT_THROTTLE,
    ThrottlePolicy,
    clear_account,
    locked_until,
    record_failure,
)

__all__ = ["LOCKED", "WRONG", "SignInResult", "sign_in"]

WRONG = "Wrong email or password."
LOCKED = "Too many failed sign-ins. Try again in 15 minutes, or ask the office manager."


@dataclass(frozen=True, slots=True)
class SignInResult:
    token: str | None  # the new session's cookie value, when signed in
    refusal: str | None  # WRONG or LOCKED otherwise
    login_id: int | None = None


def sign_in(
    session: Session,
    email: str,
    password: str,
    *,
    client: str | None,
    now: datetime,
    policy: SessionPolicy,
    throttle: ThrottlePolicy = DEFAULT_THROTTLE,
) -> SignInResult:
    """Check the password and start a session, or count the failure."""
    if locked_until(session, email, client, now) is not None:
        return SignInResult(token=None, refusal=LOCKED)
    login = find_login(session, email)
    usable = login is not None and login.active
    stored = login.password_hash if login is not None and usable else None
    if not verify_password(stored, password) or login is None:
        record_failure(session, email, client, now, throttle)
        return SignInResult(token=None, refusal=WRONG)
    upgraded = upgraded_hash(stored, password) if stored is not None else None
    if upgraded is not None:
        login.password_hash = upgraded
    clear_account(session, email)
    token = start_session(session, login, client=client, now=now, policy=policy)
    return SignInResult(token=token, refusal=None, login_id=login.id)
