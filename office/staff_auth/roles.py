"""The roles a board login can have: the work queue's roles (`office.workqueue.kinds`).

The office manager sees every role's items; everyone else sees their own role's items
and those assigned to them.
"""

from __future__ import annotations

from office.staff_auth.errors import AuthError
from office.workqueue.kinds import MANAGER_ROLE, ROLE_LABELS

__all__ = ["MANAGER", "ROLES", "require_role"]

MANAGER = MANAGER_ROLE
ROLES: tuple[str, ...] = tuple(ROLE_LABELS)


def require_role(role: str) -> str:
    """`role` if it is one of ROLES, else an AuthError naming the choices."""
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)}")
    return role
