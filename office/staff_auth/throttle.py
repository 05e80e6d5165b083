"""Failed sign-ins, counted per account and per client address, and the lockout they earn.

Five failures within fifteen minutes lock the account (the email typed, whether or not a
login has it, so a lockout tells nothing about who has an account) or the address for
fifteen minutes. A success clears the account's count, never the address's: signing in to
one's own account must not buy more guesses at someone else's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from office.models import LoginThrottle
from office.staff_auth.tokens import token_hash

__all__ = ["DEFAULT_THROTTLE", "ThrottlePolicy", "clear_account", "locked_until", "record_failure"]


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)


DEFAULT_THROTTLE = ThrottlePolicy()


def _keys(email: str, client: str | None) -> list[tuple[str, str]]:
    keys = [("account", token_hash(email.strip().lower()))]
    if client:
        keys.append(("client", token_hash(client)))
    return keys


def locked_until(
    session: Session, email: str, client: str | None, now: datetime
) -> datetime | None:
    """When the lockout on this email or address ends, if one is in force."""
    latest: datetime | None = None
    for scope, key in _keys(email, client):
        row = session.get(LoginThrottle, (scope, key))
        if row is not None and row.locked_until is not None and row.locked_until > now:
            latest = max(latest or row.locked_until, row.locked_until)
    return latest


def record_failure(
    session: Session,
    email: str,
    client: str | None,
    now: datetime,
    policy: ThrottlePolicy = DEFAULT_THROTTLE,
) -> None:
    """Count one failure against the email and the address; lock either at the limit."""
    for scope, key in _keys(email, client):
        row = _row(session, scope, key, now)
        if now - row.window_started_at > policy.window:
            row.failures = 0
            row.window_started_at = now
        row.failures += 1
        if row.failures >= policy.failures:
            row.locked_until = now + policy.lockout
            row.failures = 0
            row.window_started_at = now
    session.flush()


def clear_account(session: Session, email: str) -> None:
    """Forget the account's failures after a successful sign-in."""
    row = session.get(LoginThrottle, ("account", token_hash(email.strip().lower())))
    if row is not None:
        session.delete(row)


def _row(session: Session, scope: str, key: str, now: datetime) -> LoginThrottle:
    query = select(LoginThrottle).filter_by(scope=scope, key=key).with_for_update()
    row = session.scalars(query).first()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = LoginThrottle(scope=scope, key=key, failures=0, window_started_at=now)
            session.add(row)
    except IntegrityError:  # another sign-in created it meanwhile
        row = session.scalars(query).one()
    return row
