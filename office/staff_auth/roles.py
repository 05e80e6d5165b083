"""The roles a board login can have; each matches the role work items are routed to.

The office manager sees every role's items; everyone else sees their own role's first.
"""

from __future__ import annotations

from office.staff_auth.errors import AuthError

__all__ = ["MANAGER", "ROLES", "require_role"]

MANAGER = "office_manager"
ROLES: tuple[str, ...] = (
    "front_desk",
    "billing",
    "medical_assistant",
    "compliance",
    "it",
    MANAGER,
)


def require_role(role: str) -> str:
    """`role` if it is one of ROLES, else an AuthError naming the choices."""
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)}")
    return role
