"""What every board route shares: its collaborators, cookies, forms, pages and refusals.

Pages are rendered from templates/board/ through the one Jinja environment; every
response forbids caching, framing and referrers, and allows no script at all.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session, sessionmaker

from app.page_headers import PRIVATE_PAGE_HEADERS
from office.render import render
from office.settings import Settings
from office.staff_auth import SessionPolicy, SignedIn, check_csrf

__all__ = [
    "PRE_COOKIE",
    "SESSION_COOKIE",
    "Board",
    "Recheck",
    "client_address",
    "form_fields",
    "id_field",
    "page",
    "redirect",
    "refuse",
    "safe_return",
]

SESSION_COOKIE = "office_staff"
PRE_COOKIE = "office_staff_form"  # the sign-in forms' CSRF token, before there is a session
COOKIE_PATH = "/staff"
MAX_FORM_BYTES = 16 * 1024

# Starts `verify-appointment` for one visit (appointment id, idempotency key); returns the
# flow run id, or raises when Prefect cannot be reached.
Recheck = Callable[[int, str], Awaitable[str | None]]


@dataclass(frozen=True)
class Board:
    """The board's collaborators, built once by `board_router`."""

    settings: Settings
    factory: sessionmaker[Session]
    clock: Callable[[], datetime]
    recheck: Recheck

    @property
    def policy(self) -> SessionPolicy:
        return SessionPolicy(
            idle=timedelta(minutes=self.settings.staff_idle_minutes),
            lifetime=timedelta(hours=self.settings.staff_session_hours),
        )

    def secure(self, request: Request) -> bool:
        """Secure cookies when served over https, here or at the public URL (a TLS proxy)."""
        return request.url.scheme == "https" or self.settings.public_url.startswith("https:")

    def set_cookie(self, response: Response, request: Request, name: str, value: str) -> None:
        response.set_cookie(
            name,
            value,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=self.secure(request),
        )

    def clear_cookie(self, response: Response, request: Request, name: str) -> None:
        response.delete_cookie(
            name, path=COOKIE_PATH, httponly=True, samesite="strict", secure=self.secure(request)
        )


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def form_fields(request: Request) -> dict[str, str] | None:
    """A urlencoded form's fields (the first of each name); None when it is not one."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        return None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)
    return fields


def id_field(value: str | None) -> int | None:
    """A form or query field naming a row by id; None when it is not a plain small number."""
    return int(value) if value and value.isdigit() and len(value) < 10 else None


def csrf_ok(viewer: SignedIn, fields: dict[str, str] | None) -> bool:
    return fields is not None and check_csrf(viewer.csrf, fields.get("csrf"))


def new_form_token() -> str:
    return secrets.token_urlsafe(24)


def page(template: str, status: int = 200, /, **context: object) -> HTMLResponse:
    return HTMLResponse(
        render(f"board/{template}", **context), status, headers=PRIVATE_PAGE_HEADERS
    )


def refuse(status: int, message: str) -> HTMLResponse:
    """A plain page saying why, with nothing else from the board on it."""
    return page("refused.html.j2", status, code=status, message=message)


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303, headers=PRIVATE_PAGE_HEADERS)


def safe_return(target: str | None, default: str) -> str:
    """Where to go after a form: a board path only, never another site."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(COOKIE_PATH + "/"):
        return default
    if "\\" in target or "//" in parts.path:
        return default
    return target
