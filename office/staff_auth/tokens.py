"""Random tokens for links and sessions, and the one hash they are stored under.

A token is 32 random bytes; only its SHA-256 reaches the database, so a copy of the
database opens no session and sets no password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["derive", "new_token", "token_hash"]


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def derive(token: str, purpose: str) -> str:
    """A second secret bound to `token` (a session's CSRF token), computed, never stored."""
    return hmac.new(token.encode(), purpose.encode(), hashlib.sha256).hexdigest()
