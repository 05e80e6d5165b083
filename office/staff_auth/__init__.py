"""Staff logins for the board: accounts, passwords, sessions, throttling, access records.

The domain half of the staff board: no web framework here. The shell (`app.board`) turns
requests into these calls and cookies into tokens.
"""

from __future__ import annotations

from office.staff_auth.access import AccessRecord, access_log, record_access
from office.staff_auth.accounts import (
    BAD_LINK,
    NewLogin,
    add_login,
    disable_login,
    find_login,
    issue_link,
    link_login,
    normalize_email,
    set_password,
    use_link,
)
from office.staff_auth.errors import AuthError
from office.staff_auth.passwords import check_new_password
from office.staff_auth.roles import MANAGER, ROLES, require_role
from office.staff_auth.sessions import (
    SessionPolicy,
    SignedIn,
    check_csrf,
    csrf_token,
    end_session,
    resume_session,
    start_session,
)
from office.staff_auth.signin import LOCKED, WRONG, SignInResult, sign_in
from office.staff_auth.throttle import ThrottlePolicy

__all__ = [
    "BAD_LINK",
    "LOCKED",
    "MANAGER",
    "ROLES",
    "WRONG",
    "AccessRecord",
    "AuthError",
    "NewLogin",
    "SessionPolicy",
    "SignInResult",
    "SignedIn",
    "ThrottlePolicy",
    "access_log",
    "add_login",
    "check_csrf",
    "check_new_password",
    "csrf_token",
    "disable_login",
    "end_session",
    "find_login",
    "issue_link",
    "link_login",
    "normalize_email",
    "record_access",
    "require_role",
    "resume_session",
    "set_password",
    "sign_in",
    "start_session",
    "use_link",
]
