"""The board's buttons: take an item, close it with a note, dismiss it with a reason, and
re-check a visit's eligibility through Prefect.

Every POST needs the session's CSRF token (else 403, a plain page); the item changes
through `office.workqueue.actions`, which writes its history. The office manager acts on
any item; others on their role's items and those assigned to them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.board.pages import RECHECK_FIELD, may_act, signed_in_page
from app.board.signin_routes import CSRF_REFUSED
from app.board.web import Board, csrf_ok, form_fields, redirect, refuse, safe_return
from office.ledgers import LedgerError, record_change
from office.models import Appointment, WorkItem
from office.staff_auth import SignedIn
from office.workqueue import actions

__all__ = ["add_action_routes"]

log = logging.getLogger("office.board")

NOTE_LIMIT = 2000
TODAY = "/staff/today"

Act = Callable[[Session, SignedIn, int, dict[str, str]], object]


def _take(session: Session, viewer: SignedIn, item_id: int, fields: dict[str, str]) -> object:
    if viewer.staff_id is None:
        raise LedgerError("this login has no staff record to assign the item to")
    return actions.take(session, item_id, staff_id=viewer.staff_id)


def _close(session: Session, viewer: SignedIn, item_id: int, fields: dict[str, str]) -> object:
    note = fields.get("note", "").strip()[:NOTE_LIMIT] or None
    return actions.close(session, item_id, by=_by(viewer), note=note)


def _dismiss(session: Session, viewer: SignedIn, item_id: int, fields: dict[str, str]) -> object:
    reason = fields.get("reason", "").strip()[:NOTE_LIMIT]
    if not reason:
        raise LedgerError("say why the item is dismissed")
    return actions.dismiss(session, item_id, by=_by(viewer), reason=reason)


def _by(viewer: SignedIn) -> int | str:
    return viewer.staff_id if viewer.staff_id is not None else f"login:{viewer.login_id}"


_ACTIONS: dict[str, Act] = {"take": _take, "close": _close, "dismiss": _dismiss}


def add_action_routes(router: APIRouter, board: Board) -> None:
    """POST /items/{id}/{take,close,dismiss} and /visits/{id}/recheck."""

    @router.post("/items/{item_id}/{action}", response_class=HTMLResponse)
    async def act(request: Request, item_id: int, action: str) -> Response:
        work = _ACTIONS.get(action)
        if work is None:
            return refuse(404, "There is no such action.")
        fields = await form_fields(request)

        def build(session: Session, viewer: SignedIn) -> Response:
            if fields is None or not csrf_ok(viewer, fields):
                return refuse(403, CSRF_REFUSED)
            item = session.get(WorkItem, item_id)
            if item is None:
                return refuse(404, "There is no such item.")
            if not may_act(viewer, item.role, item.assignee_id):
                return refuse(403, "This item belongs to another role; ask its owner.")
            try:
                with session.begin_nested():
                    work(session, viewer, item_id, fields)
            except LedgerError as exc:
                return refuse(409, str(exc))
            return redirect(safe_return(fields.get("return_to"), TODAY))

        return await run_in_threadpool(signed_in_page, board, request, build)

    @router.post("/visits/{appointment_id}/recheck", response_class=HTMLResponse)
    async def recheck(request: Request, appointment_id: int) -> Response:
        fields = await form_fields(request)
        back = safe_return((fields or {}).get("return_to"), f"/staff/visits/{appointment_id}")

        def check(session: Session, viewer: SignedIn) -> Response:
            if fields is None or not csrf_ok(viewer, fields):
                return refuse(403, CSRF_REFUSED)
            if session.get(Appointment, appointment_id) is None:
                return refuse(404, "There is no such visit.")
            return redirect(back)

        allowed = await run_in_threadpool(signed_in_page, board, request, check)
        if allowed.status_code != 303 or allowed.headers.get("location") != back:
            return allowed
        minute = int(board.clock().timestamp() // 60)
        try:
            run_id = await board.recheck(appointment_id, f"board-recheck-{appointment_id}-{minute}")
        except Exception:
            log.warning(
                "re-check of appointment %s not started: Prefect unreachable", appointment_id
            )
            return refuse(
                503, "The check could not be started (Prefect is not reachable). Try again."
            )

        def remember(session: Session, viewer: SignedIn) -> Response:
            appointment = session.get_one(Appointment, appointment_id)
            record_change(
                session,
                appointment,
                RECHECK_FIELD,
                None,
                run_id or "started",
                actor=f"staff:{viewer.staff_id}" if viewer.staff_id else f"login:{viewer.login_id}",
                source="board",
                at=board.clock(),
            )
            return redirect(back)

        return await run_in_threadpool(signed_in_page, board, request, remember)
