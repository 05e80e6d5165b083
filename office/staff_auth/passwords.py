"""Passwords: argon2id hashes, the rule a new one must pass, and a verify that takes the
same time whether or not the account exists."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from office.staff_auth.errors import AuthError

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "check_new_password",
    "hash_password",
    "upgraded_hash",
    "verify_password",
]

MIN_LENGTH = 12
MAX_LENGTH = 256  # argon2 hashes anything, but a megabyte "password" is a denial of service


@functools.cache
def _hasher() -> PasswordHasher:
    """argon2-cffi's defaults (RFC 9106's low-memory profile), built on first use."""
    return PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when no account matches, so an unknown email costs the same time."""
    return _hasher().hash("no account has this password")


def check_new_password(password: str, repeated: str | None = None) -> str:
    """`password` if it may be set: long enough, not absurdly long, typed the same twice."""
    if repeated is not None and password != repeated:
        raise AuthError("the two passwords differ")
    if len(password) < MIN_LENGTH:
        raise AuthError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise AuthError(f"a password has at most {MAX_LENGTH} characters")
    if not password.strip():
        raise AuthError("a password cannot be only spaces")
    return password


def hash_password(password: str) -> str:
    return _hasher().hash(check_new_password(password))


def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches `stored`; with no hash, the same work and False."""
    if len(password) > MAX_LENGTH:
        password = password[:MAX_LENGTH]  # same cost as any long password, and never a match
        stored = None
    try:
        _hasher().verify(stored or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored is not None


def upgraded_hash(stored: str, password: str) -> str | None:
    """A new hash of a just-verified password when `stored` used weaker parameters."""
    if not _hasher().check_needs_rehash(stored):
        return None
    return _hasher().hash(password)
