"""The board's Mail page: each queue's routed mail, newest first, with the rule behind it.

Senders and subjects can name patients, so the page sits behind the login like the others
and writes an access record for every patient a shown message is linked to. The office
manager sees every queue; everyone else sees their role's queue and mail routed to them
in person, and may open the others by name.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.board.pages import signed_in_page
from app.board.web import Board, client_address, page
from office.mail import queue_counts, routed_mail
from office.staff_auth import MANAGER, SignedIn, record_access
from office.workqueue.views import practice_zone, role_label

__all__ = ["MAIL_LIMIT", "add_mail_routes", "queues_for"]

MAIL_LIMIT = 200


def queues_for(viewer: SignedIn) -> list[str] | None:
    """The queues a person sees first: all for the manager (None), else role and own."""
    if viewer.role == MANAGER:
        return None
    return [viewer.role, f"staff:{viewer.staff_id}"]


def add_mail_routes(router: APIRouter, board: Board) -> None:
    """GET /mail (optionally ?queue=NAME, spam included only when asked for by name)."""

    @router.get("/mail", response_class=HTMLResponse)
    async def mail_page(request: Request, queue: str = "") -> Response:
        def build(session: Session, viewer: SignedIn) -> Response:
            now = board.clock()
            counts = queue_counts(session)
            known = {name for name, _, _ in counts}
            chosen = queue if queue in known else ""
            queues = [chosen] if chosen else queues_for(viewer)
            grouped = routed_mail(
                session, queues=queues, include_spam=chosen == "spam", limit=MAIL_LIMIT
            )
            record_access(
                session,
                login_id=viewer.login_id,
                patient_ids=[
                    m.patient_id
                    for messages in grouped.values()
                    for m in messages
                    if m.patient_id is not None
                ],
                page="mail",
                now=now,
                client=client_address(request),
            )
            totals: dict[str, int] = {}
            for name, _, count in counts:
                totals[name] = totals.get(name, 0) + count
            return page(
                "mail.html.j2",
                grouped=grouped,
                totals=totals,
                chosen=chosen,
                zone=ZoneInfo(practice_zone(session)),
                queue_label=_queue_label,
                viewer=viewer,
                role_label=role_label(viewer.role),
                here="mail",
            )

        return await run_in_threadpool(signed_in_page, board, request, build)


def _queue_label(queue: str) -> str:
    if queue.startswith("staff:"):
        return f"staff member {queue.removeprefix('staff:')}"
    if queue == "spam":
        return "spam"
    return role_label(queue)
