"""Signing in and out, and choosing a password through a one-time link.

The sign-in forms exist before any session, so their CSRF token is a random value in a
cookie of its own that the form must repeat (a double submit); SameSite=Strict keeps
another site from sending either.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from app.board.web import (
    PRE_COOKIE,
    SESSION_COOKIE,
    Board,
    client_address,
    csrf_ok,
    form_fields,
    new_form_token,
    page,
    redirect,
    refuse,
    safe_return,
)
from office.db import transaction
from office.staff_auth import (
    LOCKED,
    AuthError,
    end_session,
    link_login,
    resume_session,
    sign_in,
    use_link,
)

__all__ = ["add_signin_routes"]

TODAY = "/staff/today"
CSRF_REFUSED = (
    "This form has expired or did not come from the board. Go back, reload, and try again."
)


def add_signin_routes(router: APIRouter, board: Board) -> None:
    """GET/POST /login, POST /logout, GET/POST /set-password."""

    def form_page(
        request: Request, template: str, status: int = 200, **context: object
    ) -> HTMLResponse:
        token = request.cookies.get(PRE_COOKIE) or new_form_token()
        response = page(template, status, csrf=token, **context)
        board.set_cookie(response, request, PRE_COOKIE, token)
        return response

    def pre_form_ok(request: Request, fields: dict[str, str] | None) -> bool:
        cookie = request.cookies.get(PRE_COOKIE)
        sent = (fields or {}).get("csrf")
        return bool(cookie and sent) and hmac.compare_digest(cookie or "", sent or "")

    @router.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str | None = None) -> Response:
        def signed_in() -> bool:
            with transaction(board.factory) as session:
                token = request.cookies.get(SESSION_COOKIE)
                now = board.clock()
                return resume_session(session, token, now=now, policy=board.policy) is not None

        if await run_in_threadpool(signed_in):
            return redirect(safe_return(next, TODAY))
        return form_page(request, "login.html.j2", error=None, email="", next=next or "")

    @router.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        fields = await form_fields(request)
        if fields is None or not pre_form_ok(request, fields):
            return refuse(403, CSRF_REFUSED)
        email = fields.get("email", "")[:254]
        password = fields.get("password", "")

        def attempt() -> tuple[str | None, str | None]:
            with transaction(board.factory) as session:
                result = sign_in(
                    session,
                    email,
                    password,
                    client=client_address(request),
                    now=board.clock(),
                    policy=board.policy,
                )
                return result.token, result.refusal

        token, refusal = await run_in_threadpool(attempt)
        if token is None:
            status = 429 if refusal == LOCKED else 401
            next_ = fields.get("next", "")
            return form_page(
                request, "login.html.j2", status, error=refusal, email=email, next=next_
            )
        response = redirect(safe_return(fields.get("next"), TODAY))
        board.set_cookie(response, request, SESSION_COOKIE, token)
        board.clear_cookie(response, request, PRE_COOKIE)
        return response

    @router.post("/logout", response_class=HTMLResponse)
    async def logout(request: Request) -> Response:
        fields = await form_fields(request)
        token = request.cookies.get(SESSION_COOKIE)

        def leave() -> bool:
            with transaction(board.factory) as session:
                viewer = resume_session(session, token, now=board.clock(), policy=board.policy)
                if viewer is None:
                    return True
                if not csrf_ok(viewer, fields):
                    return False
                end_session(session, token)
                return True

        if not await run_in_threadpool(leave):
            return refuse(403, CSRF_REFUSED)
        response = redirect("/staff/login")
        board.clear_cookie(response, request, SESSION_COOKIE)
        return response

    @router.get("/set-password", response_class=HTMLResponse)
    async def password_form(request: Request, token: str = "") -> Response:
        def check() -> tuple[str | None, str]:
            with board.factory() as session:
                try:
                    return link_login(session, token, now=board.clock()).email, ""
                except AuthError as exc:
                    return None, str(exc)

        email, problem = await run_in_threadpool(check)
        if email is None:
            return refuse(410, problem)
        return form_page(request, "set_password.html.j2", email=email, token=token, error=None)

    @router.post("/set-password", response_class=HTMLResponse)
    async def set_password(request: Request) -> Response:
        fields = await form_fields(request)
        if fields is None or not pre_form_ok(request, fields):
            return refuse(403, CSRF_REFUSED)
        token = fields.get("token", "")

        def choose() -> tuple[str | None, str | None]:
            """(the login's email, the problem): a refused password keeps the link usable."""
            try:
                with transaction(board.factory) as session:
                    login = use_link(
                        session,
                        token,
                        fields.get("password", ""),
                        fields.get("repeated", ""),
                        now=board.clock(),
                    )
                    return login.email, None
            except AuthError as exc:
                problem = str(exc)
            with board.factory() as session:
                try:
                    return link_login(session, token, now=board.clock()).email, problem
                except AuthError as exc:
                    return None, str(exc)

        email, problem = await run_in_threadpool(choose)
        if email is None:
            return refuse(410, problem or "This link cannot be used.")
        if problem is not None:
            return form_page(
                request, "set_password.html.j2", 400, email=email, token=token, error=problem
            )
        return page("password_set.html.j2", email=email)
