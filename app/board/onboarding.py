"""The board's onboarding pages: checklists per person, items under their owner, an item's
page with its evidence upload, and the completion it posts.

Who may complete an item: its owner, a holder of the role that owns it, and the office
manager. The upload is a multipart form (read with the standard library's MIME parser,
at most 10 MB); the file is kept 0600 under OFFICE_HOME and its SHA-256 goes into the
item's one audit entry (`office.onboarding.complete_item`).
"""

from __future__ import annotations

from datetime import date
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from typing import Final
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.board.pages import signed_in_page
from app.board.signin_routes import CSRF_REFUSED
from app.board.web import Board, csrf_ok, page, redirect, refuse
from office.models import ChecklistItem
from office.onboarding import CompletionError, Evidence, complete_item
from office.onboarding.complete import MAX_EVIDENCE_BYTES, evidence_dir
from office.onboarding.views import item_detail, owner_items, progress
from office.staff_auth import MANAGER, SignedIn
from office.workqueue.views import role_label

__all__ = ["add_onboarding_routes", "may_complete", "multipart_fields"]

_FORM_LIMIT: Final = MAX_EVIDENCE_BYTES + 64 * 1024


def may_complete(viewer: SignedIn, item: ChecklistItem) -> bool:
    if viewer.role == MANAGER:
        return True
    if viewer.staff_id is not None and viewer.staff_id == item.owner_staff_id:
        return True
    return item.owner_role is not None and viewer.role == item.owner_role


async def multipart_fields(request: Request) -> dict[str, tuple[str | None, bytes]] | None:
    """A multipart form's parts by name: (file name, bytes); None when it is not one."""
    kind = request.headers.get("content-type", "")
    if kind.split(";")[0].strip().lower() != "multipart/form-data":
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _FORM_LIMIT:
            return None
    head = f"Content-Type: {kind}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        return None
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or name in fields:
            continue
        payload = part.get_payload(decode=True)
        fields[name] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
    return fields


def _text(fields: dict[str, tuple[str | None, bytes]], name: str) -> str:
    return fields.get(name, (None, b""))[1].decode("utf-8", "replace").strip()


def add_onboarding_routes(router: APIRouter, board: Board) -> None:
    """GET /onboarding, /onboarding/items/{id}; POST /onboarding/items/{id}/complete."""

    def today() -> date:
        zone = ZoneInfo(board.settings.practice_timezone)
        return board.clock().astimezone(zone).date()

    def chrome(viewer: SignedIn) -> dict[str, object]:
        return {"viewer": viewer, "role_label": role_label(viewer.role), "here": "onboarding"}

    @router.get("/onboarding", response_class=HTMLResponse)
    async def onboarding_page(request: Request, everyone: str = "") -> Response:
        def build(session: Session, viewer: SignedIn) -> Response:
            day = today()
            show_all = viewer.role == MANAGER or everyone == "1"
            groups = owner_items(
                session, day, staff_id=viewer.staff_id, role=viewer.role, everyone=show_all
            )
            return page(
                "onboarding.html.j2",
                people=progress(session, day),
                groups=groups,
                today=day,
                everyone=show_all,
                **chrome(viewer),
            )

        return await run_in_threadpool(signed_in_page, board, request, build)

    @router.get("/onboarding/items/{item_id}", response_class=HTMLResponse)
    async def item_page(request: Request, item_id: int, error: str = "") -> Response:
        def build(session: Session, viewer: SignedIn) -> Response:
            detail = item_detail(session, item_id, today())
            if detail is None:
                return refuse(404, "There is no such checklist item.")
            item = session.get_one(ChecklistItem, item_id)
            return page(
                "onboarding_item.html.j2",
                detail=detail,
                may_complete=may_complete(viewer, item) and detail.status == "open",
                today=today(),
                error=error[:200],
                **chrome(viewer),
            )

        return await run_in_threadpool(signed_in_page, board, request, build)

    @router.post("/onboarding/items/{item_id}/complete", response_class=HTMLResponse)
    async def complete(request: Request, item_id: int) -> Response:
        fields = await multipart_fields(request)

        def act(session: Session, viewer: SignedIn) -> Response:
            if fields is None:
                return refuse(400, "The form could not be read (at most 10 MB).")
            csrf = {"csrf": _text(fields, "csrf")}
            if not csrf_ok(viewer, csrf):
                return refuse(403, CSRF_REFUSED)
            item = session.get(ChecklistItem, item_id)
            if item is None:
                return refuse(404, "There is no such checklist item.")
            if not may_complete(viewer, item):
                return refuse(403, "This item belongs to someone else; ask its owner.")
            name, data = fields.get("evidence", (None, b""))
            try:
                completed_on = date.fromisoformat(
                    _text(fields, "completed_on") or today().isoformat()
                )
            except ValueError:
                return refuse(400, "The completion date must be YYYY-MM-DD.")
            given = Evidence(
                completed_on=completed_on,
                file_bytes=data or None,
                file_name=name,
                course_version=_text(fields, "course_version") or None,
                signature=_text(fields, "signature") or None,
            )
            by = f"staff:{viewer.staff_id}" if viewer.staff_id else f"login:{viewer.login_id}"
            try:
                with session.begin_nested():
                    complete_item(
                        session,
                        item_id,
                        given,
                        by=by,
                        via="board",
                        now=board.clock(),
                        evidence_dir=evidence_dir(board.settings.home),
                    )
            except CompletionError as exc:
                return refuse(409, str(exc))
            return redirect(f"/staff/onboarding/items/{item_id}")

        return await run_in_threadpool(signed_in_page, board, request, act)
