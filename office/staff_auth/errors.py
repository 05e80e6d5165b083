"""The one error the staff-login domain raises; its message is safe to show the person."""

from __future__ import annotations

__all__ = ["AuthError"]


class AuthError(ValueError):
    """A login, link or password that cannot be used; the message names no secret."""
